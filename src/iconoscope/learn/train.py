"""``train NAME``: nested, grouped, iteratively stratified k-fold cross-validation, then the final model.

For each outer fold, every choice is made on the outer *training* part only:

1. an inner k-fold (grouped by record, stratified) scores each point of the head's hyper-parameter grid; the best
   inner mAP wins;
2. per-class thresholds are calibrated on the winning setting's inner out-of-fold scores (best F1);
3. the head is refitted on the whole outer training part and scores the outer test part.

The outer test parts therefore give honest out-of-fold scores (``oof_scores.parquet``) and honest per-fold metrics.
The final model is fitted on every row with the setting most folds chose; its thresholds are calibrated on the
pooled out-of-fold scores (validation data of every fold). Nothing reported comes from rows a model trained on.
"""

from __future__ import annotations

import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError
from iconoscope.learn.datasets import LabelSet, embeddings_for, load_labels
from iconoscope.learn.heads import DEFAULT_GRIDS, make_head
from iconoscope.learn.kfold import fold_indices, grouped_folds
from iconoscope.learn.metrics import average_precision, best_f1_thresholds, evaluate_scores

SUMMARY_KEYS = ("mAP", "top1", "top5", "macro_f1", "micro_f1", "macro_precision", "macro_recall")
#: keys of [classifiers.NAME] read by train (everything else in params is passed to the head)
TRAIN_KEYS = ("grid", "inner_folds", "seed")


@dataclass
class TrainReport:
    name: str
    version: int
    head: str
    backbone: str
    folds: int
    n_images: int
    n_records: int
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    per_fold: list[dict[str, Any]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    model_dir: Path | None = None
    seconds: float = 0.0
    left_out: int = 0
    resumed: list[int] = field(default_factory=list)  # outer folds taken from an interrupted run (see foldcache)

    def summary(self) -> str:
        out = f", {self.left_out} left out" if self.left_out else ""
        lines = [f"{self.name} v{self.version}: {self.head} on {self.backbone}, {self.folds}-fold CV over "
                 f"{self.n_images} images ({self.n_records} records){out}"]
        for k in SUMMARY_KEYS:
            if k in self.mean:
                lines.append(f"  {k:<16} {self.mean[k]:.4f} ± {self.std.get(k, 0.0):.4f}")
        lines.append(f"  chosen params    {json.dumps(self.params)}")
        lines.append(f"  model: {self.model_dir}  ({self.seconds:.0f} s)")
        if self.resumed:
            lines.append(f"  resumed folds    {', '.join(map(str, self.resumed))} (finished before an interruption)")
        return "\n".join(lines)


def _grid(kind: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    grid_spec = params.get("grid", DEFAULT_GRIDS.get(kind, {}))
    if not isinstance(grid_spec, dict):
        raise ConfigError(f"classifier grid = {grid_spec!r}: expected a table of parameter -> list of values")
    keys = sorted(grid_spec)
    fixed = {k: v for k, v in params.items() if k not in TRAIN_KEYS and k not in grid_spec}
    combos = [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid_spec[k] for k in keys))]
    return [{**fixed, **c} for c in combos] or [fixed]


def _mean_ap(Y: np.ndarray, S: np.ndarray) -> float:
    aps = [average_precision(Y[:, j], S[:, j]) for j in range(Y.shape[1])]
    aps = [a for a in aps if not np.isnan(a)]
    return float(np.mean(aps)) if aps else 0.0


def _fit(kind: str, setting: dict[str, Any], X: np.ndarray, Y: np.ndarray, init: Any = None,
         fine: list[str] | None = None) -> Any:
    head = make_head(kind, **setting)
    extra: dict[str, Any] = {"fine": fine} if setting.get("fine_labels") else {}
    if init is not None and kind == "linear":
        return head.fit(X, Y, init=init, **extra)
    return head.fit(X, Y, **extra)


def fine_keys(labels: LabelSet) -> list[str]:
    """One fine key per row for ``fine_labels`` heads: the record's own subjects in the vocabulary (sorted,
    joined), from the label table's ``subjects`` column."""
    if not labels.subjects:
        raise ConfigError("fine_labels = true needs the label table's 'subjects' column; re-run 'iconoscope labels'")
    if not any(labels.subjects):
        raise ConfigError("fine_labels = true, but no row of the label table has a subject in the vocabulary (does "
                          "the classifier name its vocabulary?)")
    return ["|".join(sorted(s)) for s in labels.subjects]


def _c_order(grid: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Strongest regularisation first, so each fit warm-starts from a smoother neighbour."""
    return sorted(grid, key=lambda g: float(g.get("C", 0.0)))


def select_and_fit(kind: str, grid: list[dict[str, Any]], X: np.ndarray, Y: np.ndarray, groups: list[str],
                   inner_folds: int, seed: int, fine: list[str] | None = None
                   ) -> tuple[Any, dict[str, Any], np.ndarray, list[dict[str, Any]]]:
    """Inner CV over ``grid`` on (X, Y) only; returns (fitted head, chosen setting, thresholds, inner scores).
    ``fine``: the rows' fine keys, for ``fine_labels`` heads."""
    trials: list[dict[str, Any]] = []
    if len(grid) == 1 and inner_folds < 2:
        return _fit(kind, grid[0], X, Y, fine=fine), grid[0], np.full(Y.shape[1], 0.5), trials
    grid = _c_order(grid)
    inner = fold_indices(grouped_folds(Y, groups, inner_folds, seed=seed + 1))
    scores = [np.zeros(Y.shape, dtype=np.float32) for _ in grid]
    first_fold_heads: list[Any] = []
    for k, (tr, te) in enumerate(inner):
        prev = None
        for g, setting in enumerate(grid):
            prev = _fit(kind, setting, X[tr], Y[tr], init=prev, fine=None if fine is None else [fine[i] for i in tr])
            scores[g][te] = prev.predict_proba(X[te])
            if k == 0:
                first_fold_heads.append(prev)
    for setting, S in zip(grid, scores, strict=True):
        trials.append({"params": setting, "inner_mAP": _mean_ap(Y, S)})
    g = int(np.argmax([t["inner_mAP"] for t in trials]))
    th = best_f1_thresholds(Y, scores[g])
    head = _fit(kind, grid[g], X, Y, init=first_fold_heads[g], fine=fine)
    return head, grid[g], th, trials


def _next_version(model_dir: Path) -> int:
    card = model_dir / "model_card.json"
    if card.exists():
        try:
            return int(json.loads(card.read_text(encoding="utf-8")).get("version", 0)) + 1
        except (ValueError, json.JSONDecodeError):
            pass
    return 1


def write_oof(path: Path, labels: LabelSet, S: np.ndarray, folds: np.ndarray) -> None:
    """Out-of-fold scores, long format: record, image, concept, score, label, fold (atomic write)."""
    n, c = S.shape
    table = pa.table({
        "record": pa.array(np.repeat(np.asarray(labels.records, dtype=object), c).tolist(), pa.string()),
        "image": pa.array(np.repeat(np.asarray(labels.images, dtype=object), c).tolist(), pa.string()),
        "concept": pa.array(labels.categories * n, pa.string()),
        "score": pa.array(S.reshape(-1).astype(np.float32)),
        "label": pa.array(labels.Y.reshape(-1).astype(np.int8)),
        "fold": pa.array(np.repeat(folds, c).astype(np.int16)),
    })
    tmp = path.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    tmp.replace(path)


def write_thresholds(model_dir: Path, categories: list[str], thresholds: np.ndarray,
                     fold_thresholds: list[Any], calibration: str) -> None:
    """``thresholds.json``: the final per-class thresholds, each outer fold's own (what ``eval`` judges that fold's
    rows with) and how they were calibrated. One writer for every head that cross-validates."""
    (model_dir / "thresholds.json").write_text(json.dumps({
        "categories": categories, "thresholds": np.asarray(thresholds).tolist(),
        "fold_thresholds": [np.asarray(t).tolist() for t in fold_thresholds],
        "calibration": f"best F1 on out-of-fold scores (final); per fold: {calibration}"}, indent=1), encoding="utf-8")


def _summarise(per_fold: list[dict[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    mean, std = {}, {}
    for k in SUMMARY_KEYS:
        vals = [f[k] for f in per_fold if f.get(k) is not None and not np.isnan(f[k])]
        if vals:
            mean[k] = float(np.mean(vals))
            std[k] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return mean, std


def train_classifier(ws: Any, name: str, folds: int | None = None, seed: int | None = None,
                     show_progress: bool = True) -> TrainReport:
    """Cross-validate then fit classifier ``name`` ([classifiers.NAME]); writes models/NAME/ (see module doc)."""
    cfg = ws.config.classifier(name)
    k = folds or cfg.folds
    if cfg.head == "multimodal":
        from iconoscope.learn.multimodal import train_multimodal

        return train_multimodal(ws, name, k)  # type: ignore[no-any-return]
    params = dict(cfg.params)
    seed = int(params.get("seed", 0)) if seed is None else seed
    labels = load_labels(ws, name)
    if cfg.head == "ensemble":
        from iconoscope.learn.ensemble import train_ensemble

        return train_ensemble(ws, name, labels, folds, seed)  # type: ignore[no-any-return]
    if cfg.head == "finetune":
        from iconoscope.learn.finetune import train_finetune

        return train_finetune(ws, name, labels, k, seed, params, show_progress=show_progress)

    t0 = time.perf_counter()
    labels, X, left_out = embeddings_for(ws, labels, cfg.backbone, show_progress=show_progress)
    Y = labels.Y.astype(np.float32)
    if len(set(labels.records)) < k:
        raise ConfigError(f"classifier '{name}': {len(set(labels.records))} records cannot fill {k} folds")
    grid = _grid(cfg.head, params)
    inner_k = int(params.get("inner_folds", 3))
    fold_of = grouped_folds(labels.Y, labels.records, k, seed=seed)
    fine = fine_keys(labels) if params.get("fine_labels") else None
    S = np.zeros(Y.shape, dtype=np.float32)
    per_fold: list[dict[str, Any]] = []
    fold_thresholds: list[list[float]] = []
    chosen: list[str] = []
    last_head: Any = None
    from tqdm import tqdm

    from iconoscope.learn.foldcache import FoldCache

    cache = FoldCache(ws.model_dir(name), {"head": cfg.head, "params": params, "backbone": cfg.backbone, "k": k,
                                           "seed": seed, "labels": labels.sha256(),
                                           **({"fine": fine} if fine is not None else {})})
    for f, (tr, te) in enumerate(tqdm(fold_indices(fold_of), desc=f"train {name}", unit="fold",
                                      disable=not show_progress)):
        done = cache.load(f)
        if done is None:
            head, best, th, trials = select_and_fit(cfg.head, grid, X[tr], Y[tr], [labels.records[i] for i in tr],
                                                    inner_k, seed, None if fine is None else [fine[i] for i in tr])
            scores = head.predict_proba(X[te])
            m = evaluate_scores(labels.Y[te], scores, th)
            done = {"scores": scores, "head": head, "thresholds": th.tolist(), "chosen": best,
                    "fold": {"fold": f, "n_train": len(tr), "n_test": len(te), "params": best, "inner": trials,
                             **{kk: m[kk] for kk in (*SUMMARY_KEYS, "per_class_ap")}}}
            cache.save(f, done)
        S[te] = done["scores"]
        last_head = done["head"]
        per_fold.append(done["fold"])
        fold_thresholds.append(done["thresholds"])
        chosen.append(json.dumps(done["chosen"], sort_keys=True))
    final_setting = json.loads(Counter(chosen).most_common(1)[0][0])
    final = _fit(cfg.head, final_setting, X, Y, init=last_head, fine=fine)
    thresholds = best_f1_thresholds(labels.Y, S)
    mean, std = _summarise(per_fold)
    pooled = evaluate_scores(labels.Y, S, None)

    model_dir = ws.model_dir(name)
    version = _next_version(model_dir)
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.card import write_card
    from iconoscope.learn.classifier import save_model

    bb = get_backbone(cfg.backbone, ws=ws)
    save_model(model_dir, final, kind=cfg.head, categories=labels.categories,
               labels={c: labels.label(c) for c in labels.categories}, backbone=cfg.backbone, version=version)
    write_oof(model_dir / "oof_scores.parquet", labels, S, fold_of)
    write_thresholds(model_dir, labels.categories, thresholds, fold_thresholds, "best F1 on inner out-of-fold scores")
    seconds = time.perf_counter() - t0
    report = TrainReport(name=name, version=version, head=cfg.head, backbone=cfg.backbone, folds=k,
                         n_images=len(labels), n_records=len(set(labels.records)), mean=mean, std=std,
                         per_fold=per_fold, params=final_setting, model_dir=model_dir, seconds=seconds,
                         left_out=len(left_out))
    write_card(ws, model_dir, report, labels, backbone=bb.describe(), grid=grid, inner_folds=inner_k, seed=seed,
               left_out=left_out, pooled=pooled, thresholds=thresholds,
               created=datetime.now(UTC).isoformat(timespec="seconds"))
    report.resumed = list(cache.resumed)
    cache.clear()
    return report
