"""Relevance feedback: a curator teaches a category by example; a linear SVM on the embeddings ranks the collection.

As in GallicaSnoop, each round the curator marks a few images of the ranked list as relevant (positive) or not
(negative), the SVM is refit on every label so far and the collection is re-ranked. Until the curator has given
negatives, a random sample of the collection stands in for them (with a low weight: most of a collection is
"not this category", but some of the sample may be), so ranking works from the very first positive.

A session (``vectors/{slug}/explore/feedback/{name}.json``) keeps the labels of every round, so the CLI can be run
round after round; ``save_category`` writes the result into the graph as a SKOS concept with the SVM's scores as
Web Annotations and the curator's examples as provenance (docs/graph-model.md, "Feedback categories").
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from iconoscope.errors import ConfigError, InputError
from iconoscope.explore.index import normalize
from iconoscope.explore.similar import SimilarHit

BACKGROUND = 200  # random stand-in negatives
BACKGROUND_WEIGHT = 0.2


class LinearFeedback(ClassifierMixin, BaseEstimator):
    """A linear SVM on unit-normalised embeddings (scikit-learn API); classes are 0 (negative) and 1 (positive)."""

    def __init__(self, C: float = 1.0, class_weight: str | dict[int, float] | None = "balanced"):
        self.C = C
        self.class_weight = class_weight

    def fit(self, X: np.ndarray, y: np.ndarray, sample_weight: np.ndarray | None = None) -> LinearFeedback:
        from sklearn.svm import LinearSVC

        y = np.asarray(y).astype(np.int64)
        if set(np.unique(y)) != {0, 1}:
            raise ValueError("feedback: need at least one positive and one negative example")
        self.svm_ = LinearSVC(C=self.C, class_weight=self.class_weight, dual="auto", max_iter=5000)
        self.svm_.fit(normalize(X), y, sample_weight=sample_weight)
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self.svm_.decision_function(normalize(X))

    def predict(self, X: np.ndarray) -> np.ndarray:
        return (self.decision_function(X) > 0).astype(np.int64)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """A logistic squashing of the margin (uncalibrated: few labels cannot calibrate; ranks are what count)."""
        p = 1.0 / (1.0 + np.exp(-2.0 * self.decision_function(X)))
        return np.stack([1 - p, p], axis=1)


def feedback_scores(X: np.ndarray, positives: Sequence[int], negatives: Sequence[int] = (),
                    background: int = BACKGROUND, background_weight: float = BACKGROUND_WEIGHT, C: float = 1.0,
                    seed: int = 0) -> np.ndarray:
    """SVM margins for every row of ``X`` from positive/negative row positions (random rows as weak negatives)."""
    pos = np.unique(np.asarray(positives, dtype=np.int64))
    neg = np.setdiff1d(np.unique(np.asarray(negatives, dtype=np.int64)), pos)
    if len(pos) == 0:
        raise ValueError("feedback: at least one positive example is needed")
    labeled = np.union1d(pos, neg)
    rng = np.random.default_rng(seed)
    pool = np.setdiff1d(np.arange(len(X)), labeled)
    bg = rng.choice(pool, min(background, len(pool)), replace=False) if background and len(pool) else \
        np.zeros(0, np.int64)
    rows = np.concatenate([pos, neg, bg])
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg) + len(bg))]).astype(np.int64)
    w = np.concatenate([np.ones(len(pos) + len(neg)), np.full(len(bg), background_weight)])
    if len(np.unique(y)) < 2:  # nothing to contrast with (a one-image collection): rank by cosine to the positives
        Xn = normalize(X)
        return Xn @ normalize(Xn[pos].mean(axis=0, keepdims=True))[0]
    model = LinearFeedback(C=C).fit(X[rows], y, sample_weight=w)
    return model.decision_function(X)


def precision_at(scores: np.ndarray, relevant: np.ndarray, k: int) -> float:
    top = np.argsort(-scores, kind="stable")[:k]
    return float(np.mean(relevant[top])) if len(top) else 0.0


# ---- sessions and the workspace glue ----------------------------------------------------------------------------

@dataclass
class FeedbackSession:
    """The labels a curator gave, round by round, for one category under one backbone."""

    name: str
    spec: str
    positives: list[str] = field(default_factory=list)
    negatives: list[str] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)

    def add(self, positives: Sequence[str] = (), negatives: Sequence[str] = ()) -> None:
        """A round: new labels; a later label of the same image replaces an earlier one."""
        for p in positives:
            if p in self.negatives:
                self.negatives.remove(p)
            if p not in self.positives:
                self.positives.append(p)
        for n in negatives:
            if n in self.positives:
                self.positives.remove(n)
            if n not in self.negatives:
                self.negatives.append(n)
        if positives or negatives:
            self.rounds.append({"positives": list(positives), "negatives": list(negatives),
                                "time": time.strftime("%Y-%m-%dT%H:%M:%S%z")})

    @staticmethod
    def path(ws: Any, spec: str, name: str) -> Path:
        from iconoscope.explore.vectors import explore_dir

        safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "session"
        d = explore_dir(ws, spec) / "feedback"
        d.mkdir(parents=True, exist_ok=True)
        return d / f"{safe}.json"

    @classmethod
    def load(cls, ws: Any, name: str, spec: str | None = None) -> FeedbackSession:
        from iconoscope.explore.vectors import resolve_spec

        spec = resolve_spec(ws, spec)
        p = cls.path(ws, spec, name)
        if not p.exists():
            return cls(name, spec)
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise ConfigError(f"{p}: corrupt feedback session ({e}); start again with --reset") from None
        return cls(d["name"], d["spec"], d.get("positives", []), d.get("negatives", []), d.get("rounds", []))

    def save(self, ws: Any) -> Path:
        p = self.path(ws, self.spec, self.name)
        tmp = p.with_name(p.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(asdict(self), indent=1), encoding="utf-8")
        os.replace(tmp, p)
        return p

    def reset(self, ws: Any) -> None:
        self.positives.clear()
        self.negatives.clear()
        self.rounds.clear()
        p = self.path(ws, self.spec, self.name)
        if p.exists():
            p.unlink()


def _positions(ids: Sequence[str], records: Sequence[str], wanted: Sequence[str], what: str) -> list[int]:
    """Rows for ids that are image ids or record ids (a record stands for all its images)."""
    by_image = {i: k for k, i in enumerate(ids)}
    by_record: dict[str, list[int]] = {}
    for k, r in enumerate(records):
        by_record.setdefault(r, []).append(k)
    out: list[int] = []
    for w in wanted:
        if w in by_image:
            out.append(by_image[w])
        elif w in by_record:
            out.extend(by_record[w])
        else:
            raise InputError(f"feedback --{what}", "no record or image with this id has an embedding", record=w)
    return out


@dataclass
class FeedbackResult:
    spec: str
    hits: list[SimilarHit]
    scores: np.ndarray = field(repr=False)
    ids: list[str] = field(repr=False)
    records: list[str] = field(repr=False)


def rank(ws: Any, positives: Sequence[str], negatives: Sequence[str] = (), spec: str | None = None,
         limit: int = 50, hide_labeled: bool = False, C: float = 1.0, seed: int = 0) -> FeedbackResult:
    """Rank every image by the SVM trained on the examples (ids are image or record ids)."""
    from iconoscope.explore.vectors import load_matrix

    if not positives:
        raise ConfigError("feedback: give at least one positive example (--positive ID)")
    spec, ids, records, X = load_matrix(ws, spec)
    pos = _positions(ids, records, positives, "positive")
    neg = _positions(ids, records, negatives, "negative")
    scores = feedback_scores(X, pos, neg, C=C, seed=seed)
    order = np.argsort(-scores, kind="stable")
    if hide_labeled:
        labeled = set(pos) | set(neg)
        order = np.array([o for o in order.tolist() if o not in labeled], dtype=np.int64)
    hits = [SimilarHit(records[o], ids[o], round(float(scores[o]), 6)) for o in order[:limit].tolist()]
    return FeedbackResult(spec, hits, scores, ids, records)


def feedback_rank(ws: Any, positives: Sequence[str], negatives: Sequence[str] = (), spec: str | None = None,
                  limit: int = 50) -> list[SimilarHit]:
    """The ``limit`` best images for the category the examples describe: ``(record, image, score)`` hits."""
    return rank(ws, positives, negatives, spec, limit).hits


def save_category(ws: Any, name: str, positives: Sequence[str], negatives: Sequence[str] = (),
                  spec: str | None = None, max_items: int = 1000, agent: str | None = None,
                  rounds: int | None = None) -> dict[str, Any]:
    """Keep the ranking as a category in the graph (replacing an earlier save of the same name).

    Writes the named graph ``B/graph/run/feedback-{name}``: a ``skos:Concept`` (prefLabel ``name``, in the scheme
    ``B/scheme/feedback``), a ``prov:Activity`` recording the backbone, the SVM settings, the curator
    (``prov:wasAssociatedWith``) and every example (``ico:positiveExample``/``ico:negativeExample``), and one
    ``oa:Annotation`` per image the SVM puts on the positive side (at most ``max_items``; the curator's positives
    always) with ``ico:score`` = the squashed margin.
    """
    from iconoscope.graph.terms import nt_float, nt_iri, nt_literal, triple
    from iconoscope.graph.vocab import DCTERMS, ICO, OA, PROV, RDF_TYPE, SKOS, XSD
    from iconoscope.workspace import slug

    if not name.strip():
        raise ConfigError("feedback --save-as: the category needs a name")
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    res = rank(ws, positives, negatives, spec, limit=0)
    pos_rows = set(_positions(res.ids, res.records, positives, "positive"))
    neg_rows = set(_positions(res.ids, res.records, negatives, "negative"))
    order = np.argsort(-res.scores, kind="stable")
    chosen = [o for o in order.tolist() if res.scores[o] > 0 and o not in neg_rows][:max_items]
    chosen += [o for o in sorted(pos_rows) if o not in set(chosen)]
    iris = ws.iris
    run_id = f"feedback-{slug(name).lower()}"
    run = nt_iri(iris.run(run_id))
    concept = nt_iri(iris.concept("feedback", name))
    scheme = nt_iri(iris.scheme("feedback"))
    a = nt_iri(RDF_TYPE)
    params = {"backbone": res.spec, "svm": "LinearSVC", "C": 1.0, "background": BACKGROUND,
              "background_weight": BACKGROUND_WEIGHT, "positives": list(positives), "negatives": list(negatives),
              "rounds": rounds, "max_items": max_items}
    lines = [
        triple(scheme, a, nt_iri(SKOS + "ConceptScheme")),
        triple(scheme, nt_iri(SKOS + "prefLabel"), nt_literal("Feedback categories", lang="en")),
        triple(concept, a, nt_iri(SKOS + "Concept")),
        triple(concept, nt_iri(SKOS + "prefLabel"), nt_literal(name)),
        triple(concept, nt_iri(SKOS + "inScheme"), scheme),
        triple(concept, nt_iri(PROV + "wasGeneratedBy"), run),
        triple(run, a, nt_iri(PROV + "Activity")),
        triple(run, nt_iri(ICO + "classifier"), nt_literal(f"feedback:{name}")),
        triple(run, nt_iri(PROV + "used"), nt_iri(iris.model(f"feedback-{slug(name).lower()}"))),
        triple(run, nt_iri(ICO + "modelVersion"), nt_literal(str(rounds or 1))),
        triple(run, nt_iri(ICO + "parameters"), nt_literal(json.dumps(params, ensure_ascii=False))),
        triple(run, nt_iri(PROV + "startedAtTime"), nt_literal(started, datatype=XSD + "dateTime")),
    ]
    if agent:
        lines.append(triple(run, nt_iri(PROV + "wasAssociatedWith"), nt_iri(iris.agent(agent))))
    for o in sorted(pos_rows):
        lines.append(triple(run, nt_iri(ICO + "positiveExample"), nt_iri(iris.image(res.ids[o]))))
    for o in sorted(neg_rows):
        lines.append(triple(run, nt_iri(ICO + "negativeExample"), nt_iri(iris.image(res.ids[o]))))
    for o in chosen:
        ann = nt_iri(iris.annotation(run_id, res.ids[o]))
        p = 1.0 / (1.0 + np.exp(-2.0 * float(res.scores[o])))
        lines += [triple(ann, a, nt_iri(OA + "Annotation")),
                  triple(ann, nt_iri(OA + "motivatedBy"), nt_iri(OA + "classifying")),
                  triple(ann, nt_iri(OA + "hasTarget"), nt_iri(iris.image(res.ids[o]))),
                  triple(ann, nt_iri(OA + "hasBody"), concept),
                  triple(ann, nt_iri(ICO + "score"), nt_float(p)),
                  triple(ann, nt_iri(PROV + "wasGeneratedBy"), run)]
    ended = time.strftime("%Y-%m-%dT%H:%M:%S")
    lines.append(triple(run, nt_iri(PROV + "endedAtTime"), nt_literal(ended, datatype=XSD + "dateTime")))
    lines.append(triple(concept, nt_iri(DCTERMS + "created"), nt_literal(ended, datatype=XSD + "dateTime")))
    graph = iris.run_graph(run_id)
    count = ws.store.replace_graph(graph, lines, format="nt")
    return {"graph": graph, "concept": iris.concept("feedback", name), "run": iris.run(run_id),
            "annotations": len(chosen), "triples": count}
