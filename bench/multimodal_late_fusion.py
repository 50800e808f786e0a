"""A development check of *late fusion* for the pomological artist task (issue 5), on the dev protocol only.

Usage::

    nice -n 10 python bench/multimodal_late_fusion.py [--work /tmp/iconoscope-mm-pom] [--dev-fold 0] [--inner 3]

Question. The joint network (``artist_year``) gains +4.9 points of artist top-1 over the image-only model on the 5
folds. Would a product of experts do better: an image-only model and a metadata-only model trained apart, their
probabilities multiplied and divided by the class prior (``P ∝ P_img · P_meta / prior``, the Bayes combination of
two conditionally independent views)? Each expert is then trained to the full on its own input, with no
competition between branches.

Fixed before it ran (session 3): weight 1 on both experts, no tuning; the prior = the class frequencies of each
inner training part. Same development protocol as ``bench/multimodal_select.py`` (the training part of outer
fold 0, 3 inner folds; the outer test part is never read), same image-only model (the current settings; its
result is read from that script's files when present), and a metadata-only model with the current settings and
the non-image inputs. Nothing in the product uses late fusion: this only says whether it is worth building.

Prints the table and writes ``bench/results/multimodal_late_fusion.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))


def top1_per_fold(ts: Any, P: np.ndarray) -> list[float]:
    """Top-1 per inner fold of probabilities ``P`` for task ``ts``, as ``eval`` computes it (task_metrics)."""
    from iconoscope.learn.multimodal.metrics import task_metrics

    return [f["top1"] for f in task_metrics(replace(ts, P=P), 0)["folds"]]


def product_of_experts(Pi: np.ndarray, Pm: np.ndarray, Y: np.ndarray, has: np.ndarray, fold: np.ndarray,
                       k: int) -> np.ndarray:
    """``P_img · P_meta / prior`` per row, the prior counted on each inner training part, renormalised."""
    P = np.full_like(Pi, np.nan)
    for f in range(k):
        train = has & (fold >= 0) & (fold != f)
        prior = (Y[train].sum(axis=0) + 1.0) / (Y[train].sum() + Y.shape[1])
        test = np.flatnonzero(fold == f)
        logp = np.log(np.clip(Pi[test], 1e-9, 1)) + np.log(np.clip(Pm[test], 1e-9, 1)) - np.log(prior)
        logp -= logp.max(axis=1, keepdims=True)
        e = np.exp(logp)
        P[test] = e / e.sum(axis=1, keepdims=True)
    return P


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-mm-pom"))
    ap.add_argument("--name", default="artist_year")
    ap.add_argument("--dev-fold", type=int, default=0)
    ap.add_argument("--inner", type=int, default=3)
    args = ap.parse_args()

    from multimodal_select import dev_setup, image_only, result

    from iconoscope.learn.multimodal.train import cross_validate

    project, raw, dev_targets, inner = dev_setup(args.work, args.name, args.dev_fold, args.inner)

    experts: dict[str, Any] = {}
    meta = replace(project, inputs=[i for i in project.inputs if i not in project.image_inputs])
    for label, proj in (("image-only", image_only(project)), ("metadata-only", meta)):
        print(f"cross-validating {label} on the dev folds ...", file=sys.stderr, flush=True)
        experts[label] = cross_validate(proj, raw, dev_targets, inner, label, progress=False)
    rows: dict[str, dict[str, Any]] = {}
    for t, enc in enumerate(dev_targets.encoders):
        ts = experts["image-only"][t]
        Pi, Pm = ts.P, experts["metadata-only"][t].P
        Ppoe = product_of_experts(Pi, Pm, ts.Y, ts.has, inner, args.inner)
        rows[enc.name] = {label: top1_per_fold(ts, P)
                          for label, P in (("image-only", Pi), ("metadata-only", Pm), ("late fusion", Ppoe))}
    joint = result("current", "multimodal")  # bench/multimodal_select.py's joint model, same dev folds
    if joint is not None:
        rows["creator"]["joint (current)"] = joint["tasks"]["creator"]["folds_top1"]
        if "date" in rows and "date" in joint["tasks"]:
            rows["date"]["joint (current)"] = joint["tasks"]["date"]["folds_top1"]
    print("| task | model | top-1 (mean of inner folds) | per fold | gain over image-only |\n|---|---|---|---|---|")
    for task, models in rows.items():
        base = np.array(models["image-only"])
        for label, folds in models.items():
            a = np.array(folds)
            print(f"| {task} | {label} | {a.mean():.3f} | {', '.join(f'{x:.3f}' for x in a)} | "
                  f"{(a - base).mean():+.3f} |")
    out = ROOT / "bench" / "results" / "multimodal_late_fusion.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"dev_fold": args.dev_fold, "inner": args.inner, "rows": rows}, indent=1),
                   encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
