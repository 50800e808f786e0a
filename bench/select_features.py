"""Choose image features for the pomological genera *without looking at the evaluation folds*.

Usage::

    nice -n 10 python bench/select_features.py [--work /tmp/iconoscope-learn-pom] [--project genera]
        [--candidates h,h_color,...] [--dev-fold 0] [--inner 3]

The README's learning table reports 5-fold cross-validation. Picking a feature set by that same CV would tune on
the evaluation folds. This script keeps a development protocol apart from it: it takes the *training part of one
outer fold* (``--dev-fold``, the same grouped, iteratively stratified 5 folds as ``iconoscope train``, seed 0),
splits that part again into ``--inner`` grouped folds, and scores each candidate feature set there with the linear
probe (C chosen per candidate on the same dev folds, from 0.03/0.1/0.3/1/3). The outer test part of ``--dev-fold``
is never read; the candidate that wins here is then declared as a project and cross-validated once by
``bench/learn_pomological.py``, like every other row.

The workspace is the one ``bench/learn_pomological.py`` builds (its 90% split: held-out images are never
embedded). Candidates missing vectors are embedded first (resumable, as ``iconoscope embed``).

Candidates (fixed before any of them was scored, in session 3):

* ``h``: row (h) of the README, MobileNetV2 + SqueezeNet pre-logits, views full/top/center/inner;
* ``h_color``: (h) + ``builtin:colorhist`` (HSV histograms of the sheet and a 2x2 grid): the colour that an
  ImageNet network keeps least of tells a persimmon from a mango;
* ``ml``: multi-layer (hypercolumn-like) features: MobileNetV2's 160-channel stage (``input47.1``, block 16,
  7x7) and SqueezeNet's fire7 (384 channels) pooled beside each network's pre-logits, same four views: mid-level
  texture and colour, less tied to ImageNet's classes than the last layer;
* ``ml_color``: ``ml`` + the colour histograms.

Added after those four were scored (``ml`` won; its best C was the grid's largest, so C = 1 joined the grid and
every candidate was scored again on the same dev folds):

* ``ml2``: deeper into the networks: MobileNetV2's 64-, 96- and 160-channel stages and SqueezeNet's fire5 and fire7
  beside the pre-logits (4 x 2,752-d);
* ``ml_bce``: the features of ``ml``, one-vs-rest head (below).

Added after ``ml2`` won (deeper helped; its best C was again the largest, so C = 3 joined the grid):

* ``ml3``: every stage of both networks: MobileNetV2's 24-, 32-, 64-, 96- and 160-channel stages, SqueezeNet's
  fire3, fire5, fire7 and fire8, beside the pre-logits (4 x 3,448-d).

Added after ``ml2``'s 5-fold CV (row i of the README: mAP 0.966, still under 0.97), both on ``ml2``'s layers:

* ``ml2_avgmax``: each layer average- *and* max-pooled (``pool=avgmax``): a max keeps a small, strong local
  response (drupelets, a persimmon's calyx) that an average over the sheet dilutes;
* ``ml2_6views``: two more crops per network, the upper 70% of the sheet (margins trimmed) and the bottom square
  (the caption), six views in all.

Head variants on the features of (h), added after the first two candidates were scored (they needed no new
vectors; the outer test fold still unread):

* ``h_bce``: one-vs-rest logistic regressions (sigmoid + BCE) instead of the softmax with a background unit: each
  genus's ranking is fitted on its own, which is what its average precision measures;
* ``h_bce_bal``: the same with positives weighted by negatives/positives per genus (``class_weight =
  "balanced"``), for the rare genera (46-78 records) where the mAP is lost.

Prints a table and writes ``bench/results/select_features.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

MNV2 = "torchscript:${data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"
SQZ = "onnx:${data}/weights/squeezenet1.1_fp16_onnx/SqueezeNet_fp16.onnx?preset=caffe"
V4 = "views=full,top,center,inner"
COLOR = "builtin:colorhist?grid=2"
H = f"concat:{MNV2}?layer=pool&{V4}|{SQZ}&layer=pool&{V4}"
ML = f"concat:{MNV2}?layer=input47.1+pool&{V4}|{SQZ}&layer=fire7/concat_1+pool&{V4}"
ML3 = (f"concat:{MNV2}?layer=input8.1+input17.1+input29.1+input38.1+input47.1+pool&{V4}"
       f"|{SQZ}&layer=fire3/concat_1+fire5/concat_1+fire7/concat_1+fire8/concat_1+pool&{V4}")
ML2_AVGMAX = (f"concat:{MNV2}?layer=input29.1+input38.1+input47.1+pool&pool=avgmax&{V4}"
              f"|{SQZ}&layer=fire5/concat_1+fire7/concat_1+pool&pool=avgmax&{V4}")
V6 = "views=full,top,center,inner,upper,bottom"
ML2_6VIEWS = (f"concat:{MNV2}?layer=input29.1+input38.1+input47.1+pool&{V6}"
              f"|{SQZ}&layer=fire5/concat_1+fire7/concat_1+pool&{V6}")
ML2 = (f"concat:{MNV2}?layer=input29.1+input38.1+input47.1+pool&{V4}"
       f"|{SQZ}&layer=fire5/concat_1+fire7/concat_1+pool&{V4}")
CANDIDATES: dict[str, str] = {
    "h": H,
    "h_color": f"{H}|{COLOR}",
    "ml": ML,
    "ml_color": f"{ML}|{COLOR}",
    "h_bce": H,
    "h_bce_bal": H,
    "ml2": ML2,
    "ml_bce": ML,
    "ml3": ML3,
    "ml2_avgmax": ML2_AVGMAX,
    "ml2_6views": ML2_6VIEWS,
}
#: linear-probe parameters of a candidate (the default: softmax with a background unit, no class weights)
HEAD: dict[str, dict[str, str]] = {"h_bce": {"loss": "bce"}, "ml_bce": {"loss": "bce"},
                                   "h_bce_bal": {"loss": "bce", "class_weight": "balanced"}}
GRID = (0.03, 0.1, 0.3, 1.0, 3.0)


def dev_score(X: np.ndarray, Y: np.ndarray, groups: list[str], inner: int, seed: int,
              head: dict[str, str] | None = None) -> dict[str, object]:
    """mAP and top-1 of the linear probe by ``inner``-fold CV on (X, Y), for each C of GRID."""
    from iconoscope.learn.heads import LinearProbe
    from iconoscope.learn.kfold import fold_indices, grouped_folds
    from iconoscope.learn.metrics import evaluate_scores

    folds = fold_indices(grouped_folds(Y, groups, inner, seed=seed + 1))
    out: dict[str, object] = {}
    for C in GRID:
        S = np.zeros(Y.shape, np.float32)
        for tr, te in folds:
            S[te] = LinearProbe(C=C, **(head or {})).fit(X[tr], Y[tr]).predict_proba(X[te])
        m = evaluate_scores(Y.astype(bool), S, np.full(Y.shape[1], 0.5))
        out[str(C)] = {"mAP": m["mAP"], "top1": m["top1"], "per_class_ap": m.get("per_class_ap")}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-learn-pom"))
    ap.add_argument("--project", default="genera_concat_4views", help="a project whose label table to use")
    ap.add_argument("--candidates", default=",".join(CANDIDATES))
    ap.add_argument("--dev-fold", type=int, default=0)
    ap.add_argument("--outer", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "select_features.json")
    args = ap.parse_args()

    from iconoscope.learn.datasets import embeddings_for, load_labels
    from iconoscope.learn.kfold import grouped_folds
    from iconoscope.workspace import Workspace

    results: dict[str, object] = {"protocol": {"dev_fold": args.dev_fold, "outer": args.outer,
                                               "inner": args.inner, "seed": args.seed, "grid_C": GRID}}
    with Workspace.open(args.work) as ws:
        labels = load_labels(ws, args.project)
        # the outer folds of `iconoscope train` (same function, labels and seed); keep one fold's training part
        outer = grouped_folds(labels.Y, labels.records, args.outer, seed=args.seed)
        dev = labels.subset(outer != args.dev_fold)
        results["protocol"]["dev_images"] = len(dev)  # type: ignore[index]
        for name in args.candidates.split(","):
            spec = CANDIDATES[name]
            t0 = time.perf_counter()
            kept, X, left = embeddings_for(ws, dev, spec)
            t1 = time.perf_counter()
            scores = dev_score(X, kept.Y.astype(np.float32), list(kept.records), args.inner, args.seed,
                               HEAD.get(name))
            best = max(scores, key=lambda c: scores[c]["mAP"])  # type: ignore[index]
            row = {"spec": spec, "head": HEAD.get(name, {}), "dim": int(X.shape[1]), "n": len(kept),
                   "left_out": len(left), "by_C": scores, "best_C": float(best), "embed_s": round(t1 - t0, 1),
                   "fit_s": round(time.perf_counter() - t1, 1)}
            results[name] = row
            b = scores[best]
            print(f"{name:10s} dim {X.shape[1]:6d}  dev mAP {b['mAP']:.4f}  top-1 {b['top1']:.4f}  (C={best}; "  # type: ignore[index]
                  + ", ".join(f"C={c}: {s['mAP']:.4f}" for c, s in scores.items()) + ")", flush=True)  # type: ignore[index]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
