"""Finding prediction runs in the graph: the run of a classifier is the newest ``prov:Activity`` with its name.

A run is written completely before older runs of the same classifier are dropped (see ``write``), so during that
short window two runs can coexist; every reader takes the newest one, never the union.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw


@dataclass(frozen=True)
class RunInfo:
    """One prediction run as the graph describes it."""

    run_id: str
    iri: str
    graph: str
    classifier: str
    model_version: str | None
    started: str | None
    ended: str
    params: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


def run_id_of(ws: Any, run_iri: str) -> str:
    prefix = ws.iris.base + "run/"
    return unquote(run_iri[len(prefix):]) if run_iri.startswith(prefix) else run_iri


def local_id(ws: Any, iri: str, kind: str) -> str:
    """The identifier of a record/image IRI of this collection (the IRI itself when it is not one)."""
    try:
        return ws.iris.id_of(iri, kind)
    except ValueError:
        return iri


def list_runs(ws: Any, classifier: str | None = None) -> list[RunInfo]:
    """Concept-prediction runs, newest first (of one classifier, or of all)."""
    value = Raw("UNDEF") if classifier is None else queries.to_sparql(classifier)
    res = ws.store.select(queries.load("enrich_runs", classifier=Raw(value)))
    out: list[RunInfo] = []
    seen: set[str] = set()
    for row in res.dicts():
        iri = str(row["run"])
        if iri in seen:
            continue
        seen.add(iri)
        try:
            params = json.loads(str(row["params"])) if row.get("params") else {}
        except json.JSONDecodeError:
            params = {}
        out.append(RunInfo(run_id=run_id_of(ws, iri), iri=iri, graph=str(row["g"]), classifier=str(row["classifier"]),
                           model_version=None if row.get("version") is None else str(row["version"]),
                           started=None if row.get("started") is None else str(row["started"]),
                           ended=str(row["ended"]), params=params))
    return out


def latest_run(ws: Any, classifier: str) -> RunInfo | None:
    runs = list_runs(ws, classifier)
    return runs[0] if runs else None


def latest_runs(ws: Any) -> dict[str, RunInfo]:
    """The newest run of every classifier that has one."""
    out: dict[str, RunInfo] = {}
    for run in list_runs(ws):
        out.setdefault(run.classifier, run)
    return out


def run_categories(ws: Any, run: RunInfo) -> list[str]:
    res = ws.store.select(queries.load("enrich_run_categories", graph=IRI(run.graph), run=IRI(run.iri)))
    return [str(c) for c in res.column("category")]
