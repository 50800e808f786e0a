"""The paper's protocol on the pomological watercolours: image-only vs image + known metadata, artist and decade.

Usage::

    nice -n 10 python bench/multimodal_pomological.py [--work /tmp/iconoscope-mm-pom] [--data ../shared/data]
        [--inputs image,field:genus,...] [--epochs 30] [--backbone SPEC]
        [--models multimodal,meta] [--name artist_year_x --param unimodal_loss=0.5 ... --variant-inputs ...]

Builds (or reuses) a workspace in ``--work`` from ``examples/pomological/iconoscope.toml`` (its source, vocabularies
and extra columns) plus the classifier ``artist_year``, then runs what a user would::

    iconoscope -w WORK ingest
    iconoscope -w WORK embed --backbone SPEC      # MobileNetV2 pre-logits, full sheet + top crop (2 x 1280-d)
    iconoscope -w WORK train artist_year          # multimodal: 5-fold CV + the final model
    iconoscope -w WORK eval artist_year --compare-single-input

The image-only baseline is scored in this process while ``train`` runs in another (same folds: they are a function
of the labels and the seed); ``eval --compare-single-input`` reuses both out-of-fold score sets and reports per task
top-1 and macro P/R/F1 with fold standard deviations, on all classes and on classes with >= 50/100/300 records.
Targets: the 10 artists with at least 50 works (``min_count``) and the decade. Inputs: the image, genus, species,
variety, the year (as a one-hot year, a decade and a number) and the artist; each head is computed without its own
field, so the artist head sees the year and the decade head sees the artist. The floor from the issue (MobileNetV2
logits + logistic regression: artist top-1 0.68; species/genus/decade alone: 0.44) is printed beside the result.

The config written always declares two classifiers: ``artist_year`` (above) and ``artist_year_meta``, the
metadata-only side of the comparison: the same targets, ``min_count``, folds and seed (hence the same fold
assignment), inputs without ``image`` and no backbone. ``--models`` says which run: ``multimodal`` (default: the
protocol above), ``meta`` (``iconoscope train artist_year_meta`` + ``eval``), or both.

``--name NAME --param KEY=VALUE ...`` declares a third classifier NAME, ``artist_year`` with the extra settings
(TOML values, e.g. ``--param unimodal_loss=0.5``; see ``bench/multimodal_select.py`` for how one was chosen), and
runs the protocol on it instead of ``artist_year``; with no ``--name`` nothing changes, and the defaults reproduce
the README's table. Writes ``bench/results/multimodal_pomological.json`` (``..._NAME.json`` for a named variant;
``..._meta.json`` for the metadata-only model), with per-fold figures.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BACKBONE = ("torchscript:${data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"
            "?layer=pool&views=full,top")
INPUTS = ["image", "field:genus", "field:scientific_name", "field:variety", "date:1", "date:10", "num:year",
          "creator"]
FLOOR = {"image (MobileNetV2 logits + logistic regression)": 0.68, "species/genus/decade only": 0.44}

EXAMPLE = ROOT / "examples" / "pomological"
#: what the multimodal model and its metadata-only twin share: same targets, min_count and seed, hence same folds
SETTINGS = """targets = ["creator", "date:10"]
min_count = {{ creator = 50, date = 10 }}
folds = 5
epochs = {epochs}
image_units = 256
shared_units = 512
lr = 0.002
"""
CLASSIFIER = """
# the multitask model of issue 5 (appended by bench/multimodal_pomological.py)
[classifiers.artist_year]
head = "multimodal"
backbone = "{backbone}"
inputs = {inputs}
""" + SETTINGS
META = """
# metadata only, same targets, min_count and seed (hence the same folds): what the fields alone give
[classifiers.artist_year_meta]
head = "multimodal"
inputs = {inputs}
""" + SETTINGS


def parse_params(items: list[str]) -> list[str]:
    """``KEY=VALUE`` (a TOML value) -> TOML lines, each checked to parse."""
    lines = []
    for item in items:
        k, sep, v = item.partition("=")
        line = f"{k.strip()} = {v.strip()}"
        try:
            if not sep or not k.strip():
                raise ValueError("expected KEY=VALUE")
            tomllib.loads(line)
        except (ValueError, tomllib.TOMLDecodeError) as e:
            raise SystemExit(f"--param {item!r}: {e}") from e
        lines.append(line)
    return lines


def workspace_config(data: Path, inputs: list[str], epochs: int, backbone: str = BACKBONE, name: str = "artist_year",
                     params: list[str] | None = None, variant_inputs: list[str] | None = None) -> str:
    """The pomological example's config (its source, vocabularies, extra columns) with absolute paths, plus the
    multimodal classifier, its metadata-only twin and, when ``name`` is not ``artist_year``, the variant (with
    ``variant_inputs`` instead of ``inputs`` when given)."""
    text = (EXAMPLE / "iconoscope.toml").read_text(encoding="utf-8")
    text = text.replace('data = "../../../shared/data"', f'data = "{data.resolve()}"')
    text = text.replace('path = "taxa.ttl"', f'path = "{EXAMPLE / "taxa.ttl"}"')
    text = text.replace('mapping = "subjects.csv"', f'mapping = "{EXAMPLE / "subjects.csv"}"')
    block = CLASSIFIER.format(backbone=backbone, inputs=json.dumps(inputs), epochs=epochs)
    text += block + META.format(inputs=json.dumps([i for i in inputs if i != "image"]), epochs=epochs)
    if name != "artist_year":
        if variant_inputs is not None:
            block = CLASSIFIER.format(backbone=backbone, inputs=json.dumps(variant_inputs), epochs=epochs)
        text += (block.replace("[classifiers.artist_year]", f"[classifiers.{name}]")
                 .replace("(appended by", f"with {', '.join(params or [])} (appended by")
                 + "".join(line + "\n" for line in params or []))
    return text


def iconoscope(work: Path, *args: str) -> None:
    exe = Path(sys.executable).with_name("iconoscope")
    cmd = [str(exe) if exe.exists() else "iconoscope", "-w", str(work), *args]
    print("$ iconoscope -w", work, *args, file=sys.stderr)
    subprocess.run(cmd, check=True)


def artist_folds(models: dict[str, Any]) -> dict[str, list[float]]:
    """Artist top-1 per fold (all classes) of each model in an eval report."""
    return {label: [f["top1"] for f in per["creator"][0]["folds"]] for label, per in models.items()}


def default_baseline_folds(work: Path, name: str) -> list[float] | None:
    """Artist top-1 per fold of ``artist_year``'s image-only model, when a variant runs on the same folds.

    A variant that changes a setting the image-only model also reads (``modality_dropout``) gets its own baseline
    from ``eval --compare-single-input``; its gain is also given against this one, so that it cannot come from a
    weaker baseline."""
    from iconoscope.learn.multimodal.data import load_project
    from iconoscope.learn.multimodal.metrics import task_metrics
    from iconoscope.learn.multimodal.train import load_oof
    from iconoscope.workspace import Workspace

    with Workspace.open(work, read_only=True) as ws:
        path = ws.model_dir("artist_year") / "oof_image_only.npz"
        mine = ws.model_dir(name) / "oof_image_only.npz"
        if name == "artist_year" or not path.is_file() or not mine.is_file():
            return None
        fold, scores = load_oof(path, load_project(ws, "artist_year"))
        fold2, scores2 = load_oof(mine, load_project(ws, name))
    if not np.array_equal(fold, fold2) or scores[0].classes != scores2[0].classes:
        return None
    return [f["top1"] for f in task_metrics(scores[0], 0)["folds"]]


def run_multimodal(work: Path, name: str) -> tuple[Any, float]:
    """train NAME (second process) + the image-only baseline (here), then eval --compare-single-input."""
    from iconoscope.learn.multimodal.evaluate import baseline_scores, eval_multimodal
    from iconoscope.workspace import Workspace

    t = time.time()
    # 'train' (multimodal CV + final model) in a second process while this one scores the image-only baseline on
    # the same folds; 'eval --compare-single-input' then reuses both sets of out-of-fold scores.
    exe = Path(sys.executable).with_name("iconoscope")
    train = subprocess.Popen([str(exe) if exe.exists() else "iconoscope", "-w", str(work), "train", name])
    time.sleep(5)
    with Workspace.open(work, read_only=True) as ws:
        baseline_scores(ws, name)
    if train.wait() != 0:
        raise SystemExit(f"iconoscope train {name} failed")
    report = work / "reports" / ("compare" if name == "artist_year" else f"compare-{name}")
    iconoscope(work, "eval", name, "--compare-single-input", "--report", str(report))
    with Workspace.open(work, read_only=True) as ws:
        rep = eval_multimodal(ws, name, report, compare_single_input=True, progress=False)
    return rep, time.time() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-mm-pom"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--inputs", default=",".join(INPUTS))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--backbone", default=BACKBONE,
                    help="image features (default: MobileNetV2 pre-logits of the full sheet and its top square)")
    ap.add_argument("--models", default="multimodal",
                    help="multimodal (the paper's protocol), meta (the metadata-only model), or both, comma-separated")
    ap.add_argument("--name", default="artist_year", help="the classifier to run the protocol on")
    ap.add_argument("--variant-inputs", default=None,
                    help="inputs of the classifier --name (comma-separated; default: --inputs)")
    ap.add_argument("--param", action="append", default=[],
                    help="KEY=VALUE (TOML) added to the classifier --name (not to artist_year); repeatable")
    args = ap.parse_args()
    models = set(args.models.split(","))
    if not models or models - {"multimodal", "meta"}:
        raise SystemExit(f"--models {args.models!r}: expected multimodal, meta or both")
    if (args.param or args.variant_inputs) and args.name == "artist_year":
        raise SystemExit("--param and --variant-inputs need --name (a new classifier): artist_year stays the README's "
                         "configuration")
    if args.name in ("artist_year_meta",):
        raise SystemExit(f"--name {args.name!r} is taken")
    params = parse_params(args.param)
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    (work / "iconoscope.toml").write_text(
        workspace_config(args.data, args.inputs.split(","), args.epochs, args.backbone, args.name, params,
                         args.variant_inputs.split(",") if args.variant_inputs else None),
        encoding="utf-8")
    from iconoscope.learn.multimodal.evaluate import eval_multimodal
    from iconoscope.workspace import Workspace

    with Workspace(work) as ws:
        ingested = ws.iris.source_graph("watercolours") in ws.store.graphs()
    if not ingested:
        iconoscope(work, "ingest")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    if "multimodal" in models:
        t_embed = time.time()
        iconoscope(work, "embed", "--backbone", args.backbone)
        embed_seconds = time.time() - t_embed
        rep, seconds = run_multimodal(work, args.name)
        print(rep.text())
        folds = artist_folds(rep.models)
        gains = [m - i for m, i in zip(folds["multimodal"], folds["image-only"], strict=True)]
        print("artist top-1 gain per fold: " + ", ".join(f"{g:+.3f}" for g in gains)
              + f" (fold 0: {gains[0]:+.3f}; folds 1-4: {sum(gains[1:]) / len(gains[1:]):+.3f})")
        default = default_baseline_folds(work, args.name)
        if default is not None:
            d = np.array(folds["multimodal"]) - np.array(default)
            print(f"artist_year's image-only model, same folds: top-1 {np.mean(default):.3f}; gain against it "
                  f"{d.mean():+.3f} ± {d.std(ddof=1):.3f}, per fold " + ", ".join(f"{g:+.3f}" for g in d))
        for name, value in FLOOR.items():
            print(f"floor (issue 5), artist top-1, {name}: {value:.2f}")
        suffix = "" if args.name == "artist_year" else f"_{args.name}"
        (out / f"multimodal_pomological{suffix}.json").write_text(json.dumps(
            {"name": args.name, "params": params, "backbone": args.backbone,
             "inputs": (args.variant_inputs or args.inputs).split(",") if args.name != "artist_year"
             else args.inputs.split(","),
             "models": rep.models, "gains": rep.gains, "artist_top1_folds": folds, "artist_top1_gain_folds": gains,
             "artist_year_image_only_top1_folds": default,
             "floor": FLOOR, "seconds": seconds, "embed_seconds": embed_seconds}, indent=1, default=float),
            encoding="utf-8")
    if "meta" in models:
        t = time.time()
        iconoscope(work, "train", "artist_year_meta")
        report = work / "reports" / "eval-meta"
        iconoscope(work, "eval", "artist_year_meta", "--report", str(report))
        with Workspace.open(work, read_only=True) as ws:
            rep = eval_multimodal(ws, "artist_year_meta", report, progress=False)
        print(rep.text())
        (out / "multimodal_pomological_meta.json").write_text(json.dumps(
            {"name": "artist_year_meta", "models": rep.models, "seconds": time.time() - t}, indent=1,
            default=float), encoding="utf-8")


if __name__ == "__main__":
    main()
