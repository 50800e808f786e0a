"""Ranked search: a label -> its concept and the concepts below it -> records ranked by their best score.

``iconoscope search "chien" --lang fr --min-score 0.9`` resolves the label (``concepts``), takes the newest run of
every classifier that scores one of those concepts, ranks records by the best score of any of their images for any
of those concepts, and says for each whether it is already annotated with the concept (or below it) or a new find.
Scores are read from each run's derived index (``index``), the curated annotations of the page's records from the
graph. The answer is the one ``queries/monalia_ranked.rq`` gives in plain SPARQL (tested), in milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from iconoscope.enrich.concepts import concept_labels, concepts_below, resolve_concepts
from iconoscope.enrich.index import ensure_index
from iconoscope.enrich.runs import latest_runs, local_id
from iconoscope.errors import ConfigError
from iconoscope.graph import queries
from iconoscope.graph.queries import values_iris


@dataclass(frozen=True)
class SearchHit:
    """One record found: its best image and concept, the score, and whether a curator already said so."""

    record: str
    image: str
    concept: str
    label: str
    score: float
    annotated: bool
    classifier: str
    run: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def top_order(scores: np.ndarray, keys: Sequence[np.ndarray], k: int) -> np.ndarray:
    """Indices of the ``k`` best scores, best first, ties by ``keys`` ascending (as ``ORDER BY DESC(?s) ?k1 ?k2``).

    A partition finds the k-th best value first, so only the candidates at or above it are sorted."""
    n = len(scores)
    if n == 0 or k <= 0:
        return np.zeros(0, np.int64)
    if k < n:
        kth = np.partition(scores, n - k)[n - k]
        cand = np.flatnonzero(scores >= kth)
    else:
        cand = np.arange(n)
    sort_keys = [np.asarray(key)[cand].astype(str) for key in reversed(list(keys))]
    order = np.lexsort((*sort_keys, -scores[cand].astype(np.float64)))
    return cand[order][:k]


def search(ws: Any, text: str, lang: str | None = None, min_score: float = 0.0, limit: int = 50, offset: int = 0,
           classifier: str | None = None) -> list[SearchHit]:
    """Records whose images score at least ``min_score`` for the concept ``text`` names (or one below it)."""
    if limit < 0 or offset < 0:
        raise ConfigError(f"limit = {limit}, offset = {offset}: expected non-negative numbers")
    tops = resolve_concepts(ws, text, lang)
    if not tops:
        return []
    runs = latest_runs(ws)
    if classifier is not None:
        runs = {k: v for k, v in runs.items() if k == classifier}
    indexes = {name: ensure_index(ws, run) for name, run in runs.items()}
    # the categories at or below the text's concepts (asked of the few categories, not of the whole subtree)
    closure = concepts_below(ws, sorted({c for idx in indexes.values() for c in idx.categories}), tops)
    best_rec: list[np.ndarray] = []
    best_score: list[np.ndarray] = []
    where: list[tuple[Any, ...]] = []
    threshold = np.float32(min_score)
    for name, run in runs.items():
        idx = indexes[name]
        cols = [j for j, c in enumerate(idx.categories) if c in closure]
        if not cols:
            continue
        recs, _ = idx.record_groups()
        best = idx.record_best(cols)
        score = best[:, 0] if len(cols) == 1 else np.fmax.reduce(best, axis=1)
        sel = np.flatnonzero(score >= threshold)         # NaN (no stored score) is never kept
        best_rec.append(recs[sel])
        best_score.append(score[sel].astype(np.float32))
        where.append((sel, best, cols, idx, run))
    if not best_rec:
        return []
    recs = np.concatenate(best_rec)
    scores = np.concatenate(best_score)
    src = np.concatenate([np.full(len(r), k) for k, r in enumerate(best_rec)])
    pos = np.concatenate([np.arange(len(r)) for r in best_rec])
    if len(best_rec) > 1:  # a record scored by several classifiers: keep its best
        order = np.lexsort((-scores.astype(np.float64), recs.astype(str)))
        first = np.ones(len(order), bool)
        first[1:] = recs[order][1:] != recs[order][:-1]
        keep_i = order[first]
        recs, scores, src, pos = recs[keep_i], scores[keep_i], src[keep_i], pos[keep_i]
    page = top_order(scores, [recs], offset + limit)[offset:]
    if len(page) == 0:
        return []
    page_recs = [str(r) for r in recs[page]]
    # already annotated? the page's records' curated subjects, checked against the concepts at or below the text's
    res = ws.store.select(queries.load("enrich_record_subjects", records=values_iris(page_recs)))
    subjects = [(r.value, s.value) for r, s in res.rows if r is not None and s is not None]
    below = concepts_below(ws, {s for _, s in subjects}, tops)
    annotated = {r for r, s in subjects if s in below}
    hits_raw = []
    for k in page.tolist():
        sel, best, cols, idx, run = where[int(src[k])]
        r = int(sel[int(pos[k])])
        c = int(np.nanargmax(best[r]))                   # the category giving the record its score
        row = int(idx.best_rows(cols, np.array([r]), np.array([c]), best)[0])
        hits_raw.append((str(recs[k]), str(idx.images[row]), idx.categories[cols[c]], float(scores[k]), run))
    labels = concept_labels(ws, [h[2] for h in hits_raw], lang)
    return [SearchHit(record=local_id(ws, r, "record"), image=local_id(ws, i, "image"), concept=c, label=labels[c],
                      score=float(str(np.float32(s))),
                      annotated=r in annotated, classifier=run.classifier, run=run.run_id)
            for r, i, c, s, run in hits_raw]
