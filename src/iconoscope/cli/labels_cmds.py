"""``iconoscope labels CLASSIFIER [--out FILE.parquet]``: training labels from the graph, with counts."""

from __future__ import annotations

from pathlib import Path

import click

from iconoscope.cli import Context, pass_ctx


@click.command()
@click.argument("classifier")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the table here instead of labels/CLASSIFIER.parquet.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
              help="How to print the per-category counts.")
@pass_ctx
def labels(ctx: Context, classifier: str, out: Path | None, fmt: str) -> None:
    """Derive CLASSIFIER's training labels (SPARQL rules over the graph) and print positives per category."""
    from iconoscope.cli.output import print_table
    from iconoscope.ingest.labels import derive_labels, label_counts, write_labels

    ws = ctx.ws
    table = derive_labels(ws, classifier)
    path = write_labels(ws, classifier, table, out)
    counts = label_counts(table)
    n = table.num_rows
    rows = [(label, n_rec, n_img, f"{n_img / n:.1%}" if n else "-", iri) for iri, label, n_rec, n_img in counts]
    negatives = sum(1 for cs in table.column("categories").to_pylist() if not cs)
    print_table(["category", "records", "images", "share", "concept"], rows, fmt)
    if fmt == "table":
        click.echo(f"{n} images in the table ({negatives} negative for every category) -> {path}")
