"""The local HTTP API (FastAPI), built by :func:`inspector.api.app.create_app`."""
