"""The Python side of manifests/hello/app.yaml."""
