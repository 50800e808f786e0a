"""``export predictions``, ``search``, ``audit`` and ``suggest-related``: thin wrappers over ``iconoscope.enrich``."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.cli.output import print_table
from iconoscope.errors import IconoscopeError


@contextlib.contextmanager
def _output(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            yield f
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@click.group()
def export() -> None:
    """Export data from the graph."""


@export.command("predictions")
@click.argument("classifier")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonld", "ttl"]), default="csv", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@click.option("--lang", help="Language of the concept labels in CSV (default: the collection's first).")
@pass_ctx
def predictions(ctx: Context, classifier: str, fmt: str, output: Path | None, lang: str | None) -> None:
    """The current prediction run of CLASSIFIER (CSV: record,image,concept,label,score,model,model_version,run)."""
    from iconoscope.enrich.export import export_predictions

    with _output(output) as out:
        n = export_predictions(ctx.ws, classifier, fmt, out, lang)
    click.echo(f"{n} annotations" + (f" -> {output}" if output else ""), err=True)


@click.command()
@click.argument("text")
@click.option("--lang", help="Language of TEXT (default: any of the collection's languages).")
@click.option("--min-score", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--limit", type=click.IntRange(0), default=50, show_default=True)
@click.option("--offset", type=click.IntRange(0), default=0, show_default=True)
@click.option("--classifier", help="Only this classifier's run (default: every classifier scoring the concept).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@pass_ctx
def search(ctx: Context, text: str, lang: str | None, min_score: float, limit: int, offset: int,
           classifier: str | None, fmt: str) -> None:
    """Records ranked by how strongly their images show the concept TEXT names (or a concept below it)."""
    from iconoscope.enrich.concepts import resolve_concepts
    from iconoscope.enrich.search import search as run_search

    ws = ctx.ws
    if not resolve_concepts(ws, text, lang):
        raise IconoscopeError(f"no concept labelled {text!r}" + (f" in language '{lang}'" if lang else "") +
                              " (try another spelling, --lang, or a concept IRI)")
    hits = run_search(ws, text, lang=lang, min_score=min_score, limit=limit, offset=offset, classifier=classifier)
    cols = ["record", "image", "label", "score", "annotated", "classifier", "concept"]
    rows = [[h.record, h.image, h.label, h.score, "yes" if h.annotated else "new", h.classifier, h.concept]
            for h in hits]
    print_table(cols, rows, fmt)
    if fmt == "table":
        new = sum(1 for h in hits if not h.annotated)
        click.echo(f"{len(hits)} record(s): {len(hits) - new} already annotated, {new} new find(s)", err=True)


@click.command()
@click.argument("classifier")
@click.option("--kind", type=click.Choice(["noise", "silence"]), required=True,
              help="noise: annotated but low score; silence: high score but not annotated.")
@click.option("--category", help="One category (label, notation or IRI); default: all of the classifier's.")
@click.option("--limit", type=click.IntRange(0), help="At most this many items, worst first (html: 500 by default).")
@click.option("--lang", help="Language of labels and of --category.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json", "html"]), default="table",
              show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File (default: stdout).")
@pass_ctx
def audit(ctx: Context, classifier: str, kind: str, category: str | None, limit: int | None, lang: str | None,
          fmt: str, output: Path | None) -> None:
    """Where curated annotations and CLASSIFIER's current run disagree, worst first (per-class thresholds from
    cross-validated scores)."""
    from iconoscope.enrich.audit import audit as run_audit

    ws = ctx.ws
    if fmt == "html" and limit is None:
        limit = 500  # a page of thumbnails stays light; ask for more with --limit
    items = run_audit(ws, classifier, kind, category=category, limit=limit, lang=lang)
    with _output(output) as out:
        if fmt == "html":
            from iconoscope.enrich.report import audit_html

            out.write(audit_html(ws, classifier, kind, items))
        else:
            cols = ["record", "image", "label", "score", "threshold", "subject_text", "concept"]
            rows = [[i.record, i.image, i.label, i.score, i.threshold, i.subject_text, i.concept] for i in items]
            print_table(cols, rows, fmt, out=out)
    click.echo(f"{kind}: {len(items)} item(s)" + (f" -> {output}" if output else ""), err=True)


@click.command("suggest-related")
@click.argument("classifier")
@click.option("--min-count", type=click.IntRange(1), default=5, show_default=True,
              help="Least co-occurrences (or confusions) for a pair to be proposed.")
@click.option("--min-rate", type=click.FloatRange(0, 1), default=0.05, show_default=True,
              help="Least confusion rate for a pair proposed on model confusion.")
@click.option("--lang", help="Language of the labels.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the suggestions as CSV (edit the accept column, then --apply it).")
@click.option("--apply", "apply_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Write the accepted pairs of this CSV as skos:related, with provenance.")
@click.option("--user", help="Who accepted the pairs (recorded with --apply).")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@pass_ctx
def suggest_related(ctx: Context, classifier: str, min_count: int, min_rate: float, lang: str | None,
                    output: Path | None, apply_path: Path | None, user: str | None, fmt: str) -> None:
    """skos:related candidates among CLASSIFIER's categories, from annotation co-occurrence and model confusion."""
    from iconoscope.enrich import related

    ws = ctx.ws
    if apply_path is not None:
        n = related.apply_related(ws, classifier, apply_path, user=user)
        graph = ws.iris.rules_graph(f"related-{classifier}")
        click.echo(f"{apply_path.name}: {n} skos:related pair(s) written to {graph}")
        return
    sugg = related.suggest_related(ws, classifier, min_count=min_count, min_rate=min_rate, lang=lang)
    if output is not None:
        with _output(output) as out:
            related.write_suggestions_csv(sugg, out)
        click.echo(f"{len(sugg)} suggestion(s) -> {output}; set accept=1 on the ones to keep, then "
                   f"'iconoscope suggest-related {classifier} --apply {output}'", err=True)
        return
    if fmt == "json":
        click.echo(json.dumps([s.as_dict() for s in sugg], ensure_ascii=False, indent=1))
        return
    cols = ["label_a", "label_b", "evidence", "n_ab", "odds_ratio", "pmi", "confused_ab", "confused_ba",
            "confusion_rate"]
    print_table(cols, [[getattr(s, c) for c in cols] for s in sugg], fmt)
