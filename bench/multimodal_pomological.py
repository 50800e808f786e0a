"""The paper's protocol on the pomological watercolours: image-only vs image + known metadata, artist and decade.

Usage::

    nice -n 10 python bench/multimodal_pomological.py [--work /tmp/iconoscope-mm-pom] [--data ../shared/data]
        [--inputs image,field:genus,...] [--epochs 30] [--backbone SPEC]

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
Writes ``bench/results/multimodal_pomological.json``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

BACKBONE = ("torchscript:${data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"
            "?layer=pool&views=full,top")
INPUTS = ["image", "field:genus", "field:scientific_name", "field:variety", "date:1", "date:10", "num:year",
          "creator"]
FLOOR = {"image (MobileNetV2 logits + logistic regression)": 0.68, "species/genus/decade only": 0.44}

EXAMPLE = ROOT / "examples" / "pomological"
CLASSIFIER = """
# the multitask model of issue 5 (appended by bench/multimodal_pomological.py)
[classifiers.artist_year]
head = "multimodal"
backbone = "{backbone}"
inputs = {inputs}
targets = ["creator", "date:10"]
min_count = {{ creator = 50, date = 10 }}
folds = 5
epochs = {epochs}
image_units = 256
shared_units = 512
lr = 0.002
"""


def workspace_config(data: Path, inputs: list[str], epochs: int, backbone: str = BACKBONE) -> str:
    """The pomological example's config (its source, vocabularies, extra columns) with absolute paths, plus the
    multimodal classifier."""
    text = (EXAMPLE / "iconoscope.toml").read_text(encoding="utf-8")
    text = text.replace('data = "../../../shared/data"', f'data = "{data.resolve()}"')
    text = text.replace('path = "taxa.ttl"', f'path = "{EXAMPLE / "taxa.ttl"}"')
    text = text.replace('mapping = "subjects.csv"', f'mapping = "{EXAMPLE / "subjects.csv"}"')
    return text + CLASSIFIER.format(backbone=backbone, inputs=json.dumps(inputs), epochs=epochs)


def iconoscope(work: Path, *args: str) -> None:
    exe = Path(sys.executable).with_name("iconoscope")
    cmd = [str(exe) if exe.exists() else "iconoscope", "-w", str(work), *args]
    print("$ iconoscope -w", work, *args, file=sys.stderr)
    subprocess.run(cmd, check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-mm-pom"))
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--inputs", default=",".join(INPUTS))
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--backbone", default=BACKBONE,
                    help="image features (default: MobileNetV2 pre-logits of the full sheet and its top square)")
    args = ap.parse_args()
    work: Path = args.work
    work.mkdir(parents=True, exist_ok=True)
    (work / "iconoscope.toml").write_text(
        workspace_config(args.data, args.inputs.split(","), args.epochs, args.backbone), encoding="utf-8")
    from iconoscope.learn.multimodal.evaluate import baseline_scores, eval_multimodal
    from iconoscope.workspace import Workspace

    with Workspace(work) as ws:
        ingested = ws.iris.source_graph("watercolours") in ws.store.graphs()
    if not ingested:
        iconoscope(work, "ingest")
    t_embed = time.time()
    iconoscope(work, "embed", "--backbone", args.backbone)
    embed_seconds = time.time() - t_embed

    t = time.time()
    # 'train' (multimodal CV + final model) in a second process while this one scores the image-only baseline on
    # the same folds; 'eval --compare-single-input' then reuses both sets of out-of-fold scores.
    exe = Path(sys.executable).with_name("iconoscope")
    train = subprocess.Popen([str(exe) if exe.exists() else "iconoscope", "-w", str(work), "train", "artist_year"])
    time.sleep(5)
    with Workspace.open(work, read_only=True) as ws:
        baseline_scores(ws, "artist_year")
    if train.wait() != 0:
        raise SystemExit("iconoscope train artist_year failed")
    iconoscope(work, "eval", "artist_year", "--compare-single-input", "--report", str(work / "reports" / "compare"))
    with Workspace.open(work, read_only=True) as ws:
        rep = eval_multimodal(ws, "artist_year", work / "reports" / "compare", compare_single_input=True,
                              progress=False)
    seconds = time.time() - t
    print(rep.text())
    for name, value in FLOOR.items():
        print(f"floor (issue 5), artist top-1, {name}: {value:.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "multimodal_pomological.json").write_text(json.dumps(
        {"inputs": args.inputs.split(","), "backbone": args.backbone, "models": rep.models, "gains": rep.gains,
         "floor": FLOOR, "seconds": seconds, "embed_seconds": embed_seconds}, indent=1, default=float),
        encoding="utf-8")


if __name__ == "__main__":
    main()
