"""The FastAPI application: state, middleware, error handling and the routers.

Errors are answered in the client's language: JSON ``{"error": ...}`` for the API and IIIF, plain text for the
SPARQL protocol, an HTML page for a browser; always with the message and never with a stack trace (the trace
goes to the server log only).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from iconoscope import __version__
from iconoscope.errors import IconoscopeError
from iconoscope.serve.catalog import Catalog, url_id
from iconoscope.serve.errors import ServeError
from iconoscope.serve.iiif_image import ImageSource
from iconoscope.serve.security import CSRF_COOKIE, SECURITY_HEADERS, Security, resolve_token
from iconoscope.serve.sparql_exec import QueryRunner

log = logging.getLogger("iconoscope.serve")
STATIC_DIR = Path(__file__).parent / "static"


@dataclass
class ServeState:
    """Everything a request needs; one per app (``app.state.iconoscope``)."""

    ws: Any
    catalog: Catalog
    security: Security
    runner: QueryRunner
    images: ImageSource
    templates: Environment
    public_url: str | None
    owns_ws: bool

    def base_url(self, request: Request) -> str:
        return (self.public_url or str(request.base_url)).rstrip("/")


class SecurityMiddleware:
    """Adds the security headers to every response and gives each browser its random CSRF seed cookie."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        seed = Request(scope).cookies.get(CSRF_COOKIE)
        new_seed = None
        if not seed or len(seed) > 64 or not seed.replace("-", "").replace("_", "").isalnum():
            seed = new_seed = Security.new_seed()
        scope.setdefault("state", {})["csrf_seed"] = seed
        path = scope.get("path", "")
        cors = path.startswith(("/iiif/", "/sparql"))

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for k, v in SECURITY_HEADERS.items():
                    if k not in headers:
                        headers[k] = v
                if cors:
                    headers["access-control-allow-origin"] = "*"
                if new_seed:
                    headers.append("set-cookie", f"{CSRF_COOKIE}={new_seed}; Path=/; HttpOnly; SameSite=Strict")
            await send(message)

        await self.app(scope, receive, send_wrapper)


def _wants(request: Request) -> str:
    path = request.url.path
    if path.startswith(("/api/", "/iiif/")) or path in ("/api", "/openapi.json"):
        return "json"
    if path.startswith("/sparql"):
        accept = request.headers.get("accept", "")
        return "html" if request.method == "GET" and "text/html" in accept and "query" not in request.query_params \
            else "text"
    return "html"


def error_response(request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    kind = _wants(request)
    if kind == "json":
        return JSONResponse({"error": message}, status_code=status, headers=headers)
    if kind == "text":
        return PlainTextResponse(message + "\n", status_code=status, headers=headers)
    from iconoscope.serve.deps import render

    try:
        return render(request, "error.html", status=status, status_code=status, message=message, headers=headers)
    except Exception:  # the error page itself must never fail
        log.exception("error page failed")
        return PlainTextResponse(message + "\n", status_code=status, headers=headers)


def _install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServeError)
    async def serve_error(request: Request, exc: ServeError) -> Response:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return error_response(request, exc.status, str(exc), headers)

    @app.exception_handler(IconoscopeError)
    async def iconoscope_error(request: Request, exc: IconoscopeError) -> Response:
        # on /sparql the library's errors are about the client's query (syntax, unknown function)
        status = 400 if request.url.path.startswith("/sparql") else 500
        if status == 500:
            log.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(request, status, str(exc))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        message = exc.detail if isinstance(exc.detail, str) else "error"
        if exc.status_code == 404 and message == "Not Found":
            message = f"{request.url.path}: no such page"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        return error_response(request, exc.status_code, message, getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        problems = []
        for e in exc.errors():
            loc = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body",)) or "request"
            problems.append(f"{loc}: {e.get('msg', 'invalid')}")
        message = "invalid request: " + "; ".join(problems)
        if _wants(request) == "json":
            detail = [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in exc.errors()]
            return JSONResponse({"error": message, "detail": detail}, status_code=422)
        return error_response(request, 422, message)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> Response:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(request, 500, "internal error (details are in the server log)")


def _templates() -> Environment:
    env = Environment(loader=PackageLoader("iconoscope.serve", "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True), trim_blocks=True,
                      lstrip_blocks=True)
    env.filters["url_id"] = url_id
    env.filters["pct"] = lambda v: "" if v is None else f"{100 * float(v):.0f}%"
    env.filters["score"] = lambda v: "" if v is None else f"{float(v):.2f}"
    env.globals["version"] = __version__
    return env


def create_app(ws_or_path: Any, *, token: str | None = None, query_timeout_s: float | None = None,
               max_rows: int = 200_000, query_slots: int = 2, public_url: str | None = None,
               secret: bytes | None = None) -> FastAPI:
    """The web app over a workspace (a ``Workspace`` or its folder).

    ``token``: the write token (default: ``[serve] token`` or the environment variable ``[serve] token_env``
    names; none means writes are disabled). ``query_timeout_s``: the SPARQL endpoint's time limit (default
    ``[serve] query_timeout_s``). ``public_url``: the base URL for IIIF ids when behind a proxy.
    """
    from iconoscope.workspace import Workspace

    owns = not isinstance(ws_or_path, Workspace)
    ws = Workspace(ws_or_path) if owns else ws_or_path
    sc = ws.config.serve
    tok = token if token is not None else resolve_token(sc.token, sc.token_env)
    state = ServeState(
        ws=ws, catalog=Catalog(ws), security=Security.create(tok, secret),
        runner=QueryRunner(ws.store, timeout_s=query_timeout_s or sc.query_timeout_s, max_rows=max_rows,
                           slots=query_slots, snapshot_dir=ws.cache_dir("sparql-snapshots")),
        images=ImageSource(ws.cache_dir("iiif")), templates=_templates(), public_url=public_url, owns_ws=owns)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        state.runner.close()
        if state.owns_ws:
            state.ws.close()

    app = FastAPI(
        title=f"Iconoscope: {ws.config.name}", version=__version__, docs_url=None, redoc_url=None, lifespan=lifespan,
        description="REST API of an Iconoscope collection: search, records, predictions, similar items and the "
                    "curators' review queue. Writes need `Authorization: Bearer TOKEN`. The SPARQL 1.1 endpoint "
                    "is at /sparql, IIIF manifests at /iiif/{record}/manifest.")
    app.state.iconoscope = state
    app.add_middleware(SecurityMiddleware)
    _install_handlers(app)

    from iconoscope.serve.routes import api, iiif, pages, sparql

    app.include_router(api.router)
    app.include_router(sparql.router)
    app.include_router(iiif.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    def openapi() -> dict[str, Any]:
        """The generated spec plus the bearer-token scheme the write operation names."""
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
                "type": "http", "scheme": "bearer"}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response((STATIC_DIR / "icon.svg").read_bytes(), media_type="image/svg+xml")

    @app.get("/health", include_in_schema=False)
    def health() -> dict[str, str]:
        return {"status": "ok"}
    return app
