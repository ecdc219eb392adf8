"""The overhead floor's HTTP server: one route that takes the upload as ours does and does nothing with it.

What uvicorn, FastAPI's multipart parsing and the client cost on their own: the part of the
API path that no work in the pipeline can remove. No ``from __future__ import annotations``
here: FastAPI reads the route's parameter types at run time.
"""

from typing import Annotated, Any

from fastapi import FastAPI, File, UploadFile


def bare_app() -> FastAPI:
    """An app with ``/v1/ready`` and an empty ``POST /v1/inspections`` taking ``images``."""
    app = FastAPI()

    @app.get("/v1/ready")
    def ready() -> dict[str, str]:
        return {"status": "ready"}

    @app.post("/v1/inspections", status_code=201)
    async def post(images: Annotated[list[UploadFile], File()]) -> dict[str, Any]:
        sizes = [len(await f.read()) for f in images]
        return {"id": "bare", "bytes": sizes}

    return app


def serve(port: int) -> None:
    """Run :func:`bare_app` on loopback until stopped; no access log: the floor is the leanest server, not ours."""
    import uvicorn

    uvicorn.run(bare_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)
