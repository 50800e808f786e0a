"""Running the web app with Uvicorn: ``iconoscope serve`` and ``iconoscope demo --serve`` end here.

The server holds the workspace's Oxigraph store open, and Oxigraph allows one writing process: stop the server
before running CLI verbs that write (ingest, predict, rules apply), or use a SPARQL server backend
(``[store] kind = "sparql"``), which any number of processes can share.
"""

from __future__ import annotations

import secrets
import sys
from typing import Any

from iconoscope.serve.security import resolve_token


def warm_up(catalog: Any) -> None:
    """Read, in the background, what the first search and review-queue pages need (facets, the candidates of
    the latest runs): on a large collection that takes seconds, better spent before a curator's first click."""
    import logging
    import threading

    def work() -> None:
        try:
            catalog.facet_rows()
            catalog.review_queue("suggestions", limit=1)
        except Exception as e:  # a cold cache is only slower, never wrong
            logging.getLogger("iconoscope.serve").warning("warm-up failed: %s", e)

    threading.Thread(target=work, name="iconoscope-warm-up", daemon=True).start()


def run_server(ws: Any, host: str | None = None, port: int | None = None, token: str | None = None,
               log_level: str = "info", public_url: str | None = None) -> None:
    """Serve ``ws`` (a Workspace or its folder) until interrupted; prints the URL and, when no token is
    configured, a one-time token for this run so that curators can still sign in and review."""
    import uvicorn

    from iconoscope.serve.app import create_app
    from iconoscope.workspace import Workspace

    ws = ws if isinstance(ws, Workspace) else Workspace(ws)
    sc = ws.config.serve
    host = host or sc.host
    port = int(port or sc.port)
    tok = token or resolve_token(sc.token, sc.token_env)
    generated = tok is None
    if generated:
        tok = secrets.token_urlsafe(18)
    app = create_app(ws, token=tok, public_url=public_url)
    warm_up(app.state.iconoscope.catalog)
    url = f"http://{host if host not in ('0.0.0.0', '::') else '127.0.0.1'}:{port}/"
    print(f"Iconoscope: serving '{ws.config.name}' at {url}", file=sys.stderr)
    if generated:
        print(f"  review token for this run (set {sc.token_env} to choose one): {tok}", file=sys.stderr)
    print("  the graph store is held by this server: stop it before CLI commands that write to the graph",
          file=sys.stderr)
    uvicorn.run(app, host=host, port=port, log_level=log_level, proxy_headers=True)
