"""``iconoscope embed | train | eval | predict``: the learning verbs (thin: parse, call iconoscope.learn, print)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from iconoscope.cli import Context, pass_ctx
from iconoscope.cli.output import print_table


def _echo(res: object) -> None:
    """Print what another head's function returned (multimodal models have their own report objects)."""
    for method in ("summary", "text"):
        if hasattr(res, method):
            click.echo(getattr(res, method)())
            return
    click.echo(json.dumps(res, indent=1, default=str) if isinstance(res, (dict, list)) else str(res))


@click.command()
@click.argument("spec")
@click.option("--all", "everything", is_flag=True, help="Every convolution/activation output, not only block outputs.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True)
@pass_ctx
def layers(ctx: Context, spec: str, everything: bool, fmt: str) -> None:
    """List the feature layers of a torchscript:/onnx: backbone, with their shapes, for its layer= option.

    Several can be pooled side by side: layer=NAME+NAME+pool. ${data} and relative paths resolve against the
    workspace when there is one.
    """
    from iconoscope.config import CONFIG_NAME
    from iconoscope.learn.backbones.layers import list_layers

    ws = ctx.ws if (ctx.workspace_path / CONFIG_NAME).is_file() else None
    rows = [info.row() for info in list_layers(spec, ws=ws, everything=everything)]
    cols = ["layer", "op", "shape", "note"]
    print_table(cols, [[r[c] for c in cols] for r in rows], fmt)


@click.command()
@click.option("--backbone", "spec", help="Backbone spec (default: the collection's default_backbone, or every "
              "backbone of the classifiers when --all).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--source", "sources", multiple=True, help="Only images of this source (repeatable).")
@click.option("--batch-size", type=int, default=64, show_default=True)
@click.option("--workers", type=int, default=None, help="Decoding worker processes (default: cores - 1).")
@click.option("--rebuild", is_flag=True, help="Delete the stored vectors of this backbone first.")
@click.option("--all", "all_", is_flag=True,
              help="Embed with the backbone of every classifier project (fine-tuned smallcnn/hf: ones train on "
                   "pixels; a fine-tuned torchscript: top trains on the maps stored here).")
@pass_ctx
def embed(ctx: Context, spec: str | None, engine: str, sources: tuple[str, ...], batch_size: int,
          workers: int | None, rebuild: bool, all_: bool) -> None:
    """Embed the collection's images (resumable: skips what is stored; failures are listed, never fatal)."""
    from iconoscope.learn.embed import EmbeddingStore, embed_images

    ws = ctx.ws
    if spec:
        specs = [spec]
    elif all_:
        specs = stored_specs(ws.config)
    else:
        specs = [ws.config.default_backbone]
    for s in specs:
        rep = embed_images(ws, s, engine=engine, batch_size=batch_size, workers=workers,
                           sources=list(sources) or None, rebuild=rebuild)
        click.echo(rep.summary())
        fails = EmbeddingStore(ws, s).failures()
        if fails.num_rows:
            click.echo(f"{fails.num_rows} image(s) could not be embedded (see failures.parquet), e.g.:", err=True)
            for r in fails.slice(0, 5).to_pylist():
                click.echo(f"  {r['image']}: {r['location']}: {r['reason']}", err=True)


def stored_specs(config: Any) -> list[str]:
    """The backbones whose stored vectors the classifier projects train on (``embed --all``): every project's but
    the multimodal ones, the ensembles (they read their members') and the fine-tuned smallcnn/hf: ones (they train on
    pixels); a fine-tuned torchscript: top trains on the maps stored under its spec."""
    return sorted({c.backbone for c in config.classifiers.values() if c.head not in ("multimodal", "ensemble")
                   and (c.head != "finetune" or c.backbone.startswith("torchscript:"))})


@click.command()
@click.argument("classifier")
@click.option("--folds", type=click.IntRange(2, 20), default=None, help="Number of CV folds (default: config).")
@click.option("--seed", type=int, default=None)
@pass_ctx
def train(ctx: Context, classifier: str, folds: int | None, seed: int | None) -> None:
    """Cross-validate and train CLASSIFIER; writes models/CLASSIFIER/ with a model card."""
    from iconoscope.learn.train import train_classifier

    _echo(train_classifier(ctx.ws, classifier, folds=folds, seed=seed))


@click.command("eval")
@click.argument("classifier")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for the HTML report (default: reports/eval-CLASSIFIER).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.option("--compare-single-input", is_flag=True, help="Multimodal models: also score single-input baselines.")
@pass_ctx
def eval_(ctx: Context, classifier: str, report_dir: Path | None, fmt: str, compare_single_input: bool) -> None:
    """Cross-validated metrics of CLASSIFIER (out-of-fold only) and an HTML report."""
    from iconoscope.learn.evaluate import evaluate

    ws = ctx.ws
    report_dir = report_dir or ws.reports_dir(f"eval-{classifier}")
    res = evaluate(ws, classifier, report_dir, compare_single_input=compare_single_input)
    if not isinstance(res, dict) or "per_class" not in res:  # the multimodal evaluator has its own report
        _echo(res)
        return
    if fmt == "json":
        click.echo(json.dumps(res, indent=1, default=str))
        return
    click.echo(f"{classifier} v{res['version']} ({res['head']} on {res['backbone']}): {res['protocol']}")
    rows = [[k, v, res["cv_std"].get(k)] for k, v in res["cv_mean"].items()]
    print_table(["metric", "cv mean", "cv std"], rows)
    print_table(["label", "support", "AP", "precision", "recall", "F1", "threshold"],
                [[p["label"], p["support"], p["ap"], p["precision"], p["recall"], p["f1"], p["threshold"]]
                 for p in res["per_class"]])
    if res.get("report"):
        click.echo(f"report: {res['report']}")


@click.command()
@click.argument("classifier")
@click.option("--source", help="Only images of this source (graph mode).")
@click.option("--images", "images_dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Classify loose image files in this folder instead of the collection.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="CSV to write (with --images).")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None)
@click.option("--floor", type=float, default=None,
              help="Store scores at or above this (graph mode; default 0.05, 0 keeps every score: README "
                   "'Enrichment' measures the trade-off).")
@pass_ctx
def predict(ctx: Context, classifier: str, source: str | None, images_dir: Path | None, out: Path | None,
            engine: str, workers: int | None, floor: float | None) -> None:
    """Score the collection into a prediction run, or loose files (--images DIR --out FILE.csv)."""
    ws = ctx.ws
    cfg = ws.config.classifier(classifier)
    if cfg.head == "multimodal":
        from iconoscope.learn.multimodal import predict_multimodal

        _echo(predict_multimodal(ws, classifier, source=source, images=images_dir, out=out))
        return
    if images_dir is not None:
        if out is None:
            raise click.UsageError("--images needs --out FILE.csv")
        from iconoscope.learn.predict import predict_folder

        res = predict_folder(ws, classifier, images_dir, out, workers=workers)
        click.echo(f"{len(res.names)} image(s) x {len(res.categories)} categories -> {out}")
        for name, reason in res.failures:
            click.echo(f"skipped {name}: {reason}", err=True)
        return
    if out is not None:
        raise click.UsageError("--out goes with --images (graph predictions go into a run graph)")
    from iconoscope.learn.predict import predict_collection

    res = predict_collection(ws, classifier, source=source, engine=engine, floor=floor)
    click.echo(f"prediction run: {res}")
