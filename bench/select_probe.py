"""Round 5 of the pomological feature/head selection: the linear probe of row (j), on the development protocol.

Usage::

    nice -n 10 python bench/select_probe.py [--work /tmp/iconoscope-learn-pom] [--candidates current,balanced]

Row (j)'s 5-fold CV mAP is 0.9687, under the issue's 0.97; the ensemble with the fine-tuned top (row k) lost on
the development folds (``bench/select_ensemble.py``). Two properties of the probe itself were never examined, and
both bear on where the mAP is lost (the rare genera: Rubus 46 records, Mangifera 53, Diospyros 78):

* ``balanced``: ``class_weight = "balanced"`` was silently ignored by the softmax probe (only one-vs-rest heads
  used it); it now weights each row by scikit-learn's ``n / (K n_c)``, so the rare genera pull on the shared
  weights as hard as Malus (2,787 records) does;
* ``iter300``: L-BFGS stops after ``max_iter = 100`` iterations; with C up to 3 on 16,512 dimensions the optimum
  may not be reached, so 300 iterations show whether the probe was under-fitted (or regularised by stopping early);
* ``balanced_iter300``: both.

Protocol (the one of ``bench/select_ensemble.py``, fixed before this ran, session 5): the training part of outer
fold 0, 3 grouped folds (seed 1); in each, C is chosen from (j)'s grid by inner CV on the training rows only
(``train.select_and_fit``), then the development fold is scored. Rule: the candidate with the best mean development
mAP is declared as a project and cross-validated once on the 5 outer folds if it beats ``current`` (row j's probe,
re-run here) by at least 0.001 and in at least 2 of the 3 folds; otherwise row (j) stays.

Prints a table and writes ``bench/results/select_probe.json`` (merged with earlier runs of other candidates).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

BASE = "genera_multilayer_6views"
CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "balanced": {"class_weight": "balanced"},
    "iter300": {"max_iter": 300},
    "balanced_iter300": {"class_weight": "balanced", "max_iter": 300},
}
MARGIN = 0.001


def margin_rule(rows: dict[str, Any], mean_key: str, folds_key: str, margin: float,
                min_wins: int = 2) -> tuple[str, float, int, bool]:
    """The rounds' pre-registered rule: the best candidate by ``mean_key`` is adopted only if it beats ``current``
    by at least ``margin`` and in at least ``min_wins`` folds. Returns (best, its gain, folds won, adopted)."""
    cur = rows["current"]
    best = max((n for n in rows if n != "current"), key=lambda n: rows[n][mean_key])
    b = rows[best]
    wins = sum(x > y for x, y in zip(b[folds_key], cur[folds_key], strict=True))
    gain = b[mean_key] - cur[mean_key]
    return best, gain, wins, gain >= margin and wins >= min_wins


def dev_result(ws: Any, project: str, dev: Any, folds: list[tuple[np.ndarray, np.ndarray]], seed: int,
               overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """One candidate on the development folds: per-fold and mean mAP, mean top-1, pooled per-class AP, seconds."""
    from select_ensemble import member_scores

    from iconoscope.learn.metrics import evaluate_scores

    t0 = time.perf_counter()
    S = member_scores(ws, project, dev, folds, seed, overrides)
    per = [evaluate_scores(dev.Y[te], S[te], None) for _, te in folds]
    return {"per_fold_mAP": [p["mAP"] for p in per], "mean_mAP": float(np.mean([p["mAP"] for p in per])),
            "mean_top1": float(np.mean([p["top1"] for p in per])),
            "per_class_ap": evaluate_scores(dev.Y, S, None)["per_class_ap"],
            "seconds": round(time.perf_counter() - t0, 1)}


def dev_arguments(doc: str | None, candidates: Any, out: str) -> argparse.Namespace:
    """The command line shared by the development-protocol rounds (5 and 6)."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-learn-pom"))
    ap.add_argument("--candidates", default=",".join(candidates))
    ap.add_argument("--dev-fold", type=int, default=0)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / out)
    return ap.parse_args()


def print_verdict(results: dict[str, Any], n_candidates: int, n_folds: int, margin: float) -> None:
    """The table of the candidates run so far and, once all have run, the rule's verdict."""
    print(f"{'candidate':<18} {'dev mAP':>8}  {'per fold':<26} {'top-1':>6}")
    for name, r in results.items():
        print(f"{name:<18} {r['mean_mAP']:>8.4f}  {', '.join(f'{v:.4f}' for v in r['per_fold_mAP']):<26} "
              f"{r['mean_top1']:>6.4f}")
    if "current" in results and len(results) == n_candidates:
        best, gain, wins, adopt = margin_rule(results, "mean_mAP", "per_fold_mAP", margin)
        print(f"rule: best candidate {best} ({gain:+.4f} over current, {wins} of {n_folds} folds won): "
              f"{'ADOPT' if adopt else 'do not adopt'}")


def main() -> None:
    args = dev_arguments(__doc__, CANDIDATES, "select_probe.json")

    from select_ensemble import dev_folds

    from iconoscope.learn.datasets import load_labels
    from iconoscope.workspace import Workspace

    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    with Workspace.open(args.work) as ws:
        dev, folds = dev_folds(load_labels(ws, BASE), args.dev_fold, args.inner, args.seed)
        for name in [c for c in args.candidates.split(",") if c]:  # none: print the table of earlier runs
            results[name] = {"overrides": CANDIDATES[name],
                             **dev_result(ws, BASE, dev, folds, args.seed, CANDIDATES[name])}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    print_verdict(results, len(CANDIDATES), len(folds), MARGIN)


if __name__ == "__main__":
    main()
