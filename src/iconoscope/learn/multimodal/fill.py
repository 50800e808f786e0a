"""``iconoscope fill NAME``: records missing a field, with the model's ranked suggestions.

Reads the newest run of the classifier that wrote field values, and keeps only records that *still* lack the field
(a curator may have filled it since the run) and suggestions nobody rejected. Nothing is written: accepting a
suggestion is a curator's act (the web app's review queue).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import ICO
from iconoscope.learn.multimodal.data import load_project
from iconoscope.learn.multimodal.records import predicate_of


@dataclass(frozen=True)
class FillRow:
    record: str
    field: str
    rank: int
    value: str
    label: str | None
    score: float


def _record_id(ws: Any, iri: str) -> str:
    try:
        return ws.iris.id_of(iri, "record")
    except ValueError:
        return iri


def latest_field_run(ws: Any, name: str) -> str | None:
    res = ws.store.select(queries.load("mm_latest_run", classifier=name))
    return res.rows[0][0].value if res.rows and res.rows[0][0] is not None else None


def fill_rows(ws: Any, name: str, min_score: float = 0.0, fields: tuple[str, ...] = (), k: int | None = None,
              limit: int | None = None) -> list[FillRow]:
    """Ranked suggestions per (record, field) from the latest run of ``name``."""
    project = load_project(ws, name)
    known = {t.name: t for t in project.targets}
    for f in fields:
        if f not in known:
            raise ConfigError(f"fill {name}: --field {f!r} is not a target of this classifier "
                              f"(targets: {', '.join(known)})")
    run = latest_field_run(ws, name)
    if run is None:
        raise IconoscopeError(f"no field predictions for '{name}' in the graph; run 'iconoscope predict {name}' "
                              "first")
    rows = []
    for t in project.targets:
        if fields and t.name not in fields:
            continue
        p1 = predicate_of(ws, t.field)
        p2 = ICO + "year" if (not t.field.extra and t.field.name in ("date", "year")) else p1
        rows.append(f"({nt_literal(t.name)} {nt_iri(p1)} {nt_iri(p2)})")
    res = ws.store.select(queries.load("mm_fill", fields=queries.Raw(" ".join(rows)), run=queries.IRI(run),
                                       min_score=float(min_score)))
    out: list[FillRow] = []
    rank: dict[tuple[str, str], int] = {}
    seen: set[tuple[str, str, str]] = set()
    for d in res.dicts():
        rec = str(d["id"]) if d["id"] is not None else _record_id(ws, str(d["record"]))
        key = (rec, str(d["field"]))
        if (rec, str(d["field"]), str(d["value"])) in seen:
            continue  # one value with several labels
        seen.add((rec, str(d["field"]), str(d["value"])))
        rank[key] = rank.get(key, 0) + 1
        if k is not None and rank[key] > k:
            continue
        out.append(FillRow(rec, key[1], rank[key], str(d["value"]),
                           str(d["label"]) if d["label"] is not None else None, float(d["score"])))  # type: ignore
        if limit is not None and len(out) >= limit:
            break
    return out
