"""Build the FastAPI app from settings; no import-time globals."""

from __future__ import annotations

from fastapi import FastAPI

from inspector import __version__
from inspector.config import Settings


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    app = FastAPI(title="inspector", version=__version__, description="Returns-bench inspection station API")
    app.state.settings = settings

    @app.get("/v1/health", tags=["ops"])
    def health() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok", "version": __version__}

    return app
