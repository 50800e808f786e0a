"""Record fields from the graph: the rows a multimodal model learns from and fills in.

One SPARQL file lists the records (``mm_records.rq``), one reads all values of one field (``mm_field_values.rq``);
each field is read once per run and kept as a list of values per record, because a field may hold several values
(two creators, several materials) and language-tagged titles.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from iconoscope.graph import queries
from iconoscope.graph.terms import nt_literal
from iconoscope.graph.vocab import DCTERMS, ICO
from iconoscope.learn.multimodal.dates import parse_year
from iconoscope.learn.multimodal.specs import FieldRef

PREDICATES = {
    "creator": DCTERMS + "creator", "medium": DCTERMS + "medium", "title": DCTERMS + "title",
    "date": DCTERMS + "created", "year": ICO + "year", "subject": DCTERMS + "subject",
    "subject-text": ICO + "subjectText",
}


def predicate_of(ws: Any, f: FieldRef) -> str:
    """The graph predicate of a field: Dublin Core for core fields, ``<base/field/NAME>`` for extra columns."""
    return ws.iris.field(f.name) if f.extra else PREDICATES[f.name]


def sources_values(sources: Iterable[str]) -> queries.Raw:
    names = list(sources)
    return queries.Raw(" ".join(nt_literal(s) for s in names) if names else "UNDEF")


@dataclass
class RecordTable:
    """Records in a fixed order with their image ids; field values are read on demand and cached."""

    ws: Any
    sources: tuple[str, ...]
    iris: list[str]
    ids: list[str]
    images: list[list[str]]
    _values: dict[str, list[list[tuple[str, str]]]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.iris)

    @property
    def index(self) -> dict[str, int]:
        return {iri: i for i, iri in enumerate(self.iris)}

    def raw_values(self, f: FieldRef) -> list[list[tuple[str, str]]]:
        """Per record, the (value, language) pairs of a field, in a stable order."""
        key = f.key
        if key not in self._values:
            q = queries.load("mm_field_values", predicate=queries.IRI(predicate_of(self.ws, f)),
                             sources=sources_values(self.sources))
            pos = self.index
            out: list[list[tuple[str, str]]] = [[] for _ in self.iris]
            for rec, val, lang in self.ws.store.select(q).rows:
                i = pos.get(rec.value) if rec is not None else None
                if i is not None and val is not None:
                    out[i].append((val.value, lang.value if lang is not None else ""))
            for vals in out:
                vals.sort()
            self._values[key] = out
        return self._values[key]

    def values(self, f: FieldRef, separator: str | None = None) -> list[list[str]]:
        """Per record, the distinct values of a field (split at ``separator`` when given), in first-seen order."""
        out = []
        for vals in self.raw_values(f):
            seen: dict[str, None] = {}
            for v, _ in vals:
                parts = v.split(separator) if separator else [v]
                for p in parts:
                    p = p.strip()
                    if p:
                        seen.setdefault(p, None)
            out.append(list(seen))
        return out

    def text(self, f: FieldRef, languages: tuple[str, ...] = ()) -> list[str]:
        """Per record, one string: the value in the first preferred language there is, else all values joined."""
        out = []
        for vals in self.raw_values(f):
            chosen = ""
            for lang in languages:
                hits = [v for v, lg in vals if lg.lower().split("-")[0] == lang.lower()]
                if hits:
                    chosen = " ; ".join(hits)
                    break
            if not chosen:
                chosen = " ; ".join(dict.fromkeys(v for v, _ in vals))
            out.append(chosen)
        return out

    def years(self) -> list[int | None]:
        """Per record, its year: ``ico:year`` when ingest parsed one, else read from ``dcterms:created``."""
        years: list[int | None] = []
        parsed = self.raw_values(FieldRef("year"))
        created = self.raw_values(FieldRef("date"))
        for ys, ds in zip(parsed, created, strict=True):
            y: int | None = None
            for v, _ in ys:
                try:
                    y = int(float(v))
                    break
                except ValueError:
                    continue
            if y is None:
                for v, _ in ds:
                    y = parse_year(v)
                    if y is not None:
                        break
            years.append(y)
        return years

    def has_value(self, f: FieldRef) -> list[bool]:
        """Whether a curator (the source) gave the field a value: such a record is never 'filled'."""
        if not f.extra and f.name in ("date", "year"):
            return [bool(a) or bool(b) for a, b in zip(self.raw_values(FieldRef("date")),
                                                       self.raw_values(FieldRef("year")), strict=True)]
        return [bool(v) for v in self.raw_values(f)]


def load_records(ws: Any, sources: Iterable[str] = ()) -> RecordTable:
    """All records (of the given sources, or of every source) in IRI order, with their image ids."""
    srcs = tuple(sources)
    res = ws.store.select(queries.load("mm_records", sources=sources_values(srcs)))
    ids: dict[str, str] = {}
    images: dict[str, list[str]] = {}
    for rec, ident, img in res.rows:
        if rec is None:
            continue
        r = rec.value
        if r not in ids:
            ids[r] = ident.value if ident is not None else _id_from_iri(ws, r, "record")
            images[r] = []
        if img is not None:
            iid = _id_from_iri(ws, img.value, "image")
            if iid not in images[r]:
                images[r].append(iid)
    order = sorted(ids)
    return RecordTable(ws, srcs, order, [ids[r] for r in order], [sorted(images[r]) for r in order])


def _id_from_iri(ws: Any, iri: str, kind: str) -> str:
    try:
        return ws.iris.id_of(iri, kind)
    except ValueError:
        return iri
