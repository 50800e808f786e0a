"""The ``ensemble`` head: the weighted mean of the probabilities of trained classifiers of one label set.

Different models make different mistakes: a linear probe on frozen features of two ImageNet networks and a network
top fine-tuned on the collection rank the rare classes differently, and their average ranks better than either (the
oldest way to gain from diversity; Annif's ``ensemble`` backend does the same for subject indexing)::

    [classifiers.genera_ensemble]
    head = "ensemble"
    members = ["genera_multilayer_6views", "genera_mnv2_finetune_top"]
    weights = [1, 1]          # optional, fixed by the user: nothing is fitted, so nothing can overfit

Training fits nothing. ``train`` reads the members' out-of-fold scores, which must come from the *same* folds (same
label table, fold count and seed: checked row by row), and averages them: each image's ensemble score then comes
only from models that never saw it, so the ensemble's cross-validated figures are as honest as its members'. The
thresholds of outer fold ``f`` are calibrated (best F1) on the ensemble's out-of-fold scores of the *other* folds,
never on fold ``f``'s labels; the final thresholds on all of them.

The trained model is an ordinary classifier: its backbone is the ``concat:`` of the members' final backbones (a
fine-tuned member contributes its saved network), its head an :class:`EnsembleHead` that slices the concatenated
vector per member and averages the members' heads. ``predict``, ``predict --images``, the enrichment and the web app
use it unchanged, and ``embed`` fills its vectors from the members' stores.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.datasets import LabelSet

#: the members of a trained ensemble must have been trained on this many folds at least
MIN_FOLDS = 2


class EnsembleHead:
    """Scores ``[N, sum(dims)]`` vectors: member ``i``'s head reads columns ``offsets[i]:offsets[i+1]``; the result
    is the weighted mean of the members' probabilities (scikit-learn's ``predict_proba`` convention)."""

    def __init__(self, heads: Sequence[Any], dims: Sequence[int], weights: Sequence[float]):
        if not (len(heads) == len(dims) == len(weights)) or len(heads) < 2:
            raise ValueError("EnsembleHead: one dim and one weight per head, two heads at least")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ValueError(f"EnsembleHead: weights {list(weights)} must be >= 0 and not all 0")
        self.heads = list(heads)
        self.dims = [int(d) for d in dims]
        self.weights = np.asarray(weights, np.float64) / float(sum(weights))
        self.offsets = np.concatenate([[0], np.cumsum(self.dims)]).astype(int)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, np.float32)
        if X.ndim != 2 or X.shape[1] != self.offsets[-1]:
            raise ValueError(f"EnsembleHead: vectors of shape {X.shape}, the members read {self.offsets[-1]} columns")
        return combine([h.predict_proba(X[:, a:b]) for h, a, b in zip(self.heads, self.offsets[:-1], self.offsets[1:],
                                                                         strict=True)], self.weights)


def combine(scores: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted mean of members' probability matrices (what :class:`EnsembleHead` computes on vectors)."""
    w = np.asarray(weights, np.float64) / float(sum(weights))
    return np.sum([wi * np.asarray(s, np.float64) for wi, s in zip(w, scores, strict=True)], axis=0).astype(np.float32)


def flat_parts(spec: str) -> list[str]:
    """A backbone spec as the list of parts a ``concat:`` of several members is made of."""
    from iconoscope.learn.backbones.concat import split_concat

    return split_concat(spec) if spec.startswith("concat:") else [spec]


def other_fold_thresholds(Y: np.ndarray, S: np.ndarray, folds: np.ndarray) -> list[np.ndarray]:
    """Per outer fold, best-F1 thresholds calibrated on the other folds' out-of-fold scores and labels only."""
    from iconoscope.learn.metrics import best_f1_thresholds

    return [best_f1_thresholds(Y[folds != f], S[folds != f]) for f in range(int(folds.max()) + 1)]


def _member_oof(ws: Any, ens: str, member: str, labels: LabelSet) -> tuple[Any, np.ndarray, np.ndarray]:
    """(member classifier, its out-of-fold scores aligned with ``labels``, their fold numbers); a clear error when the
    member is untrained or was trained on other rows, labels or categories."""
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.evaluate import read_oof

    where = f"classifier '{ens}': member '{member}'"
    try:
        clf = load_classifier(ws, member)
    except ConfigError:
        raise ConfigError(f"{where} is not trained; run 'iconoscope train {member}' first") from None
    if clf.categories != labels.categories:
        raise ConfigError(f"{where} was trained on other categories; run 'iconoscope labels {member}' and "
                          f"'iconoscope train {member}' again")
    images, _records, Y, S, folds = read_oof(clf.model_dir, clf.categories)  # type: ignore[arg-type]
    row = {img: i for i, img in enumerate(images)}
    missing = [img for img in labels.images if img not in row]
    if missing:
        raise ConfigError(f"{where} has no out-of-fold score for {len(missing)} image(s) of the label table (e.g. "
                          f"{missing[0]}): it was trained on another label table or left images out; train it again")
    idx = np.asarray([row[img] for img in labels.images], int)
    if len(images) != len(labels.images) or not np.array_equal(Y[idx], labels.Y.astype(bool)):
        raise ConfigError(f"{where} was trained on another label table ({len(images)} images, this one has "
                          f"{len(labels.images)}); run 'iconoscope labels' and 'iconoscope train' for both again")
    return clf, S[idx], folds[idx]


def train_ensemble(ws: Any, name: str, labels: LabelSet, k: int | None, seed: int) -> Any:
    """``train NAME`` for ``head = "ensemble"`` (see the module doc); returns a :class:`TrainReport`."""
    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.card import write_card
    from iconoscope.learn.classifier import save_model
    from iconoscope.learn.metrics import best_f1_thresholds, evaluate_scores
    from iconoscope.learn.train import (
        SUMMARY_KEYS,
        TrainReport,
        _next_version,
        _summarise,
        write_oof,
        write_thresholds,
    )

    t0 = time.perf_counter()
    cfg = ws.config.classifier(name)
    members: list[str] = list(cfg.params["members"])
    weights = [float(w) for w in cfg.params.get("weights", [1.0] * len(members))]
    got = [_member_oof(ws, name, m, labels) for m in members]
    folds = got[0][2]
    for m, (_, _, f) in zip(members[1:], got[1:], strict=True):
        if not np.array_equal(f, folds):
            raise ConfigError(f"classifier '{name}': members '{members[0]}' and '{m}' were cross-validated on "
                              "different folds; train both with the same --folds and --seed")
    n_folds = int(folds.max()) + 1
    if n_folds < MIN_FOLDS or (k is not None and k != n_folds):
        raise ConfigError(f"classifier '{name}': its members were cross-validated on {n_folds} folds; an ensemble "
                          f"cannot choose other folds (asked for {k})")
    Y = labels.Y.astype(bool)
    S = combine([s for _, s, _ in got], weights)
    fold_th = other_fold_thresholds(Y, S, folds)
    per_fold = []
    for f in range(n_folds):
        te = folds == f
        m = evaluate_scores(Y[te], S[te], fold_th[f])
        per_fold.append({"fold": f, "n_train": int((~te).sum()), "n_test": int(te.sum()), "params": {},
                         **{kk: m[kk] for kk in (*SUMMARY_KEYS, "per_class_ap")}})
    thresholds = best_f1_thresholds(Y, S)
    mean, std = _summarise(per_fold)

    member_parts = [flat_parts(clf.backbone) for clf, _, _ in got]
    spec = "concat:" + "|".join(p for parts in member_parts for p in parts)
    backbone = get_backbone(spec, ws=ws)  # loads each network once; a member's dim is the sum of its parts'
    part_dims = iter(p.dim for p in backbone.parts)
    dims = [sum(next(part_dims) for _ in parts) for parts in member_parts]
    head = EnsembleHead([clf.head for clf, _, _ in got], dims, weights)
    model_dir = ws.model_dir(name)
    version = _next_version(model_dir)
    provenance = [{"name": m, "version": clf.version, "head": clf.kind, "backbone": clf.backbone, "dim": d,
                   "weight": w, "model_sha256": _sha256(clf.model_dir / "model.joblib")}
                  for m, (clf, _, _), d, w in zip(members, got, dims, weights, strict=True)]
    save_model(model_dir, head, kind="ensemble", categories=labels.categories,
               labels={c: labels.label(c) for c in labels.categories}, backbone=spec, version=version,
               extra={"members": provenance})
    write_oof(model_dir / "oof_scores.parquet", labels, S, folds)
    write_thresholds(model_dir, labels.categories, thresholds, fold_th,
                     "best F1 on the other folds' out-of-fold scores")
    params = {"members": members, "weights": weights}
    report = TrainReport(name=name, version=version, head="ensemble", backbone=spec, folds=n_folds,
                         n_images=len(labels), n_records=len(set(labels.records)), mean=mean, std=std,
                         per_fold=per_fold, params=params, model_dir=model_dir, seconds=time.perf_counter() - t0)
    write_card(ws, model_dir, report, labels, backbone=backbone.describe(), grid=[params],
               inner_folds=0, seed=seed, left_out=[], pooled=evaluate_scores(Y, S, None), thresholds=thresholds,
               created=datetime.now(UTC).isoformat(timespec="seconds"),
               protocol=(f"the weighted mean of the members' out-of-fold scores ({n_folds}-fold cross-validation, the "
                         "members' own folds, checked identical); nothing is fitted; each fold's thresholds are "
                         "calibrated on the other folds' scores; metrics on the test folds only"),
               extra={"members": provenance})
    return report


def _sha256(path: Any) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
