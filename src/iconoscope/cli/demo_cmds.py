"""``iconoscope demo [DIR] [--serve]``: the whole pipeline on a collection it generates itself."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("directory", required=False, type=click.Path(file_okay=False, path_type=Path))
@click.option("--records", "n", default=300, show_default=True, help="How many records to generate.")
@click.option("--serve", is_flag=True, help="End by serving the demo collection in the web app.")
@click.option("--quick", is_flag=True, help="Smoke-test size: 3 folds, 15 epochs.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def demo(directory: Path | None, n: int, serve: bool, quick: bool, host: str, port: int) -> None:
    """Generate a small collection and run ingest, labels, embed, train, predict, audit and explore on it."""
    from iconoscope.demo.run import run_demo

    run_demo(directory or Path("iconoscope-demo"), n=n, serve=serve, host=host, port=port, quick=quick)
