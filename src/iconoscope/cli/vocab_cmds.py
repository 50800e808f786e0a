"""``iconoscope vocab load|show|list``: thesauri into the graph, and a look at one concept."""

from __future__ import annotations

from pathlib import Path

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.config import VOCAB_FORMATS

MAX_ISSUES = 20


@click.group()
def vocab() -> None:
    """Thesauri: load SKOS files, the Iconclass text distribution or CSV trees; inspect concepts."""


@vocab.command("load")
@click.argument("name")
@click.argument("path", required=False, type=click.Path(exists=True, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(VOCAB_FORMATS),
              help="skos (Turtle, RDF/XML, N-Triples, JSON-LD), iconclass (text folder) or csv "
                   "(id,label,parent[,lang]); default: the config's, else guessed from PATH.")
@click.option("--strict", is_flag=True, help="Stop at the first problem in the file (nothing is stored).")
@pass_ctx
def load(ctx: Context, name: str, path: Path | None, fmt: str | None, strict: bool) -> None:
    """Load vocabulary NAME from PATH (default: [vocabularies.NAME] path), replacing its graph atomically."""
    from iconoscope.thesaurus import load_vocabulary

    report = load_vocabulary(ctx.ws, name, path, fmt, strict=strict)
    click.echo(report.summary())
    for issue in report.issues[:MAX_ISSUES]:
        click.echo(f"warning: {issue}", err=True)
    if len(report.issues) > MAX_ISSUES:
        click.echo(f"warning: … and {len(report.issues) - MAX_ISSUES} more issue(s)", err=True)


@vocab.command("show")
@click.argument("name")
@click.argument("concept")
@click.option("--lang", help="Language of the labels printed in the broader chain (default: en, else any).")
@pass_ctx
def show(ctx: Context, name: str, concept: str, lang: str | None) -> None:
    """Print CONCEPT (an IRI, a notation or a label) of vocabulary NAME: labels, broader chain, narrower counts."""
    from iconoscope.thesaurus import concept_info

    info = concept_info(ctx.ws, name, concept, lang=lang)
    click.echo(info.iri + (f"  (notation {info.notation})" if info.notation else ""))
    for lg, label in sorted(info.pref.items()):
        click.echo(f"  prefLabel @{lg or '-'}: {label}")
    for lg, labels in sorted(info.alt.items()):
        shown = "; ".join(sorted(labels)[:12]) + (f"; … ({len(labels)} in all)" if len(labels) > 12 else "")
        click.echo(f"  altLabel  @{lg or '-'}: {shown}")
    if not info.chains or info.chains == [[info.iri]]:
        click.echo("  broader: none (a top concept)")
    for chain in info.chains:
        click.echo("  broader: " + "  <  ".join(info.names.get(c, c) for c in chain))
    click.echo(f"  narrower: {info.narrower_direct} direct, {info.narrower_all} in all")
    for r in info.related:
        click.echo(f"  related: {info.names.get(r, r)}")


@vocab.command("list")
@pass_ctx
def list_(ctx: Context) -> None:
    """The vocabularies loaded in the graph, with their triple counts."""
    from iconoscope.cli.output import print_table

    ws = ctx.ws
    prefix = ws.iris.vocab_graph("")
    rows = [(g[len(prefix):], ws.store.count(g)) for g in ws.store.graphs() if g.startswith(prefix)]
    print_table(["vocabulary", "triples"], rows)
