"""Metrics for multi-label classifiers: AP/mAP, P/R/F1 at per-class thresholds, top-k, confusion, PR curves.

Written in numpy (and checked against scikit-learn in the tests) so that they are exact, fast on thousands of
rows x classes, and behave the same on edge cases: a class with no positive in a fold has no defined AP and is left
out of mAP (and said so) rather than counted as 0 or 1.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def average_precision(y: np.ndarray, s: np.ndarray) -> float:
    """AP as scikit-learn's ``average_precision_score``: sum over thresholds of (R_n - R_{n-1}) P_n; NaN if no
    positive."""
    if not np.asarray(y, dtype=bool).any():
        return float("nan")
    precision, recall, _ = pr_curve(y, s)  # one point per distinct score (ties are one threshold)
    prev = np.r_[0.0, recall[:-1]]
    return float(np.sum((recall - prev) * precision))


def pr_curve(y: np.ndarray, s: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(precision, recall, thresholds) with one point per distinct score, highest threshold first."""
    y = np.asarray(y, dtype=bool)
    s = np.asarray(s, dtype=np.float64)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    distinct = np.flatnonzero(np.diff(s_sorted)) if len(s_sorted) > 1 else np.array([], dtype=np.int64)
    ends = np.r_[distinct, len(s_sorted) - 1]
    tp = np.cumsum(y_sorted)[ends]
    fp = (ends + 1) - tp
    npos = max(int(y.sum()), 1)
    return tp / np.maximum(tp + fp, 1), tp / npos, s_sorted[ends]


def per_class_ap(Y: np.ndarray, S: np.ndarray) -> np.ndarray:
    return np.array([average_precision(Y[:, j], S[:, j]) for j in range(Y.shape[1])])


def best_f1_thresholds(Y: np.ndarray, S: np.ndarray, default: float = 0.5) -> np.ndarray:
    """Per class, the score threshold that maximises F1 on (validation) data; ``default`` for a class with no
    positive. The threshold is the midpoint between the chosen score and the next lower one, so that it generalises
    rather than sitting exactly on one validation example."""
    out = np.full(Y.shape[1], default, dtype=np.float64)
    for j in range(Y.shape[1]):
        y, s = Y[:, j].astype(bool), S[:, j].astype(np.float64)
        if not y.any():
            continue
        p, r, t = pr_curve(y, s)
        f1 = np.where(p + r > 0, 2 * p * r / np.maximum(p + r, 1e-12), 0.0)
        i = int(np.argmax(f1))
        lower = t[i + 1] if i + 1 < len(t) else t[i] - 1e-6
        out[j] = float((t[i] + lower) / 2)
    return out


def prf(Y: np.ndarray, P: np.ndarray) -> dict[str, Any]:
    """Micro and macro precision/recall/F1 of binary predictions ``P`` against ``Y`` (scikit-learn's zero_division=0
    convention), plus per-class values."""
    Y = np.asarray(Y, dtype=bool)
    P = np.asarray(P, dtype=bool)
    tp = (Y & P).sum(axis=0).astype(np.float64)
    fp = (~Y & P).sum(axis=0).astype(np.float64)
    fn = (Y & ~P).sum(axis=0).astype(np.float64)

    def div(a: np.ndarray | float, b: np.ndarray | float) -> Any:
        return np.divide(a, b, out=np.zeros_like(np.asarray(a, dtype=np.float64)), where=np.asarray(b) > 0)

    p_c, r_c = div(tp, tp + fp), div(tp, tp + fn)
    f_c = div(2 * p_c * r_c, p_c + r_c)
    TP, FP, FN = tp.sum(), fp.sum(), fn.sum()
    p_mi = float(TP / (TP + FP)) if TP + FP else 0.0
    r_mi = float(TP / (TP + FN)) if TP + FN else 0.0
    f_mi = 2 * p_mi * r_mi / (p_mi + r_mi) if p_mi + r_mi else 0.0
    return {"micro_precision": p_mi, "micro_recall": r_mi, "micro_f1": f_mi,
            "macro_precision": float(p_c.mean()), "macro_recall": float(r_c.mean()), "macro_f1": float(f_c.mean()),
            "per_class_precision": p_c.tolist(), "per_class_recall": r_c.tolist(), "per_class_f1": f_c.tolist()}


def top_k_accuracy(Y: np.ndarray, S: np.ndarray, k: int = 1) -> float:
    """Share of rows (with at least one positive) whose k best-scored classes include a positive."""
    Y = np.asarray(Y, dtype=bool)
    rows = Y.any(axis=1)
    if not rows.any():
        return float("nan")
    k = min(k, Y.shape[1])
    top = np.argsort(-S[rows], axis=1, kind="mergesort")[:, :k]
    return float(np.take_along_axis(Y[rows], top, axis=1).any(axis=1).mean())


def confusion(Y: np.ndarray, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confusion matrix [true, predicted] over single-label rows (exactly one positive); predicted = argmax score.
    Returns (matrix, row mask used)."""
    Y = np.asarray(Y, dtype=bool)
    single = Y.sum(axis=1) == 1
    c = Y.shape[1]
    m = np.zeros((c, c), dtype=np.int64)
    if single.any():
        t = Y[single].argmax(axis=1)
        p = np.asarray(S)[single].argmax(axis=1)
        np.add.at(m, (t, p), 1)
    return m, single


def is_single_label(Y: np.ndarray, share: float = 0.95) -> bool:
    """A set is treated as single-label when nearly every labelled row has exactly one positive."""
    Y = np.asarray(Y, dtype=bool)
    labelled = Y.any(axis=1)
    return bool(labelled.any()) and float((Y[labelled].sum(axis=1) == 1).mean()) >= share


def evaluate_scores(Y: np.ndarray, S: np.ndarray, thresholds: np.ndarray | None = None) -> dict[str, Any]:
    """All metrics of scores ``S`` against labels ``Y`` (``thresholds`` per class; 0.5 when None)."""
    Y = np.asarray(Y, dtype=bool)
    S = np.asarray(S, dtype=np.float64)
    th = np.full(Y.shape[1], 0.5) if thresholds is None else np.asarray(thresholds, dtype=np.float64)
    ap = per_class_ap(Y, S)
    valid = ~np.isnan(ap)
    out: dict[str, Any] = {
        "n": int(Y.shape[0]), "mAP": float(np.mean(ap[valid])) if valid.any() else float("nan"),
        "per_class_ap": [None if np.isnan(a) else float(a) for a in ap],
        "classes_without_positives": int((~valid).sum()),
        "top1": top_k_accuracy(Y, S, 1), "top5": top_k_accuracy(Y, S, 5),
        "support": Y.sum(axis=0).astype(int).tolist(),
    }
    out.update(prf(Y, th[None, :] <= S))
    return out
