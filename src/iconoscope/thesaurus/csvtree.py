"""CSV trees (``id,label,parent[,lang]``) -> SKOS N-Triples.

The simplest thesaurus a collection keeps in a spreadsheet. Rules:

* a header row naming the columns is optional (without one the order is id,label,parent,lang); extra columns are
  ignored; ``;`` or tab delimiters are detected;
* the first label of an id in a language is its prefLabel, further rows give altLabels; ``lang`` defaults to the
  vocabulary's first language;
* ``parent`` may be empty (a top concept) or repeated over rows (several parents);
* an id that is an absolute IRI is kept as the concept IRI, any other id becomes ``B/concept/{vocab}/{id}`` with
  the id as skos:notation;
* a parent that is never defined as an id, an empty id or label, and cycles are reported with their line (and
  raised under ``--strict``); the offending link is dropped, the concept is kept.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Callable, Iterator
from pathlib import Path

from iconoscope.errors import InputError
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import RDF_TYPE, SKOS
from iconoscope.thesaurus.report import VocabReport

COLUMNS = ("id", "label", "parent", "lang")


def _is_iri(text: str) -> bool:
    return text.startswith(("http://", "https://", "urn:"))


def csv_triples(path: Path, scheme: str, concept_iri: Callable[[str], str], default_lang: str,
                report: VocabReport, scheme_label: str | None = None) -> Iterator[str]:
    """Read the whole tree (it must be checked before anything is written), then yield N-Triples lines."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror}") from None
    except UnicodeDecodeError as e:
        raise InputError(str(path), f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    first = text.split("\n", 1)[0]
    delimiter = max((",", ";", "\t"), key=first.count)
    rows = list(csv.reader(text.splitlines(), delimiter=delimiter))
    if not rows:
        raise InputError(str(path), "empty file")
    header = [h.strip().lower() for h in rows[0]]
    if "id" in header and "label" in header:
        cols = {c: header.index(c) for c in COLUMNS if c in header}
        body = list(enumerate(rows[1:], 2))
    else:
        cols = {c: i for i, c in enumerate(COLUMNS)}
        body = list(enumerate(rows, 1))

    labels: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    parents: dict[str, list[tuple[str, int]]] = defaultdict(list)
    order: list[str] = []

    def cell(row: list[str], name: str) -> str:
        i = cols.get(name)
        return row[i].strip() if i is not None and i < len(row) else ""

    for lineno, row in body:
        if not any(c.strip() for c in row):
            continue
        cid, label, parent = cell(row, "id"), cell(row, "label"), cell(row, "parent")
        lang = cell(row, "lang") or default_lang
        if not cid:
            report.issue(path, f"empty id in row {row!r} (row skipped)", line=lineno)
            continue
        if cid not in labels:
            order.append(cid)
        if label:
            if label not in labels[cid][lang]:
                labels[cid][lang].append(label)
        elif not labels[cid]:
            labels[cid].setdefault(lang, [])
        if parent:
            if parent == cid:
                report.issue(path, f"concept {cid!r} is its own parent (link dropped)", line=lineno)
            elif parent not in [p for p, _ in parents[cid]]:
                parents[cid].append((parent, lineno))

    known = set(order)
    for cid in order:
        kept = []
        for parent, lineno in parents.get(cid, []):
            if parent not in known:
                report.issue(path, f"parent {parent!r} of {cid!r} is not defined as an id (link dropped)",
                             line=lineno)
            else:
                kept.append((parent, lineno))
        parents[cid] = kept
    _break_cycles(parents, path, report)
    for cid in order:
        if not any(labels[cid].values()):
            report.issue(path, f"concept {cid!r} has no label")

    iri = {c: nt_iri(c if _is_iri(c) else concept_iri(c)) for c in order}
    s_scheme = nt_iri(scheme)
    yield f"{s_scheme} <{RDF_TYPE}> <{SKOS}ConceptScheme> .\n"
    if scheme_label:
        yield f"{s_scheme} <{SKOS}prefLabel> {nt_literal(scheme_label)} .\n"
    for cid in order:
        s = iri[cid]
        yield f"{s} <{RDF_TYPE}> <{SKOS}Concept> .\n{s} <{SKOS}inScheme> {s_scheme} .\n"
        if not _is_iri(cid):
            yield f"{s} <{SKOS}notation> {nt_literal(cid)} .\n"
        for lang, names in labels[cid].items():
            for k, name in enumerate(names):
                kind = "prefLabel" if k == 0 else "altLabel"
                yield f"{s} <{SKOS}{kind}> {nt_literal(name, lang=lang or None)} .\n"
                if k == 0:
                    report.pref_labels[lang] = report.pref_labels.get(lang, 0) + 1
                else:
                    report.alt_labels += 1
        if not parents[cid]:
            report.top_concepts += 1
            yield f"{s} <{SKOS}topConceptOf> {s_scheme} .\n{s_scheme} <{SKOS}hasTopConcept> {s} .\n"
        for parent, _ in parents[cid]:
            report.broader += 1
            yield f"{s} <{SKOS}broader> {iri[parent]} .\n{iri[parent]} <{SKOS}narrower> {s} .\n"
    report.concepts = len(order)


def _break_cycles(parents: dict[str, list[tuple[str, int]]], path: Path, report: VocabReport) -> None:
    """Depth-first search over parent links; the link that closes a cycle is reported and dropped."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(start: str) -> None:
        stack: list[tuple[str, int]] = [(start, 0)]
        state[start] = 1
        while stack:
            node, i = stack[-1]
            links = parents.get(node, [])
            if i >= len(links):
                state[node] = 2
                stack.pop()
                continue
            stack[-1] = (node, i + 1)
            parent, lineno = links[i]
            if state.get(parent) == 1:
                report.issue(path, f"cycle: {node!r} -> {parent!r} closes a loop of parents (link dropped)",
                             line=lineno)
                links.pop(i)
                stack[-1] = (node, i)
            elif parent not in state:
                state[parent] = 1
                stack.append((parent, 0))

    for cid in list(parents):
        if cid not in state:
            visit(cid)
