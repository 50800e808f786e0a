"""``iconoscope sparql`` and ``iconoscope rules apply``: the graph, directly."""

from __future__ import annotations

import re
from pathlib import Path

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.cli.output import print_table
from iconoscope.graph import queries

_KIND = re.compile(r"^\s*(?:(?:PREFIX|BASE)[^\n]*\n|#[^\n]*\n|\s)*(\w+)", re.IGNORECASE)


def query_kind(text: str) -> str:
    """SELECT / ASK / CONSTRUCT / DESCRIBE / update, from the first keyword after the prologue."""
    body = queries.prefix_free(text)
    m = _KIND.match(body)
    return m.group(1).upper() if m else ""


@click.command()
@click.argument("query")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@pass_ctx
def sparql(ctx: Context, query: str, fmt: str) -> None:
    """Run a SPARQL query (text or a .rq file) over the union of all graphs."""
    path = Path(query)
    text = queries.load_file(path) if query.endswith(".rq") or (len(query) < 300 and path.is_file()) \
        else queries.render(query)
    store = ctx.ws.store
    kind = query_kind(text)
    if kind == "ASK":
        click.echo("true" if store.ask(text) else "false")
    elif kind in ("CONSTRUCT", "DESCRIBE"):
        click.echo(store.construct(text, "turtle").decode("utf-8"), nl=False)
    else:
        res = store.select(text)
        rows = [[(t.value if t is not None else None) for t in r] for r in res.rows]
        print_table(res.vars, rows, fmt)


@click.group()
def rules() -> None:
    """SPARQL UPDATE rules (e.g. skos:related links)."""


@rules.command("apply")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--graph", help="Write into this named graph instead of the one the rule names.")
@pass_ctx
def apply(ctx: Context, file: Path, graph: str | None) -> None:
    """Run the SPARQL UPDATE in FILE and report how many triples it added or removed."""
    from iconoscope.graph.rules import apply_rule

    added = apply_rule(ctx.ws, file, graph=graph)
    click.echo(f"{file.name}: {added:+d} triples")
