"""Noise and silence: where the curated annotations and the classifier disagree, worst first.

* **noise**: a record annotated with category c (directly or with a concept below c) whose best image scores at most
  c's noise threshold: the annotation is probably wrong.
* **silence**: a record not annotated with c (nor below it) whose best image scores at least c's silence threshold:
  the annotation is probably missing. Suggestions a curator rejected (review graph) are left out.

Thresholds are per class, from out-of-fold scores only (``thresholds.py``: confident learning, class against the
rest). Scores come from the classifier's newest run through its derived index; curated subjects and rejections are
read from the graph on every call, so a curator's decision shows at once. The answer equals the plain SPARQL of
``enrich_plain_noise.rq`` / ``enrich_plain_silence.rq`` (tested; ``bench/search.py`` times both).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from iconoscope.enrich.concepts import concept_labels, resolve_concepts
from iconoscope.enrich.curated import curated_matrix
from iconoscope.enrich.index import ScoreIndex, ensure_index
from iconoscope.enrich.runs import RunInfo, latest_run, local_id, run_categories
from iconoscope.enrich.search import top_order
from iconoscope.enrich.tables import select_table
from iconoscope.enrich.thresholds import Thresholds, class_thresholds
from iconoscope.errors import ConfigError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw, values_iris
from iconoscope.graph.terms import nt_iri

KINDS = ("noise", "silence")


@dataclass(frozen=True)
class AuditItem:
    """One disagreement. ``score`` is None when the run stored no score: the image scored below the run's floor
    (possible only for a subject curated after the run was written; counted as 0)."""

    kind: str
    record: str
    image: str | None
    concept: str
    label: str
    score: float | None
    threshold: float
    subject_text: str | None
    classifier: str
    run: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def f32(x: float) -> float:
    """A float32 value as the shortest decimal that round-trips it (0.93, not 0.9300000071525574)."""
    return float(str(np.float32(x)))


@dataclass
class AuditData:
    """Everything both audits need, fetched once: the run, its index, thresholds and curated matrix."""

    run: RunInfo
    index: ScoreIndex
    thresholds: Thresholds
    cols: list[int]            # index columns audited
    t_pos: np.ndarray          # float32 per audited column
    t_neg: np.ndarray
    annotated: np.ndarray      # bool [records, len(cols)]
    rejected: np.ndarray       # bool [index rows, len(cols)]


def _thresholds_literal(pairs: list[tuple[str, float]]) -> Raw:
    from iconoscope.graph.vocab import XSD

    return Raw(" ".join(f'({nt_iri(c)} "{f32(t)!r}"^^<{XSD}float>)' for c, t in pairs))


def audit_data(ws: Any, name: str, category: str | None = None, lang: str | None = None) -> AuditData:
    """Load the newest run of ``name``, its thresholds and the curated annotations of its records."""
    run = latest_run(ws, name)
    if run is None:
        ws.config.classifier(name)  # an unknown classifier is a config error, not "no run"
        raise ConfigError(f"classifier '{name}' has no prediction run in the graph; run 'iconoscope predict {name}'")
    idx = ensure_index(ws, run)
    th = class_thresholds(ws, name)
    cats = [c for c in idx.categories if c in th.concepts]
    if category is not None:
        wanted = set(resolve_concepts(ws, category, lang)) if not category.startswith(("http", "urn:")) \
            else {category}
        cats = [c for c in cats if c in wanted]
        if not cats:
            labels = concept_labels(ws, idx.categories, lang)
            raise ConfigError(f"--category {category!r}: not a category of classifier '{name}' with a threshold "
                              f"(categories: {', '.join(sorted(labels.values()))})")
    cols = [idx.column(c) for c in cats]
    t_pos = np.array([th.t_pos[th.concepts.index(c)] for c in cats], dtype=np.float32)
    t_neg = np.array([th.t_neg[th.concepts.index(c)] for c in cats], dtype=np.float32)
    recs, _ = idx.record_groups()
    store = ws.store
    annotated = curated_matrix(ws, cats, recs)
    rejected = np.zeros((len(idx), len(cols)), dtype=bool)
    t = select_table(store, queries.load("enrich_rejected", review=IRI(ws.iris.review_graph())))
    if t.num_rows and cols:
        img = pc.index_in(t.column("image"), value_set=pa.array(idx.images.tolist(), pa.string()))
        cat = pc.index_in(t.column("concept"), value_set=pa.array(cats, pa.string()))
        ok = (pc.is_valid(img).to_numpy(zero_copy_only=False) & pc.is_valid(cat).to_numpy(zero_copy_only=False))
        rejected[img.to_numpy(zero_copy_only=False)[ok].astype(np.int64),
                 cat.to_numpy(zero_copy_only=False)[ok].astype(np.int64)] = True
    return AuditData(run=run, index=idx, thresholds=th, cols=cols, t_pos=t_pos, t_neg=t_neg, annotated=annotated,
                     rejected=rejected)


def _items(ws: Any, data: AuditData, kind: str, limit: int | None, lang: str | None) -> list[AuditItem]:
    idx, cols = data.index, data.cols
    recs, _ = idx.record_groups()
    if not cols or not len(recs):
        return []
    mask = None
    if kind == "noise":
        best = idx.record_best(cols)
        # NaN (no stored score: below the run's floor) counts as 0: "not above the threshold" is true for it
        flag = data.annotated & ~(best > data.t_neg[None, :]) & ~np.isnan(data.t_neg)[None, :]
    elif kind == "silence":
        mask = data.rejected if data.rejected.any() else None
        best = idx.record_best(cols, mask=mask)
        flag = ~data.annotated & (best >= data.t_pos[None, :])
    else:
        raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    r_i, c_i = np.nonzero(flag)
    cats = [idx.categories[j] for j in cols]
    keys = [recs[r_i], np.asarray(cats, dtype=object)[c_i]]
    k = len(r_i) if limit is None else min(limit, len(r_i))
    # worst first: lowest score for noise, highest for silence; ties by record then concept (as the SPARQL)
    val = np.nan_to_num(best[r_i, c_i], nan=0.0).astype(np.float32)
    order = top_order(-val if kind == "noise" else val, keys, k)
    r_i, c_i = r_i[order], c_i[order]
    rows = idx.best_rows(cols, r_i, c_i, best, mask)
    rec_iris = [str(x) for x in recs[r_i]]
    texts: dict[str, str] = {}
    for s in range(0, len(rec_iris), 2000):
        chunk = list(dict.fromkeys(rec_iris[s:s + 2000]))
        t = select_table(ws.store, queries.load("enrich_record_texts", records=values_iris(chunk)))
        for r, text in zip(t.column("record").to_pylist(), t.column("text").to_pylist(), strict=True):
            if r is not None and text is not None:
                texts.setdefault(r, text)
    labels = concept_labels(ws, cats, lang)
    thr = data.t_neg if kind == "noise" else data.t_pos
    out = []
    for n, (r, c, rec) in enumerate(zip(r_i.tolist(), c_i.tolist(), rec_iris, strict=True)):
        row = int(rows[n])
        score = best[r, c]
        out.append(AuditItem(kind=kind, record=local_id(ws, rec, "record"),
                             image=local_id(ws, str(idx.images[row]), "image") if row >= 0 else None,
                             concept=cats[c], label=labels[cats[c]], score=None if np.isnan(score) else f32(score),
                             threshold=f32(thr[c]), subject_text=texts.get(rec), classifier=data.run.classifier,
                             run=data.run.run_id))
    return out


def audit(ws: Any, name: str, kind: str, category: str | None = None, limit: int | None = None,
          lang: str | None = None) -> list[AuditItem]:
    """The noise or silence list of classifier ``name`` (one category, or all), worst first."""
    if kind not in KINDS:
        raise ConfigError(f"--kind {kind!r}: expected one of {', '.join(KINDS)}")
    if limit is not None and limit < 0:
        raise ConfigError(f"limit = {limit}: expected a non-negative number")
    return _items(ws, audit_data(ws, name, category, lang), kind, limit, lang)


def audit_all(ws: Any, name: str, category: str | None = None, limit: int | None = None,
              lang: str | None = None) -> dict[str, list[AuditItem]]:
    """Both lists from one read of the graph (what ``bench/search.py`` times as the full audit)."""
    data = audit_data(ws, name, category, lang)
    return {kind: _items(ws, data, kind, limit, lang) for kind in KINDS}


def plain_sparql_audit(ws: Any, name: str, kind: str, category: str | None = None) -> list[tuple[str, str, float]]:
    """The same audit in plain SPARQL over the graph: (record IRI, concept, best score) worst first.

    The reference the index path is tested against (and the baseline ``bench/search.py`` times)."""
    run = latest_run(ws, name)
    if run is None:
        raise ConfigError(f"classifier '{name}' has no prediction run in the graph")
    th = class_thresholds(ws, name)
    in_run = set(run_categories(ws, run))
    cats = [c for c in th.concepts if c in in_run and (category is None or c == category)]
    pairs = []
    for c in cats:
        t_pos, t_neg = th.get(c)
        t = t_neg if kind == "noise" else t_pos
        if not np.isnan(t):
            pairs.append((c, t))
    if not pairs:
        return []
    q = queries.load(f"enrich_plain_{kind}", run=IRI(run.iri), graph=IRI(run.graph),
                     thresholds=_thresholds_literal(pairs), review=IRI(ws.iris.review_graph()))
    tab = select_table(ws.store, q)
    best = pc.cast(tab.column("best"), pa.float32()).to_numpy(zero_copy_only=False)
    return [(r, c, f32(b)) for r, c, b in zip(tab.column("record").to_pylist(), tab.column("category").to_pylist(),
                                               best.tolist(), strict=True)]
