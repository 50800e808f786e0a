"""The curator's web app, the SPARQL 1.1 Protocol endpoint, IIIF manifests and the REST API.

``create_app(ws_or_path)`` builds the FastAPI application; ``run_server(ws, host, port)`` serves it with Uvicorn.
Both import FastAPI lazily so that ``import iconoscope.serve`` stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI


def create_app(ws_or_path: Any, **kwargs: Any) -> FastAPI:
    from iconoscope.serve.app import create_app as _create

    return _create(ws_or_path, **kwargs)


def run_server(ws: Any, host: str | None = None, port: int | None = None, **kwargs: Any) -> None:
    from iconoscope.serve.server import run_server as _run

    _run(ws, host=host, port=port, **kwargs)


__all__ = ["create_app", "run_server"]
