"""``iconoscope index | similar | duplicates | clusters | map | feedback | zero-shot``: exploring by embeddings.

Thin: each verb parses its options, calls ``iconoscope.explore`` and prints a table (``--format table|csv|json``).
"""

from __future__ import annotations

import json
from pathlib import Path

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.cli.output import print_table
from iconoscope.errors import ConfigError

BACKBONE_HELP = "Backbone spec whose embeddings to use (default: the collection's default, or the only one embedded)."
FORMATS = click.Choice(["table", "csv", "json"])


def _ids(values: tuple[str, ...]) -> list[str]:
    """Ids from repeated options, each possibly comma-separated."""
    return [v.strip() for value in values for v in value.split(",") if v.strip()]


def _ints(text: str, what: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise ConfigError(f"{what} {text!r}: expected comma-separated integers, e.g. 8,16,32") from None


@click.command()
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--kind", type=click.Choice(["auto", "exact", "ivf"]), default="auto", show_default=True,
              help="auto: exact below 20,000 vectors, faiss IVF above.")
@click.option("--rebuild", is_flag=True, help="Rebuild from the embeddings instead of updating.")
@pass_ctx
def index(ctx: Context, spec: str | None, kind: str, rebuild: bool) -> None:
    """Build or update the vector index of a backbone's embeddings (incremental: adds new, drops deleted)."""
    from iconoscope.explore.vectors import INDEX_DIR, open_collection

    coll = open_collection(ctx.ws, spec, kind=kind, rebuild=rebuild, show_progress=True)
    st = coll.index.stats()
    click.echo(f"{coll.spec}: {st['count']} vectors of dim {st['dim']}, {st['backend']} index"
               + (f" (nlist {st['nlist']}, nprobe {st['nprobe']}, calibrated recall@10 "
                  f"{st.get('calibration_recall_at_k', '-')})" if st["backend"] == "ivf" else "")
               + f" in {ctx.ws.vectors_dir(coll.spec) / INDEX_DIR}")


@click.command()
@click.argument("record", required=False)
@click.option("--k", type=click.IntRange(1, 10_000), default=10, show_default=True)
@click.option("--file", "file_", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Find records similar to this image file instead of a record.")
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_ctx
def similar(ctx: Context, record: str | None, k: int, file_: Path | None, spec: str | None, fmt: str) -> None:
    """The K records most similar to RECORD (a record or image id), or to an image --file."""
    from iconoscope.explore.similar import similar as similar_fn
    from iconoscope.explore.similar import similar_to_file

    if (record is None) == (file_ is None):
        raise click.UsageError("give a RECORD id or --file IMAGE (one of them)")
    hits = similar_to_file(ctx.ws, file_, k, spec) if file_ else similar_fn(ctx.ws, record, k, spec)
    print_table(["rank", "record", "image", "score"], [[n + 1, *h] for n, h in enumerate(hits)], fmt)


@click.command()
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--phash", "phash_max", type=click.IntRange(0, 64), default=None,
              help="Max pHash distance of a hash pair (default: measured, see README).")
@click.option("--dhash", "dhash_max", type=click.IntRange(0, 64), default=None, help="Max dHash distance.")
@click.option("--thumb", "thumb_min", type=click.FloatRange(-1, 1), default=None,
              help="Min thumbnail cosine of a near-exact copy.")
@click.option("--thumb-verify", type=click.FloatRange(-1, 1), default=None,
              help="Min thumbnail cosine that confirms a hash pair.")
@click.option("--margin", "margin_min", type=click.FloatRange(-2, 2), default=None,
              help="Min embedding margin of a near-duplicate.")
@click.option("--cosine", "cosine_min", type=click.FloatRange(-1, 1), default=None,
              help="Min centred embedding cosine of a near-duplicate.")
@click.option("--no-embeddings", is_flag=True, help="Hashes and thumbnails only.")
@click.option("--no-hashes", is_flag=True, help="Embeddings only.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "html", "json"]), default=None,
              help="Output format (default: table on screen; with -o, from the file suffix).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the review file here.")
@pass_ctx
def duplicates(ctx: Context, spec: str | None, phash_max: int | None, dhash_max: int | None,
               thumb_min: float | None, thumb_verify: float | None, margin_min: float | None,
               cosine_min: float | None, no_embeddings: bool,
               no_hashes: bool, fmt: str | None, output: Path | None) -> None:
    """Exact and near-exact copies (hashes, thumbnails) and near-duplicates (embeddings), grouped for review."""
    from dataclasses import replace

    from iconoscope.explore import duplicates as dup

    ws = ctx.ws
    given = {"phash_max": phash_max, "dhash_max": dhash_max, "thumb_min": thumb_min, "thumb_verify": thumb_verify,
             "margin_min": margin_min, "cosine_min": cosine_min}
    rules = replace(dup.Rules(), **{k: v for k, v in given.items() if v is not None})
    rep = dup.find_duplicates(ws, spec, rules, use_hashes=not no_hashes, use_embeddings=not no_embeddings,
                              show_progress=True)
    if rep.failures:
        click.echo(f"{len(rep.failures)} image(s) could not be read and were left out, e.g.:", err=True)
        for img, reason in list(rep.failures.items())[:5]:
            click.echo(f"  image {img}: {reason}", err=True)
    n_imgs = sum(len(g.images) for g in rep.groups)
    click.echo(f"{len(rep.groups)} duplicate groups ({n_imgs} of {rep.images} images); settings "
               f"{json.dumps(rep.settings)}" + (f", embeddings {rep.spec}" if rep.spec else ""), err=True)
    if output is not None:
        path = dup.write_review(rep.groups, output, fmt if fmt in ("csv", "html") else None,
                                cache_dir=ws.cache_dir("images"))
        click.echo(f"wrote {path}", err=True)
        return
    if fmt == "html":
        raise click.UsageError("--format html needs -o FILE.html")
    print_table(list(dup.CSV_COLUMNS), dup.review_rows(rep.groups), fmt or "table")


@click.command()
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--k", "ks", default="8,16,32", show_default=True, help="k-means settings (comma-separated k).")
@click.option("--min-size", "min_sizes", default="5,15,40", show_default=True,
              help="HDBSCAN settings (comma-separated min_cluster_size); empty to skip.")
@click.option("--choose", help="Keep this setting (e.g. kmeans:16) instead of the best-scoring one.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_ctx
def clusters(ctx: Context, spec: str | None, ks: str, min_sizes: str, choose: str | None, seed: int,
             fmt: str) -> None:
    """Cluster the embeddings with k-means and HDBSCAN; print each setting's silhouette and keep the best."""
    from iconoscope.explore.clusters import cluster_collection

    rep = cluster_collection(ctx.ws, spec, _ints(ks, "--k"), _ints(min_sizes, "--min-size"), choose=choose,
                             seed=seed, show_progress=True)
    rows = [list(s.row().values()) for s in rep.settings]
    print_table(list(rep.settings[0].row()), rows, fmt)
    click.echo(f"kept {rep.chosen.name} ({rep.chosen.n_clusters} clusters) for {rep.spec}", err=True)


@click.command("map")
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--method", type=click.Choice(["umap", "pca"]), default="umap", show_default=True)
@click.option("--neighbors", type=click.IntRange(2, 500), default=15, show_default=True, help="UMAP n_neighbors.")
@click.option("--min-dist", type=click.FloatRange(0, 1), default=0.1, show_default=True, help="UMAP min_dist.")
@click.option("--png", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the thumbnail map here (default: reports/map-BACKBONE.png).")
@click.option("--no-png", is_flag=True, help="Only the JSON layout.")
@click.option("--thumb", type=click.IntRange(8, 256), default=32, show_default=True, help="Thumbnail size (px).")
@click.option("--no-grid", is_flag=True, help="Place thumbnails at their exact positions (overlapping).")
@click.option("--seed", type=int, default=0, show_default=True)
@pass_ctx
def map_(ctx: Context, spec: str | None, method: str, neighbors: int, min_dist: float, png: Path | None,
         no_png: bool, thumb: int, no_grid: bool, seed: int) -> None:
    """A 2-D map of the collection: UMAP layout (JSON for the web app) and a PixPlot-style PNG of thumbnails."""
    from iconoscope.explore.map import build_map, map_path, render_map_png

    ws = ctx.ws
    data = build_map(ws, spec, method=method, n_neighbors=neighbors, min_dist=min_dist, seed=seed)
    click.echo(f"{data['count']} points ({data['method']}, {data['seconds']} s) -> {map_path(ws, data['spec'])}")
    if not no_png:
        path = render_map_png(ws, png, data["spec"], thumb=thumb, grid=not no_grid, show_progress=True)
        click.echo(f"wrote {path}")


@click.command()
@click.option("--positive", "-p", "positives", multiple=True, help="Relevant record/image ids (comma-separated, "
              "repeatable).")
@click.option("--negative", "-n", "negatives", multiple=True, help="Irrelevant record/image ids.")
@click.option("--session", default="default", show_default=True,
              help="Feedback session: labels accumulate across runs (rounds) under this name.")
@click.option("--reset", is_flag=True, help="Forget the session's earlier labels first.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=50, show_default=True)
@click.option("--hide-labeled", is_flag=True, help="List only images not labelled yet (what to look at next).")
@click.option("--save-as", "save_as", help="Keep the result in the graph as this category (with provenance).")
@click.option("--user", help="Curator name recorded with --save-as.")
@click.option("--backbone", "spec", help=BACKBONE_HELP)
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@pass_ctx
def feedback(ctx: Context, positives: tuple[str, ...], negatives: tuple[str, ...], session: str, reset: bool,
             limit: int, hide_labeled: bool, save_as: str | None, user: str | None, spec: str | None,
             fmt: str) -> None:
    """Relevance feedback: a linear SVM on the embeddings of your examples ranks the collection; repeat to refine."""
    from iconoscope.explore.feedback import FeedbackSession, rank, save_category

    ws = ctx.ws
    sess = FeedbackSession.load(ws, session, spec)
    if reset:
        sess.reset(ws)
    sess.add(_ids(positives), _ids(negatives))
    if not sess.positives:
        raise click.UsageError("no positive example yet in this session: give --positive ID")
    res = rank(ws, sess.positives, sess.negatives, sess.spec, limit=limit, hide_labeled=hide_labeled)
    sess.save(ws)
    label = {**{i: "-" for i in sess.negatives}, **{i: "+" for i in sess.positives}}
    rows = [[n + 1, h.record, h.image, h.score, label.get(h.image, label.get(h.record, ""))]
            for n, h in enumerate(res.hits)]
    print_table(["rank", "record", "image", "score", "label"], rows, fmt)
    click.echo(f"session {session!r}: round {len(sess.rounds)}, {len(sess.positives)} positive, "
               f"{len(sess.negatives)} negative example(s)", err=True)
    if save_as:
        out = save_category(ws, save_as, sess.positives, sess.negatives, sess.spec, agent=user,
                            rounds=len(sess.rounds))
        click.echo(f"saved category {out['concept']}: {out['annotations']} images in {out['graph']}", err=True)


@click.command("zero-shot")
@click.argument("text", required=False)
@click.option("--k", type=click.IntRange(1, 10_000), default=10, show_default=True, help="Results of a text search.")
@click.option("--vocabulary", help="Score every concept of this vocabulary (prompts from its prefLabels).")
@click.option("--concept", "concepts", multiple=True, help="Score these concept IRIs (repeatable).")
@click.option("--classifier", help="Score the categories of this classifier project.")
@click.option("--top", type=click.IntRange(1, 1000), default=3, show_default=True, help="Concepts shown per image.")
@click.option("--lang", "langs", multiple=True, help="Prompt languages (default: the collection's languages).")
@click.option("--backbone", "spec", help="The hf: CLIP/SigLIP backbone (default: the only hf: one embedded).")
@click.option("--format", "fmt", type=FORMATS, default="table", show_default=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write the scores as CSV.")
@pass_ctx
def zero_shot(ctx: Context, text: str | None, k: int, vocabulary: str | None, concepts: tuple[str, ...],
              classifier: str | None, top: int, langs: tuple[str, ...], spec: str | None, fmt: str,
              output: Path | None) -> None:
    """Search images by TEXT, or score categories zero-shot, with a CLIP/SigLIP model."""
    from iconoscope.explore.zeroshot import text_search, zero_shot_scores

    ws = ctx.ws
    cats = list(concepts)
    if classifier:
        cats += list(ws.config.classifier(classifier).categories)
    if text and (cats or vocabulary):
        raise click.UsageError("give TEXT (search) or categories (--vocabulary/--concept/--classifier), not both")
    if text:
        hits = text_search(ws, text, k, spec)
        print_table(["rank", "record", "image", "score"], [[n + 1, *h] for n, h in enumerate(hits)], fmt)
        return
    if not cats and not vocabulary:
        raise click.UsageError("give TEXT to search, or categories: --vocabulary NAME, --concept IRI or "
                               "--classifier NAME")
    res = zero_shot_scores(ws, cats or None, vocabulary, spec, list(langs) or None)
    if output is not None:
        import csv

        output.parent.mkdir(parents=True, exist_ok=True)
        with open(output, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["record", "image", "concept", "label", "score"])
            for r, (img, rec) in enumerate(zip(res.images, res.records, strict=True)):
                for c, (iri, lab) in enumerate(zip(res.concepts, res.labels, strict=True)):
                    w.writerow([rec, img, iri, lab, f"{res.scores[r, c]:.6f}"])
        click.echo(f"wrote {output} ({len(res.images)} images x {len(res.concepts)} concepts)", err=True)
        return
    rows = [[rec, img, n + 1, lab, iri, score] for rec, img, best in res.top(top)
            for n, (iri, lab, score) in enumerate(best)]
    print_table(["record", "image", "rank", "label", "concept", "score"], rows, fmt)
