"""Iterative stratified k-fold for multi-label data, with groups (Sechidis, Tsoumakas & Vlahavas 2011).

Plain stratified k-fold needs one label per row; multi-label rows and rare classes break it. Iterative
stratification assigns the rows of the rarest remaining label first, each to the fold that most lacks that label,
so every fold gets its share of every class (as far as counts allow). Rows are *groups* here (records): the images
of one record share labels and often pixels, so they must land in the same fold, or a model would be evaluated on
a near-copy of its training data.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def iterative_stratification(Y: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Fold index (0..k-1) per row of the binary matrix ``Y`` [N, C]; rows without labels are spread evenly."""
    Y = np.asarray(Y, dtype=bool)
    n, _c = Y.shape
    if k < 2:
        raise ValueError(f"k = {k}: need at least 2 folds")
    if n < k:
        raise ValueError(f"{n} rows cannot fill {k} folds")
    rng = np.random.default_rng(seed)
    folds = np.full(n, -1, dtype=np.int64)
    ratios = np.full(k, 1.0 / k)
    want_rows = ratios * n
    want_label = np.outer(ratios, Y.sum(axis=0)).astype(np.float64)  # [k, C]
    remaining = Y.copy()
    unassigned = np.ones(n, dtype=bool)
    while remaining[unassigned].any():
        counts = remaining[unassigned].sum(axis=0).astype(np.float64)
        counts[counts == 0] = np.inf
        label = int(np.argmin(counts))
        rows = np.flatnonzero(unassigned & remaining[:, label])
        rng.shuffle(rows)
        for r in rows:
            need = want_label[:, label]
            best = np.flatnonzero(need == need.max())
            if len(best) > 1:  # tie: the fold that wants the most rows overall, then at random
                best = best[want_rows[best] == want_rows[best].max()]
            f = int(rng.choice(best))
            folds[r] = f
            unassigned[r] = False
            want_label[f] -= Y[r]
            want_rows[f] -= 1
    rest = np.flatnonzero(unassigned)
    rng.shuffle(rest)
    for r in rest:
        best = np.flatnonzero(want_rows == want_rows.max())
        f = int(rng.choice(best))
        folds[r] = f
        want_rows[f] -= 1
    return folds


def grouped_folds(Y: np.ndarray, groups: Sequence[str], k: int, seed: int = 0) -> np.ndarray:
    """Fold per row such that all rows of a group (record) share a fold; stratified on the groups' label union."""
    Y = np.asarray(Y, dtype=bool)
    uniq, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    G = np.zeros((len(uniq), Y.shape[1]), dtype=bool)
    np.logical_or.at(G, inverse, Y)
    gfolds = iterative_stratification(G, min(k, len(uniq)), seed)
    return gfolds[inverse]


def fold_indices(folds: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``[(train_idx, test_idx), ...]`` from a fold-per-row array."""
    return [(np.flatnonzero(folds != f), np.flatnonzero(folds == f)) for f in range(int(folds.max()) + 1)]
