"""The users example app: plain Python callables wired together by app.yaml."""
