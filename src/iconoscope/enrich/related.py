"""``suggest-related``: skos:related candidates between a classifier's categories, with the evidence.

Two independent kinds of evidence, both counted on data the curators can check:

* **co-occurrence** of curated annotations on the same record (a record annotated below a category counts for it):
  counts ``n_ab``, ``n_a``, ``n_b`` over the ``n`` records the current run scored, the odds ratio (Haldane +0.5)
  with its 95% interval, and the pointwise mutual information ``log2(n_ab n / (n_a n_b))``. A pair is proposed when
  it co-occurs at least ``min_count`` times and the interval's lower bound is above 1 (more often together than
  chance, significantly).
* **model confusion**, from the out-of-fold scores (never training-fold ones): how many images labelled a but not b
  score b at least b's silence threshold (``confused_ab``), and the reverse. A pair is proposed when the two
  together reach ``min_count`` and ``min_rate`` of the images of a and b: the model cannot tell them apart, which
  for a thesaurus often means "related".

Pairs already linked by skos:related, or where one concept is below the other, are left out. ``apply`` writes the
accepted pairs (a CSV a curator edited) with a SPARQL UPDATE rule (``enrich_related_apply.rq``) into a named graph of
their own, ``B/graph/rules/related-{classifier}``, each link an ``oa:Annotation`` (motivation ``oa:linking``)
carrying its evidence and the ``prov:Activity`` that applied it.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from iconoscope.enrich.audit import audit_data
from iconoscope.enrich.concepts import concept_labels
from iconoscope.enrich.thresholds import oof_path
from iconoscope.enrich.write import new_run_id
from iconoscope.errors import InputError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw, values_iris
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import XSD

COLUMNS = ["concept_a", "label_a", "concept_b", "label_b", "evidence", "n_ab", "n_a", "n_b", "n", "odds_ratio",
           "odds_ratio_low", "pmi", "confused_ab", "confused_ba", "confusion_rate", "accept"]


@dataclass(frozen=True)
class RelatedSuggestion:
    concept_a: str
    label_a: str
    concept_b: str
    label_b: str
    evidence: str
    n_ab: int
    n_a: int
    n_b: int
    n: int
    odds_ratio: float
    odds_ratio_low: float
    pmi: float | None
    confused_ab: int
    confused_ba: int
    confusion_rate: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def odds_ratio(n_ab: int, n_a: int, n_b: int, n: int) -> tuple[float, float]:
    """Odds ratio of a and b co-occurring (Haldane-Anscombe +0.5) and the lower end of its 95% interval."""
    a, b, c = n_ab + 0.5, n_a - n_ab + 0.5, n_b - n_ab + 0.5
    d = n - n_a - n_b + n_ab + 0.5
    log_or = math.log(a * d / (b * c))
    se = math.sqrt(1 / a + 1 / b + 1 / c + 1 / d)
    return math.exp(log_or), math.exp(log_or - 1.96 * se)


def _hierarchy_and_related(ws: Any, concepts: list[str]) -> set[frozenset[str]]:
    res = ws.store.select(queries.load("enrich_linked_pairs", concepts=values_iris(concepts)))
    return {frozenset((str(a), str(b))) for a, b in res.rows if a is not None and b is not None and a != b}


def suggest_related(ws: Any, name: str, min_count: int = 5, min_rate: float = 0.05,
                    lang: str | None = None) -> list[RelatedSuggestion]:
    """Candidate skos:related pairs among the categories of classifier ``name``, strongest evidence first."""
    data = audit_data(ws, name, lang=lang)
    cats = [data.index.categories[j] for j in data.cols]
    A = data.annotated.astype(np.int64)
    n = A.shape[0]
    n_single = A.sum(axis=0)
    co = A.T @ A
    # confusion from out-of-fold scores
    t = pq.read_table(oof_path(ws, name), columns=["image", "concept", "score", "label"]).to_pandas()
    t = t[t.concept.isin(cats)]
    P = t.pivot_table(index="image", columns="concept", values="score", aggfunc="first").reindex(columns=cats)
    L = t.pivot_table(index="image", columns="concept", values="label", aggfunc="first").reindex(columns=cats)
    L = L.reindex(P.index).fillna(0).to_numpy(dtype=bool)
    over = (P.to_numpy(dtype=np.float32) >= data.t_pos[None, :]) & ~np.isnan(P.to_numpy(dtype=np.float32))
    conf = (L.astype(np.int64).T @ (over & ~L).astype(np.int64))      # conf[a, b]: labelled a (not b), scores b
    n_lab = L.sum(axis=0)
    linked = _hierarchy_and_related(ws, cats)
    labels = concept_labels(ws, cats, lang)
    out = []
    for a in range(len(cats)):
        for b in range(a + 1, len(cats)):
            if frozenset((cats[a], cats[b])) in linked:
                continue
            n_ab = int(co[a, b])
            ratio, low = odds_ratio(n_ab, int(n_single[a]), int(n_single[b]), n) if n else (1.0, 1.0)
            by_cooc = n_ab >= min_count and low > 1
            c_ab, c_ba = int(conf[a, b]), int(conf[b, a])
            denom = int(n_lab[a] + n_lab[b])
            rate = (c_ab + c_ba) / denom if denom else 0.0
            by_conf = c_ab + c_ba >= min_count and rate >= min_rate
            if not (by_cooc or by_conf):
                continue
            pmi = math.log2(n_ab * n / (n_single[a] * n_single[b])) if n_ab else None
            evidence = "+".join(k for k, ok in (("cooccurrence", by_cooc), ("confusion", by_conf)) if ok)
            out.append(RelatedSuggestion(cats[a], labels[cats[a]], cats[b], labels[cats[b]], evidence, n_ab,
                                         int(n_single[a]), int(n_single[b]), n, round(ratio, 4), round(low, 4),
                                         None if pmi is None else round(pmi, 4), c_ab, c_ba, round(rate, 4)))
    return sorted(out, key=lambda s: (-s.evidence.count("+"), -max(s.odds_ratio_low, 1.0) * (s.n_ab + 1),
                                      -s.confusion_rate, s.concept_a, s.concept_b))


def write_suggestions_csv(suggestions: list[RelatedSuggestion], out: Any) -> None:
    """The CSV a curator edits: set ``accept`` to 1 (or delete the rows to refuse) and pass it to ``--apply``."""
    w = csv.writer(out, lineterminator="\n")
    w.writerow(COLUMNS)
    for s in suggestions:
        w.writerow([*(getattr(s, c) if getattr(s, c) is not None else "" for c in COLUMNS[:-1]), ""])


_YES = {"1", "y", "yes", "true", "x", "oui"}


def read_accepted(path: Path) -> list[tuple[str, str, dict[str, str]]]:
    """(concept_a, concept_b, evidence columns) of the accepted rows. Without an ``accept`` column (or with it
    empty everywhere) every row counts as accepted."""
    try:
        with open(path, encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror}") from None
    if not rows:
        return []
    missing = {"concept_a", "concept_b"} - set(rows[0])
    if missing:
        raise InputError(str(path), f"missing column(s) {', '.join(sorted(missing))}", line=1)
    any_flag = any((r.get("accept") or "").strip() for r in rows)
    out = []
    for line, r in enumerate(rows, start=2):
        if any_flag and (r.get("accept") or "").strip().lower() not in _YES:
            continue
        a, b = (r.get("concept_a") or "").strip(), (r.get("concept_b") or "").strip()
        for v in (a, b):
            try:
                nt_iri(v)
            except ValueError:
                raise InputError(str(path), f"{v!r} is not a concept IRI", line=line) from None
            if not v.startswith(("http://", "https://", "urn:")):
                raise InputError(str(path), f"{v!r} is not a concept IRI", line=line)
        if a == b:
            raise InputError(str(path), "a concept cannot be related to itself", line=line)
        evidence = {k: v for k, v in r.items() if k not in ("concept_a", "concept_b", "label_a", "label_b",
                                                            "accept") and v not in (None, "")}
        out.append((a, b, evidence))
    return out


def apply_related(ws: Any, name: str, path: Path, user: str | None = None) -> int:
    """Write the accepted pairs of ``path`` as skos:related (both directions) with provenance; returns how many
    pairs were written. Unknown concepts are refused (with the CSV line) before anything is written."""
    pairs = read_accepted(path)
    if not pairs:
        return 0
    concepts = sorted({c for a, b, _ in pairs for c in (a, b)})
    res = ws.store.select(queries.load("enrich_known_concepts", concepts=values_iris(concepts)))
    known = {str(c) for c in res.column("concept")}
    for line, (a, b, _) in enumerate(pairs, start=2):
        for c in (a, b):
            if c not in known:
                raise InputError(str(path), f"unknown concept {c} (not a skos:Concept of any loaded vocabulary)",
                                 line=line)
    run_id = new_run_id(f"related-{name}")
    graph = ws.iris.rules_graph(f"related-{name}")
    values = " ".join(
        f"({nt_iri(a)} {nt_iri(b)} {nt_iri(ws.iris.annotation(run_id, str(k)))} "
        f"{nt_literal(json.dumps(ev, sort_keys=True))})" for k, (a, b, ev) in enumerate(pairs))
    when = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    agent = ws.iris.agent(user) if user else ws.iris.agent("iconoscope")
    update = queries.load("enrich_related_apply", graph=IRI(graph), activity=IRI(ws.iris.run(run_id)),
                          pairs=Raw(values), model=IRI(ws.iris.model(name)), file=str(Path(path).name),
                          agent=IRI(agent), when=Raw(nt_literal(when, datatype=XSD + "dateTime")))
    ws.store.update(update)
    return len(pairs)
