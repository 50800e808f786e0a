"""One record -> the N-Triples of the graph model (docs/graph-model.md), with its subjects matched and its images
located.

Every reader (tabular, IIIF, RDF) yields :class:`Record` values and this one writer turns them into triples, so a
record looks the same in the graph whatever its source. Problems (a duplicate id, an image that is not there, a
malformed subject string) go to the report with the source, line and record; the record itself is kept with
what could be read, so nothing already valid is lost.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from iconoscope.graph.terms import XSD, nt_iri, nt_literal
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, IRIs
from iconoscope.ingest.dates import parse_year
from iconoscope.ingest.garnier import Mention, parse_mentions
from iconoscope.ingest.report import IngestReport
from iconoscope.thesaurus.matching import LabelIndex

CHECK_IMAGES = ("exists", "decode", "none")

_A, _RECORD, _IMAGE = nt_iri(RDF_TYPE), nt_iri(ICO + "Record"), nt_iri(ICO + "Image")
_ID, _SOURCE = nt_iri(DCTERMS + "identifier"), nt_iri(ICO + "source")
_TITLE, _CREATOR, _CREATED = nt_iri(DCTERMS + "title"), nt_iri(DCTERMS + "creator"), nt_iri(DCTERMS + "created")
_MEDIUM, _YEAR = nt_iri(DCTERMS + "medium"), nt_iri(ICO + "year")
_SUBJTEXT, _MENTION, _UNMATCHED = nt_iri(ICO + "subjectText"), nt_iri(ICO + "mention"), nt_iri(ICO + "unmatched")
_UNCERTAIN, _SUBJECT = nt_iri(ICO + "uncertain"), nt_iri(DCTERMS + "subject")
_HASIMAGE, _LOCATION, _SERVICE = nt_iri(ICO + "image"), nt_iri(ICO + "location"), nt_iri(ICO + "iiifService")
_OFRECORD = nt_iri(ICO + "record")
_XSD_INT = XSD + "integer"
_NEEDS_ESCAPE = re.compile(r'[\\"\n\r\t]')


def lit(text: str, lang: str | None = None) -> str:
    """An N-Triples literal; the common case (nothing to escape) without a translate pass (profiled hot spot)."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"@{lang.lower()}' if lang else f'"{text}"'
    return nt_literal(text, lang=lang)


@dataclass
class ImageRef:
    location: str  # a path (absolute, or relative to the source's images folder), file:// or http(s) URL
    service: str | None = None  # a IIIF Image API service base


@dataclass
class Record:
    """A source record before it becomes triples. Multi-valued fields are lists; empty strings are ignored."""

    id: str
    line: int | None = None
    title: list[tuple[str, str | None]] = field(default_factory=list)  # (text, language)
    creator: list[str] = field(default_factory=list)
    date: list[str] = field(default_factory=list)
    medium: list[str] = field(default_factory=list)
    subject: list[str] = field(default_factory=list)
    images: list[ImageRef] = field(default_factory=list)
    extra: dict[str, list[str]] = field(default_factory=dict)
    origin: str | None = None  # the file the record came from, when a source has several


def split_list(text: str, separator: str) -> list[Mention]:
    return [Mention(p.strip()) for p in text.split(separator) if p.strip()] if separator else [Mention(text.strip())]


class RecordWriter:
    """Turns records into N-Triples lines and keeps the report's counts."""

    def __init__(self, iris: IRIs, source: str, report: IngestReport, index: LabelIndex, *,
                 subject_parser: str = "list", subject_separator: str = ";", subject_lang: str | None = None,
                 title_lang: str | None = None, images_root: Path | None = None, check_images: str = "exists"):
        self.iris = iris
        self.report = report
        self.index = index
        self.parser = subject_parser
        self.separator = subject_separator
        self.lang = subject_lang
        self.title_lang = title_lang
        self.images_root = images_root
        self.check = check_images
        self.source_lit = nt_literal(source)
        self.seen: dict[str, int | None] = {}
        self._fields: dict[str, str] = {}

    # ---- subjects
    def mentions(self, text: str, rec: Record) -> list[Mention]:
        if self.parser == "garnier":
            found, problems = parse_mentions(text, lenient=True)
            for p in problems:
                self.report.issue(f"subject text: {p}", line=rec.line, record=rec.id, kind="malformed subject text",
                                  source=rec.origin)
            return found
        return split_list(text, self.separator)

    # ---- images
    def locate(self, ref: ImageRef, rec: Record) -> str | None:
        loc = ref.location.strip()
        if not loc:
            return None
        if loc.startswith(("http://", "https://")):
            return loc
        path = Path(loc[7:] if loc.startswith("file://") else loc).expanduser()
        if not path.is_absolute():
            base = self.images_root or (Path(rec.origin).parent if rec.origin else Path.cwd())
            path = base / path
        where = str(path)
        if self.check == "none":
            return os.path.abspath(where)
        if not os.path.isfile(where):
            self.report.issue(f"image not found: {where}", line=rec.line, record=rec.id, kind="image not found",
                              source=rec.origin)
            return None
        if self.check == "decode":
            from iconoscope.images import ImageError, open_image

            try:
                open_image(Path(where), min_side=64)
            except ImageError as e:
                self.report.issue(f"unreadable image: {e.reason} ({where})", line=rec.line, record=rec.id,
                                  kind="unreadable image", source=rec.origin)
                return None
        return os.path.abspath(where)

    # ---- the record
    def write(self, rec: Record) -> Iterator[str]:
        rep = self.report
        rid = rec.id.strip()
        if not rid:
            rep.issue("empty record id (record skipped)", line=rec.line, kind="empty id", source=rec.origin)
            return
        if rid in self.seen:
            first = self.seen[rid]
            rep.issue(f"duplicate record id (first seen{f' at line {first}' if first else ''}; skipped)",
                      line=rec.line, record=rid, kind="duplicate id", source=rec.origin)
            return
        self.seen[rid] = rec.line
        r = f"<{self.iris.record(rid)}>"  # IRIs percent-encodes the id: always a valid IRI
        out = [f"{r} {_A} {_RECORD} .\n{r} {_ID} {lit(rid)} .\n{r} {_SOURCE} {self.source_lit} .\n"]
        for text, lang in rec.title:
            if text.strip():
                out.append(f"{r} {_TITLE} {lit(text.strip(), lang or self.title_lang)} .\n")
        for v in rec.creator:
            if v.strip():
                out.append(f"{r} {_CREATOR} {lit(v.strip())} .\n")
        year_done = False
        for v in rec.date:
            if v.strip():
                out.append(f"{r} {_CREATED} {lit(v.strip())} .\n")
                y = None if year_done else parse_year(v)
                if y is not None:
                    out.append(f'{r} {_YEAR} "{y}"^^<{_XSD_INT}> .\n')
                    year_done = True
        for v in rec.medium:
            if v.strip():
                out.append(f"{r} {_MEDIUM} {lit(v.strip())} .\n")
        self._subjects(rec, r, out)
        for name, values in rec.extra.items():
            p = self._fields.get(name) or self._fields.setdefault(name, nt_iri(self.iris.field(name)))
            for v in values:
                if v.strip():
                    out.append(f"{r} {p} {lit(v.strip())} .\n")
        n_img = 0
        for ref in rec.images:
            loc = self.locate(ref, rec)
            if loc is None:
                continue
            n_img += 1
            img = f"<{self.iris.image(rid if n_img == 1 else f'{rid}-{n_img}')}>"
            out.append(f"{r} {_HASIMAGE} {img} .\n{img} {_A} {_IMAGE} .\n{img} {_OFRECORD} {r} .\n"
                       f"{img} {_LOCATION} {lit(loc)} .\n")
            if ref.service:
                try:
                    out.append(f"{img} {_SERVICE} {nt_iri(ref.service)} .\n")
                except ValueError:
                    rep.issue(f"IIIF service {ref.service!r} is not a valid IRI (dropped)", line=rec.line,
                              record=rid, kind="bad IIIF service", source=rec.origin)
        rep.records += 1
        rep.images += n_img
        yield from out

    def _subjects(self, rec: Record, r: str, out: list[str]) -> None:
        rep = self.report
        mentioned: dict[str, None] = {}
        unmatched: dict[str, None] = {}
        uncertain: dict[str, None] = {}
        concepts: dict[str, None] = {}
        for text in rec.subject:
            if not text.strip():
                continue
            rep.subject_texts += 1
            out.append(f"{r} {_SUBJTEXT} {lit(text.strip())} .\n")
            for m in self.mentions(text, rec):
                rep.mentions += 1
                mentioned[m.text] = None
                if m.uncertain:
                    rep.uncertain += 1
                    uncertain[m.text] = None
                    continue
                match = self.index.lookup(m.text, self.lang)
                if match.matched:
                    rep.matched += 1
                    rep.matched_by[match.how] += 1
                    for c in match.concepts:
                        concepts[c] = None
                else:
                    rep.unmatched += 1
                    unmatched[m.text] = None
                    if match.how == "ambiguous":
                        rep.ambiguous += 1
                        rep.ambiguous_texts[m.text] += 1
                        rep.candidates.setdefault(m.text, list(match.candidates))
                    else:
                        rep.unmatched_texts[m.text] += 1
        for t in mentioned:
            out.append(f"{r} {_MENTION} {lit(t)} .\n")
        for t in unmatched:
            out.append(f"{r} {_UNMATCHED} {lit(t)} .\n")
        for t in uncertain:
            out.append(f"{r} {_UNCERTAIN} {lit(t)} .\n")
        for c in concepts:
            out.append(f"{r} {_SUBJECT} <{c}> .\n")
        rep.subjects += len(concepts)
        if concepts:
            rep.records_with_subject += 1
