"""The quotes example app (manifests/quotes/app.yaml): plain Python, no framework imports."""
