"""Explicit mapping tables (``text,concept``): a curator's decision beats label matching.

The first column holds the subject text as the source writes it (any header name: ``text``,
``scientific_name``...), the ``concept`` column (else the second) a concept IRI or a skos:notation of one of the
source's vocabularies (``25G21(APPLE)``). A text may map to several concepts over several rows. A concept that no
vocabulary of the source knows is reported with the file, line and reason, and that row is dropped (``--strict``:
the ingest stops before writing anything).
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iconoscope.errors import InputError
from iconoscope.graph import queries
from iconoscope.graph.queries import values_iris
from iconoscope.graph.terms import nt_iri
from iconoscope.ingest.report import IngestReport


@dataclass
class KnownConcepts:
    """The concepts of some vocabularies: their IRIs and notation -> IRIs."""

    iris: set[str] = field(default_factory=set)
    notations: dict[str, set[str]] = field(default_factory=dict)
    checked: bool = True  # False when the source has no vocabulary to check against

    def resolve(self, text: str) -> tuple[list[str], str | None]:
        """(concept IRIs, problem) for an IRI or notation."""
        text = text.strip()
        if text in self.iris:
            return [text], None
        if text in self.notations:
            return sorted(self.notations[text]), None
        if text.startswith(("http://", "https://", "urn:")):
            if not self.checked:
                return [text], None
            return [], f"unknown concept {text!r} (in none of the source's vocabularies)"
        return [], f"unknown concept {text!r} (neither an IRI nor a notation of the source's vocabularies)"


def known_concepts(ws: Any, vocabularies: Sequence[str]) -> KnownConcepts:
    if not vocabularies:
        return KnownConcepts(checked=False)
    graphs = [ws.iris.vocab_graph(v) for v in vocabularies]
    out = KnownConcepts()
    for c, n in ws.store.select(queries.load("ingest_known_concepts", graphs=values_iris(graphs))).rows:
        if c is None:
            continue
        out.iris.add(c.value)
        if n is not None:
            out.notations.setdefault(n.value, set()).add(c.value)
    return out


def load_mapping(path: Path, known: KnownConcepts, report: IngestReport) -> dict[str, list[str]]:
    """text -> concept IRIs, in file order; problems go to the report with the mapping file's line."""
    path = Path(path)
    src = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(src, f"cannot read the mapping table: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(src, f"mapping table is not UTF-8 ({e.reason} at byte {e.start})") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        raise InputError(src, "empty mapping table")
    header = [h.strip().lower() for h in rows[0]]
    if "concept" not in header:
        raise InputError(src, f"mapping table needs a header with a 'concept' column (got {rows[0]!r})", line=1)
    ci = header.index("concept")
    ti = 0 if ci != 0 else 1
    out: dict[str, list[str]] = {}
    for lineno, row in enumerate(rows[1:], 2):
        if not any(c.strip() for c in row):
            continue
        if len(row) <= max(ci, ti):
            report.issue(f"mapping row {row!r} has {len(row)} column(s) (row dropped)", line=lineno,
                         kind="malformed mapping row", source=src)
            continue
        t, c = row[ti].strip(), row[ci].strip()
        if not t or not c:
            report.issue(f"mapping row {row!r} has an empty text or concept (row dropped)", line=lineno,
                         kind="malformed mapping row", source=src)
            continue
        concepts, problem = known.resolve(c)
        if problem:
            report.issue(f"{problem} for {t!r} (row dropped)", line=lineno, kind="unknown concept in mapping",
                         source=src)
            continue
        try:
            for iri in concepts:
                nt_iri(iri)
        except ValueError:
            report.issue(f"concept {c!r} is not a valid IRI (row dropped)", line=lineno,
                         kind="unknown concept in mapping", source=src)
            continue
        bucket = out.setdefault(t, [])
        bucket.extend(x for x in concepts if x not in bucket)
    return out
