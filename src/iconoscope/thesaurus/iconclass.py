"""The Iconclass text distribution (github.com/iconclass/data) -> SKOS N-Triples.

Iconclass is not shipped as RDF, so we read its own files:

* ``notations.txt``: records separated by ``$`` lines; ``N`` notation, ``C`` children (-> skos:narrower and the
  inverse skos:broader; a notation may have several parents), ``R`` cross-references (-> skos:related), ``K`` the
  key set (not expanded: keyed notations multiply the tree beyond a million nodes). A multi-valued field continues
  on lines starting with ``; ``.
* ``txt/<lang>/txt_<lang>_*.txt``: ``notation|label`` -> skos:prefLabel@lang (key and Shakespeare files excluded).
* ``kw/<lang>/kw_<lang>_*.txt``: ``notation|keyword`` -> skos:altLabel@lang (what free-text subjects match).

Concepts keep their public IRIs ``http://iconclass.org/{notation}``. The whole base system (40,703 notations,
EN+FR) is about half a million triples; they are produced as N-Triples lines and streamed to the store's bulk
loader, so a load takes seconds.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from iconoscope.errors import InputError
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import RDF_TYPE, SKOS, iconclass_iri
from iconoscope.thesaurus.matching import normalize
from iconoscope.thesaurus.report import VocabReport

_TYPE, _CONCEPT, _SCHEME = nt_iri(RDF_TYPE), nt_iri(SKOS + "Concept"), nt_iri(SKOS + "ConceptScheme")
_IN, _TOP, _HASTOP = nt_iri(SKOS + "inScheme"), nt_iri(SKOS + "topConceptOf"), nt_iri(SKOS + "hasTopConcept")
_NOTATION, _PREF, _ALT = nt_iri(SKOS + "notation"), nt_iri(SKOS + "prefLabel"), nt_iri(SKOS + "altLabel")
_BROADER, _NARROWER, _RELATED = nt_iri(SKOS + "broader"), nt_iri(SKOS + "narrower"), nt_iri(SKOS + "related")
FIELDS = {"N", "C", "R", "K"}


@dataclass
class Notations:
    """The hierarchy of notations.txt: notations in file order, children and cross-references."""

    order: list[str] = field(default_factory=list)
    children: dict[str, list[str]] = field(default_factory=dict)
    related: dict[str, list[str]] = field(default_factory=dict)


def is_iconclass_folder(path: Path) -> bool:
    return Path(path).is_dir() and (Path(path) / "notations.txt").is_file()


def read_notations(path: Path, report: VocabReport) -> Notations:
    """Parse notations.txt. A continuation line without a field, or a record without ``N``, is malformed."""
    out = Notations()
    seen: set[str] = set()
    notation: str | None = None
    fld: str | None = None
    rec_start = 1
    values: dict[str, list[str]] = defaultdict(list)

    def close(lineno: int) -> None:
        nonlocal notation
        if notation is None:
            if values:
                report.issue(path, f"record starting at line {rec_start} has no 'N' (notation) field", line=lineno)
        elif notation in seen:
            report.issue(path, f"notation {notation!r} is defined twice (kept the first)", line=rec_start)
        else:
            seen.add(notation)
            out.order.append(notation)
            if values.get("C"):
                out.children[notation] = values["C"]
            if values.get("R"):
                out.related[notation] = values["R"]
        notation = None
        values.clear()

    try:
        f = open(path, encoding="utf-8")  # noqa: SIM115 - closed below; we need line numbers for errors
    except OSError as e:
        raise InputError(str(path), f"cannot read: {e.strerror}") from None
    lineno = 0
    with f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            if line.strip() == "$":
                close(lineno)
                fld, rec_start = None, lineno + 1
                continue
            if line.startswith("; "):
                if fld is None:
                    report.issue(path, f"continuation line {line!r} outside any field", line=lineno)
                    continue
                value = line[2:].strip()
            elif len(line) >= 2 and line[1] == " " and line[0].isalpha():
                fld, value = line[0], line[2:].strip()
            else:
                report.issue(path, f"cannot read line {line!r} (expected 'X value', '; value' or '$')", line=lineno)
                continue
            if fld not in FIELDS:
                report.issue(path, f"unknown field {fld!r} (value {value!r}) ignored", line=lineno)
                fld = None
                continue
            if fld == "N":
                if notation is not None:
                    report.issue(path, f"second 'N' in one record ({notation!r}, {value!r}): missing '$'?",
                                 line=lineno)
                    close(lineno)
                notation = value
            elif value:
                values[fld].append(value)
        close(lineno + 1)
    if not out.order:
        raise InputError(str(path), "no notation found (is this an Iconclass notations.txt?)")
    return out


def read_pairs(path: Path, report: VocabReport) -> Iterator[tuple[int, str, str]]:
    """``notation|text`` lines -> (line number, notation, text); other lines are reported and skipped."""
    with open(path, encoding="utf-8") as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip("\r\n")
            if not line.strip():
                continue
            notation, sep, text = line.partition("|")
            if not sep or not notation.strip() or not text.strip():
                report.issue(path, f"expected 'notation|text', got {line!r}", line=lineno)
                continue
            yield lineno, notation.strip(), text.strip()


def _lang_files(folder: Path, kind: str, lang: str) -> list[Path]:
    d = folder / kind / lang
    if not d.is_dir():
        return []
    skip = ("_keys.txt", "_refs.txt", "_shakespeare.txt")
    return sorted(p for p in d.glob(f"{kind}_{lang}_*.txt") if not p.name.endswith(skip))


def iconclass_triples(folder: Path, scheme: str, languages: Sequence[str], report: VocabReport,
                      scheme_label: str = "Iconclass") -> Iterator[str]:
    """N-Triples lines for the whole base system in ``folder``, in the languages that have txt/ files."""
    folder = Path(folder)
    nots = read_notations(folder / "notations.txt", report)
    known = set(nots.order)
    s_scheme = nt_iri(scheme)
    yield f"{s_scheme} {_TYPE} {_SCHEME} .\n"
    yield f"{s_scheme} {_PREF} {nt_literal(scheme_label, lang='en')} .\n"

    parents: dict[str, list[str]] = defaultdict(list)
    for parent, kids in nots.children.items():
        for kid in kids:
            parents[kid].append(parent)
    iri = {n: nt_iri(iconclass_iri(n)) for n in nots.order}

    for n in nots.order:
        s = iri[n]
        yield f"{s} {_TYPE} {_CONCEPT} .\n{s} {_IN} {s_scheme} .\n{s} {_NOTATION} {nt_literal(n)} .\n"
        if not parents.get(n):
            report.top_concepts += 1
            yield f"{s} {_TOP} {s_scheme} .\n{s_scheme} {_HASTOP} {s} .\n"
    report.concepts = len(nots.order)

    for parent, kids in nots.children.items():
        for kid in kids:
            if kid not in known:
                report.issue(folder / "notations.txt", f"child {kid!r} of {parent!r} has no record (link kept)")
                iri[kid] = nt_iri(iconclass_iri(kid))
            yield f"{iri[kid]} {_BROADER} {iri[parent]} .\n{iri[parent]} {_NARROWER} {iri[kid]} .\n"
            report.broader += 1
    for a, refs in nots.related.items():
        for b in refs:
            if b not in known:
                report.issue(folder / "notations.txt", f"cross-reference {a!r} -> {b!r}: no such notation (dropped)")
                continue
            yield f"{iri[a]} {_RELATED} {iri[b]} .\n{iri[b]} {_RELATED} {iri[a]} .\n"
            report.related += 1

    for lang in languages:
        txt_files = _lang_files(folder, "txt", lang)
        if not txt_files:
            report.issue(folder / "txt" / lang, f"no label files for language '{lang}' (skipped)")
            continue
        pref: dict[str, str] = {}
        for path in txt_files:
            for lineno, n, text in read_pairs(path, report):
                if n not in known:
                    continue  # labels of keyed or extra notations outside the base system
                if n in pref:
                    report.issue(path, f"second label for {n!r} ignored", line=lineno)
                    continue
                pref[n] = text
                yield f"{iri[n]} {_PREF} {nt_literal(text, lang=lang)} .\n"
        report.pref_labels[lang] = len(pref)
        pref_keys = {n: normalize(t) for n, t in pref.items()}
        seen: set[tuple[str, str]] = set()
        for path in _lang_files(folder, "kw", lang):
            for _lineno, n, kw in read_pairs(path, report):
                key = normalize(kw)
                if n not in known or (n, key) in seen or pref_keys.get(n) == key:
                    continue
                seen.add((n, key))
                report.alt_labels += 1
                yield f"{iri[n]} {_ALT} {nt_literal(kw, lang=lang)} .\n"
