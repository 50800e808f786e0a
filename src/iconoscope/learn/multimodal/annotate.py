"""Predicted field values -> Web Annotations in one run graph (graph-model.md, "Predictions").

A predicted value is a suggestion: an ``oa:Annotation`` whose body is the value (a literal, or an IRI for
concept-valued fields), with ``ico:field``, ``ico:score`` and ``prov:wasGeneratedBy`` its run. Nothing is written
into the source graphs, so a curator's value is never replaced; and the annotation targets the *record* (the field
belongs to the record, and a metadata-only record has no image).

The run id is derived from the classifier and the model version, so predicting twice with the same model replaces
that run's graph atomically (``Store.replace_graph``) instead of adding a duplicate run.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from iconoscope.graph.terms import nt_float, nt_iri, nt_literal, triple
from iconoscope.graph.vocab import ICO, OA, PROV, RDF_TYPE, XSD
from iconoscope.workspace import slug

_IRI_VALUE = re.compile(r"^(?:https?://|urn:)\S+$")


@dataclass(frozen=True)
class FieldSuggestion:
    record_iri: str
    field: str  # the task name, e.g. 'creator', 'date', 'field:genre'
    value: str
    score: float
    rank: int
    iri_body: bool = False


def is_iri_value(value: str) -> bool:
    return bool(_IRI_VALUE.match(value))


def run_id_for(name: str, version: int) -> str:
    return f"{slug(name)}-multimodal-v{version}"


def _dt(t: datetime) -> str:
    return nt_literal(t.isoformat(timespec="seconds"), datatype=XSD + "dateTime")


def run_triples(ws: Any, name: str, version: int, run_id: str, params: dict[str, Any], started: datetime,
                ended: datetime, suggestions: Iterable[FieldSuggestion]) -> Iterator[str]:
    run = nt_iri(ws.iris.run(run_id))
    yield triple(run, nt_iri(RDF_TYPE), nt_iri(PROV + "Activity"))
    yield triple(run, nt_iri(ICO + "classifier"), nt_literal(name))
    yield triple(run, nt_iri(PROV + "used"), nt_iri(ws.iris.model(name)))
    yield triple(run, nt_iri(ICO + "modelVersion"), nt_literal(str(version)))
    yield triple(run, nt_iri(ICO + "parameters"), nt_literal(json.dumps(params, sort_keys=True, default=str)))
    yield triple(run, nt_iri(PROV + "startedAtTime"), _dt(started))
    yield triple(run, nt_iri(PROV + "endedAtTime"), _dt(ended))
    for s in suggestions:
        key = hashlib.sha1(f"{s.record_iri}\x00{s.field}\x00{s.value}".encode()).hexdigest()[:20]
        a = nt_iri(ws.iris.annotation(run_id, key))
        body = nt_iri(s.value) if s.iri_body else nt_literal(s.value)
        yield triple(a, nt_iri(RDF_TYPE), nt_iri(OA + "Annotation"))
        yield triple(a, nt_iri(OA + "motivatedBy"), nt_iri(OA + "classifying"))
        yield triple(a, nt_iri(OA + "hasTarget"), nt_iri(s.record_iri))
        yield triple(a, nt_iri(OA + "hasBody"), body)
        yield triple(a, nt_iri(ICO + "field"), nt_literal(s.field))
        yield triple(a, nt_iri(ICO + "score"), nt_float(s.score))
        yield triple(a, nt_iri(PROV + "wasGeneratedBy"), run)


def write_field_run(ws: Any, name: str, version: int, suggestions: list[FieldSuggestion],
                    params: dict[str, Any], started: datetime | None = None) -> str:
    """Replace the run graph of (classifier, version) with these suggestions; returns the run id."""
    run_id = run_id_for(name, version)
    started = started or datetime.now(UTC)
    ended = datetime.now(UTC)
    ws.store.replace_graph(ws.iris.run_graph(run_id),
                           run_triples(ws, name, version, run_id, params, started, ended, suggestions))
    return run_id
