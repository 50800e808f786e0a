"""The predictions of one record (for the web app's record page and ``iconoscope sparql``-free scripts)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from iconoscope.enrich.concepts import concept_labels
from iconoscope.enrich.runs import latest_runs, local_id
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, values_iris


@dataclass(frozen=True)
class Prediction:
    image: str
    concept: str
    label: str
    score: float
    annotated: bool          # the record carries this concept (or one below it) as a curated subject
    review: str | None       # a curator's decision on this image and concept: 'accepted' / 'rejected'
    annotation: str
    classifier: str
    run: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def record_predictions(ws: Any, record_id: str, lang: str | None = None) -> list[Prediction]:
    """Every score of the current runs for the images of record ``record_id``, best first."""
    runs = {r.iri: r for r in latest_runs(ws).values()}
    if not runs:
        return []
    res = ws.store.select(queries.load("enrich_record_predictions", record=IRI(ws.iris.record(record_id)),
                                       runs=values_iris(runs), review=IRI(ws.iris.review_graph())))
    rows = res.dicts()
    labels = concept_labels(ws, [str(r["concept"]) for r in rows], lang)
    out = [Prediction(image=local_id(ws, str(r["image"]), "image"), concept=str(r["concept"]),
                      label=labels[str(r["concept"])], score=float(r["score"]), annotated=bool(r["annotated"]),
                      review=None if r.get("status") is None else str(r["status"]), annotation=str(r["a"]),
                      classifier=runs[str(r["run"])].classifier, run=runs[str(r["run"])].run_id) for r in rows]
    return sorted(out, key=lambda p: (-p.score, p.image, p.concept))
