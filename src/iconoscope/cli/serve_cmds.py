"""``iconoscope serve``: the curator's web app, the SPARQL endpoint, IIIF manifests and the REST API."""

from __future__ import annotations

import click

from iconoscope.cli import Context, pass_ctx


@click.command()
@click.option("--host", help="Interface to listen on (default: [serve] host, 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), help="TCP port (default: [serve] port, 8000).")
@click.option("--public-url", help="Base URL clients see, when behind a reverse proxy (used in IIIF ids).")
@pass_ctx
def serve(ctx: Context, host: str | None, port: int | None, public_url: str | None) -> None:
    """Serve the workspace: web app, /sparql, /iiif/{record}/manifest and /api (OpenAPI at /openapi.json).

    Writes (review decisions, SPARQL UPDATE) need the token from [serve] token_env (default ICONOSCOPE_TOKEN);
    without one, a token for this run is printed. The server holds the graph store: stop it before other
    commands that write to the graph.
    """
    from iconoscope.serve.server import run_server

    run_server(ctx.ws, host=host, port=port, public_url=public_url)
