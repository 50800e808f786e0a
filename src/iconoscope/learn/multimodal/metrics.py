"""Per-task metrics of the paper's protocol: top-1, macro precision/recall/F1, confusion matrices, per fold.

Single-label tasks may have records with several true values (a painting of two movements): a prediction counts
as correct when it is one of them, and for P/R/F1 the true value is the predicted one when it is among them, else
the first. Subsets by minimum samples per class (``>= 50`` ...) keep the records of the classes that have at least
that many labelled records and take the argmax over those classes only, as if the model had been built for them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from iconoscope.learn.metrics import top_k_accuracy


@dataclass
class TaskScores:
    """Out-of-fold probabilities of one task: ``P`` [N, C], truth ``Y`` [N, C], labelled rows, folds."""

    name: str
    classes: list[str]
    P: np.ndarray
    Y: np.ndarray
    has: np.ndarray
    fold: np.ndarray
    multilabel: bool = False


def _truth_and_pred(P: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pred = P.argmax(axis=1)
    hit = Y[np.arange(len(Y)), pred] > 0
    first = Y.argmax(axis=1)
    truth = np.where(hit, pred, first)
    return truth, pred, hit


def single_label_metrics(P: np.ndarray, Y: np.ndarray, n_classes: int | None = None) -> dict[str, float]:
    """top-1 accuracy, top-3 accuracy and macro P/R/F1 (macro over the classes present in the truth)."""
    from sklearn.metrics import precision_recall_fscore_support

    if len(P) == 0:
        return {"n": 0, "top1": math.nan, "top3": math.nan, "macro_p": math.nan, "macro_r": math.nan,
                "macro_f1": math.nan}
    truth, pred, _ = _truth_and_pred(P, Y)
    labels = np.unique(truth)
    p, r, f, _ = precision_recall_fscore_support(truth, pred, labels=labels, average="macro", zero_division=0)
    return {"n": len(P), "top1": top_k_accuracy(Y > 0, P, 1), "top3": top_k_accuracy(Y > 0, P, 3),
            "macro_p": float(p),
            "macro_r": float(r), "macro_f1": float(f)}


def multilabel_metrics(P: np.ndarray, Y: np.ndarray) -> dict[str, float]:
    """For set targets: top-1 (the best class is a true one), macro F1 at 0.5, macro average precision."""
    from sklearn.metrics import average_precision_score, f1_score

    if len(P) == 0:
        return {"n": 0, "top1": math.nan, "macro_f1": math.nan, "mAP": math.nan}
    Yb = (Y > 0).astype(int)
    top1 = top_k_accuracy(Yb > 0, P, 1)
    cols = Yb.sum(axis=0) > 0
    f1 = f1_score(Yb[:, cols], (P[:, cols] >= 0.5).astype(int), average="macro", zero_division=0)
    ap = average_precision_score(Yb[:, cols], P[:, cols], average="macro") if cols.any() else math.nan
    return {"n": len(P), "top1": top1, "macro_f1": float(f1), "mAP": float(ap)}


def confusion(P: np.ndarray, Y: np.ndarray, n_classes: int) -> np.ndarray:
    """[true, predicted] counts."""
    from sklearn.metrics import confusion_matrix

    truth, pred, _ = _truth_and_pred(P, Y)
    return confusion_matrix(truth, pred, labels=np.arange(n_classes))


def class_counts(ts: TaskScores) -> np.ndarray:
    """Labelled records per class (a record of two classes counts for both)."""
    return (ts.Y[ts.has] > 0).sum(axis=0)


def subset(ts: TaskScores, min_count: int) -> tuple[np.ndarray, np.ndarray]:
    """(row mask, class mask) of the classes with at least ``min_count`` labelled records."""
    keep = class_counts(ts) >= max(min_count, 1)
    rows = ts.has & ((ts.Y[:, keep] > 0).any(axis=1) if keep.any() else np.zeros(len(ts.has), dtype=bool))
    return rows, keep


def task_metrics(ts: TaskScores, min_count: int = 0) -> dict[str, Any]:
    """Metrics per fold and their mean and standard deviation, for one subset of classes."""
    rows, keep = subset(ts, min_count)
    fn = multilabel_metrics if ts.multilabel else single_label_metrics
    per_fold = []
    for f in sorted(set(ts.fold[rows].tolist())):
        sel = rows & (ts.fold == f)
        per_fold.append(fn(ts.P[sel][:, keep], ts.Y[sel][:, keep]))
    out: dict[str, Any] = {"min_count": min_count, "classes": int(keep.sum()), "records": int(rows.sum()),
                           "folds": per_fold}
    keys = [k for k in (per_fold[0] if per_fold else {}) if k != "n"]
    for k in keys:
        vals = np.array([m[k] for m in per_fold], dtype=float)
        out[k] = float(np.nanmean(vals))
        out[k + "_std"] = float(np.nanstd(vals, ddof=1)) if len(vals) > 1 else 0.0
    return out
