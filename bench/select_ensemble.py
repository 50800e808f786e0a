"""Should the pomological genera use an ensemble of rows (j) and (k)? Decided on a development protocol, not on the
evaluation folds.

Usage::

    ICONOSCOPE_THREADS=2 nice -n 10 python bench/select_ensemble.py [--work /tmp/iconoscope-learn-pom]
        [--members genera_multilayer_6views,genera_mnv2_finetune_top] [--dev-fold 0] [--inner 3]

Why an ensemble. Row (j), a linear probe on frozen multi-layer features of two ImageNet networks, and row (k),
MobileNetV2's top fine-tuned on the collection, are different models with different errors (their pooled
out-of-fold APs per genus, in the README, differ by up to 4 points in both directions). Averaging the probabilities
of different models is the oldest way to gain from that (Annif's ``ensemble`` backend does it for subject indexing).
That idea came *after* both rows' 5-fold CV figures were known, so the choice to adopt it is made here, on data
those figures do not score as test data.

Protocol (written and committed before it ran, session 5):

* the development set is the training part of outer fold ``--dev-fold`` of ``iconoscope train`` (the same
  grouped, iteratively stratified 5 folds, seed 0); the outer test part is never read;
* it is split into ``--inner`` grouped folds (seed 1, as ``bench/select_features.py``);
* in each development fold every member is trained on the other development folds *with its own project's recipe and
  settings* (read from the workspace config): the linear probe chooses C by inner CV on that training part only
  (``train.select_and_fit``), the fine-tuned top picks its epoch on a grouped 15% validation split of it
  (``finetune.fit_fold``); each scores the development fold;
* the ensemble is the weighted mean of the members' probabilities, weights fixed at 1:1 before the run (no weight
  is fitted);
* rule: the ensemble is adopted, declared as a project and cross-validated once on the 5 outer folds, if and only
  if its mean development-fold mAP is above every member's *and* above the better member's in at least 2 of the 3
  development folds. Otherwise the README says so and row (j) stays the best.

Prints a table (per development fold and mean: mAP, top-1) and writes ``bench/results/select_ensemble.json``.
Needs the workspace of ``bench/learn_pomological.py``; it makes the members' label tables and embeds what is missing.
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

WEIGHTS = (1.0, 1.0)


def member_scores(ws: Any, name: str, dev: Any, folds: list[tuple[np.ndarray, np.ndarray]], seed: int,
                  overrides: dict[str, Any] | None = None) -> np.ndarray:
    """Development out-of-fold probabilities of project ``name`` (its parameters updated by ``overrides``), trained
    by its own recipe on each fold's rest."""
    from iconoscope.learn.datasets import embeddings_for
    from iconoscope.learn.train import _grid, fine_keys, select_and_fit

    cfg = ws.config.classifier(name)
    params = {**cfg.params, **(overrides or {})}
    S = np.zeros(dev.Y.shape, np.float32)
    if cfg.head == "finetune":
        from iconoscope.learn.finetune import DEFAULTS, fit_fold
        from iconoscope.learn.finetune_top import top_network

        p = {**DEFAULTS, **{k: v for k, v in params.items() if k in DEFAULTS}}
        kept, data, left, make, _ = top_network(ws, name, cfg.backbone, dev, p, seed)
        if left or kept.images != dev.images:
            raise SystemExit(f"{name}: {len(left)} development images have no stored map")
        val_k = max(2, round(1 / float(p["val_share"])))
        for f, (tr, te) in enumerate(folds):
            t0 = time.perf_counter()
            res = fit_fold(make, data, kept.Y, kept.records, tr, te, int(p["epochs"]), val_k, seed)
            S[te] = res.scores
            print(f"  {name} dev fold {f}: epoch {res.epoch}, {time.perf_counter() - t0:.0f} s", flush=True)
        return S
    kept, X, left = embeddings_for(ws, dev, cfg.backbone)
    if left or kept.images != dev.images:
        raise SystemExit(f"{name}: {len(left)} development images have no vector")
    grid = _grid(cfg.head, params)
    inner_k = int(params.get("inner_folds", 3))
    Y = kept.Y.astype(np.float32)
    fine = fine_keys(kept) if params.get("fine_labels") else None
    for f, (tr, te) in enumerate(folds):
        t0 = time.perf_counter()
        head, best, _, _ = select_and_fit(cfg.head, grid, X[tr], Y[tr], [kept.records[i] for i in tr], inner_k, seed,
                                          None if fine is None else [fine[i] for i in tr])
        S[te] = head.predict_proba(X[te])
        print(f"  {name} dev fold {f}: {best}, {time.perf_counter() - t0:.0f} s", flush=True)
    return S


def dev_folds(labels: Any, dev_fold: int, inner: int, seed: int, outer: int = 5
              ) -> tuple[Any, list[tuple[np.ndarray, np.ndarray]]]:
    """The development set of every session-5/6 round: outer fold ``dev_fold``'s training part (the grouped,
    iteratively stratified folds of ``iconoscope train``, ``seed``) and its ``inner`` grouped folds (seed + 1)."""
    from iconoscope.learn.kfold import fold_indices, grouped_folds

    fold_of = grouped_folds(labels.Y, labels.records, outer, seed=seed)
    dev = labels.subset(fold_of != dev_fold)
    return dev, fold_indices(grouped_folds(dev.Y, dev.records, inner, seed=seed + 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-learn-pom"))
    ap.add_argument("--members", default="genera_multilayer_6views,genera_mnv2_finetune_top")
    ap.add_argument("--dev-fold", type=int, default=0)
    ap.add_argument("--outer", type=int, default=5)
    ap.add_argument("--inner", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "select_ensemble.json")
    args = ap.parse_args()

    from iconoscope.learn.datasets import load_labels
    from iconoscope.learn.ensemble import combine
    from iconoscope.learn.metrics import evaluate_scores
    from iconoscope.workspace import Workspace

    members = args.members.split(",")
    if len(members) != len(WEIGHTS):
        raise SystemExit(f"--members: the protocol fixed {len(WEIGHTS)} members")
    from learn_pomological import iconoscope

    for m in members:  # the label tables the members train on (the workspace is learn_pomological.py's)
        if not (args.work / "labels" / f"{m}.parquet").exists():
            iconoscope(args.work, "labels", m)
    with Workspace.open(args.work) as ws:
        labels = load_labels(ws, members[0])
        for m in members[1:]:
            if load_labels(ws, m).sha256() != labels.sha256():
                raise SystemExit(f"{m}: its label table differs from {members[0]}'s; run `iconoscope labels {m}`")
        dev, folds = dev_folds(labels, args.dev_fold, args.inner, args.seed, args.outer)
        scores = {m: member_scores(ws, m, dev, folds, args.seed) for m in members}
    scores["ensemble"] = combine([scores[m] for m in members], WEIGHTS)  # what the ensemble head computes
    Y = dev.Y.astype(bool)
    table: dict[str, Any] = {}
    for name, S in scores.items():
        per = [evaluate_scores(Y[te], S[te], None) for _, te in folds]
        table[name] = {"per_fold_mAP": [p["mAP"] for p in per], "per_fold_top1": [p["top1"] for p in per],
                       "mean_mAP": float(np.mean([p["mAP"] for p in per])),
                       "mean_top1": float(np.mean([p["top1"] for p in per])),
                       "per_class_ap": evaluate_scores(Y, S, None)["per_class_ap"]}
    best_member = max(members, key=lambda m: table[m]["mean_mAP"])
    ens = table["ensemble"]
    wins = sum(e > b for e, b in zip(ens["per_fold_mAP"], table[best_member]["per_fold_mAP"], strict=True))
    adopted = all(ens["mean_mAP"] > table[m]["mean_mAP"] for m in members) and wins >= 2
    print(f"\ndevelopment set: training part of outer fold {args.dev_fold} ({len(dev)} images), {args.inner} folds")
    print(f"{'model':<28} {'dev mAP':>8}  {'per fold':<26} {'top-1':>6}")
    for name, r in table.items():
        print(f"{name:<28} {r['mean_mAP']:>8.4f}  {', '.join(f'{v:.4f}' for v in r['per_fold_mAP']):<26} "
              f"{r['mean_top1']:>6.4f}")
    print(f"rule: ensemble above every member and above {best_member} in >= 2 of {args.inner} folds "
          f"({wins} won): {'ADOPT' if adopted else 'do not adopt'}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"protocol": {"dev_fold": args.dev_fold, "outer": args.outer, "inner": args.inner,
                                                 "seed": args.seed, "dev_images": len(dev), "members": members,
                                                 "weights": list(WEIGHTS)},
                                    "results": table, "best_member": best_member, "folds_won": wins,
                                    "adopted": adopted}, indent=1, default=float), encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
