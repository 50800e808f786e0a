"""Per-class audit thresholds from out-of-fold scores (confident learning, one class against the rest).

Why out-of-fold: a model scoring the images it was trained on echoes their curated labels, so a threshold (or an
error list) computed from such scores hides exactly the errors we look for. ``train`` writes, for every labelled
image, the score of the fold model that did *not* see it (``models/{name}/oof_scores.parquet``); thresholds come from
those rows only, never from training-fold scores or from the prediction run.

The rule is cleanlab's per-class threshold applied to each category as a binary task (what cleanlab does for
multi-label data): for category c with out-of-fold scores p,

* ``t_pos[c]`` = mean p over images labelled c. A record *not* annotated with c but scoring ``p >= t_pos[c]`` is as
  confidently c as an average true c: **silence** (probably a missing annotation).
* ``t_neg[c]`` = mean p over images not labelled c (the threshold of the complementary class "not c" is
  ``mean(1 - p)``, and ``1 - p >= mean(1 - p)`` is ``p <= mean p``). A record annotated with c but scoring
  ``p <= t_neg[c]`` looks as little like c as an average non-c: **noise** (probably a wrong annotation).

A class without positives (or negatives) in the out-of-fold table gets no silence (or noise) threshold.
Thresholds are float32, the precision scores have in the graph, so the index and SPARQL compare the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError, IconoscopeError

OOF_FILE = "oof_scores.parquet"


@dataclass(frozen=True)
class Thresholds:
    """Per-category thresholds (NaN where a class has no positives / negatives) and the counts behind them."""

    concepts: list[str]
    t_pos: np.ndarray   # float32 [C]
    t_neg: np.ndarray   # float32 [C]
    n_pos: np.ndarray   # int64 [C]
    n_neg: np.ndarray   # int64 [C]
    source: str

    def get(self, concept: str) -> tuple[float, float]:
        j = self.concepts.index(concept)
        return float(self.t_pos[j]), float(self.t_neg[j])

    def as_dict(self) -> dict[str, dict[str, float | int | None]]:
        def f(x: float) -> float | None:
            return None if np.isnan(x) else float(x)

        return {c: {"silence": f(self.t_pos[j]), "noise": f(self.t_neg[j]), "positives": int(self.n_pos[j]),
                    "negatives": int(self.n_neg[j])} for j, c in enumerate(self.concepts)}


def thresholds_from_table(table: pa.Table, source: str = "<table>") -> Thresholds:
    """Thresholds from an out-of-fold table with columns ``concept``, ``score``, ``label`` (0/1)."""
    missing = {"concept", "score", "label"} - set(table.column_names)
    if missing:
        raise IconoscopeError(f"{source}: missing column(s) {', '.join(sorted(missing))}")
    if "fold" in table.column_names and table.num_rows:
        folds = table.column("fold")
        if pc.any(pc.less(folds, 0)).as_py():
            raise IconoscopeError(f"{source}: rows with a negative fold are not out-of-fold scores")
    score = pc.cast(table.column("score"), pa.float64())
    label = pc.cast(table.column("label"), pa.int8())
    if table.num_rows and pc.any(pc.is_nan(score)).as_py():
        raise IconoscopeError(f"{source}: NaN scores")
    t = pa.table({"concept": table.column("concept"), "score": score, "pos": label})
    if pa.types.is_dictionary(t.schema.field("concept").type):   # row groups may carry different dictionaries
        t = t.unify_dictionaries().combine_chunks()
    agg = t.group_by(["concept", "pos"]).aggregate([("score", "sum"), ("score", "count")]).to_pydict()
    concepts = sorted(set(agg["concept"]))
    pos_i = {c: j for j, c in enumerate(concepts)}
    sums = np.zeros((len(concepts), 2))
    counts = np.zeros((len(concepts), 2), dtype=np.int64)
    for c, p, s, n in zip(agg["concept"], agg["pos"], agg["score_sum"], agg["score_count"], strict=True):
        k = 1 if p else 0
        sums[pos_i[c], k] += s
        counts[pos_i[c], k] += n
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums / counts).astype(np.float32)
    return Thresholds(concepts=concepts, t_pos=means[:, 1], t_neg=means[:, 0], n_pos=counts[:, 1],
                      n_neg=counts[:, 0], source=source)


def oof_path(ws: Any, name: str) -> Path:
    return ws.model_dir(name) / OOF_FILE


_CACHE: dict[str, tuple[tuple[float, int], Thresholds]] = {}


def class_thresholds(ws: Any, name: str) -> Thresholds:
    """Thresholds of classifier ``name`` from its out-of-fold scores; a clear error when there are none.

    Cached per process while the file is unchanged (same modification time and size): a web app audits often."""
    path = oof_path(ws, name)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{path}: no out-of-fold scores for classifier '{name}'; run 'iconoscope train {name}' "
                          "(the audit's thresholds come from cross-validated scores only)") from None
    key = (st.st_mtime, st.st_size)
    hit = _CACHE.get(str(path))
    if hit and hit[0] == key:
        return hit[1]
    try:
        table = pq.read_table(path, columns=["concept", "score", "label", "fold"], read_dictionary=["concept"])
    except (OSError, pa.ArrowInvalid, KeyError) as e:
        raise IconoscopeError(f"{path}: cannot read out-of-fold scores: {e}") from None
    th = thresholds_from_table(table, source=str(path))
    _CACHE[str(path)] = (key, th)
    return th
