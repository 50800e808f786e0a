"""RDF sources: records described in Dublin Core / schema.org / EDM (or already in our model) in any RDF syntax.

The records are the resources typed ``ico:Record`` or one of ``record_class`` (e.g.
``["http://www.europeana.eu/schemas/edm/ProvidedCHO", "https://schema.org/VisualArtwork"]``). Each becomes a
:class:`Record` read from the usual predicates (dcterms:/dc: title, creator, created/date, medium/format,
subject; images from ico:image's location, schema:image, edm:isShownBy, foaf:depiction), so literal subjects are
parsed and matched like any other source's. A record whose IRI is not ``B/record/{id}`` is re-minted there (the id
from dcterms:identifier, else the IRI's last segment) with ``owl:sameAs`` its original IRI; its other triples are
kept on the new IRI, and every triple about other resources is kept as it is. IRI-valued dcterms:subject values are
curated subjects already and stay.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from iconoscope.config import SourceConfig
from iconoscope.errors import ConfigError, InputError
from iconoscope.graph.store import guess_format
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, SCHEMA, IRIs
from iconoscope.ingest.records import ImageRef, Record, RecordWriter
from iconoscope.ingest.report import IngestReport

DC = "http://purl.org/dc/elements/1.1/"
EDM = "http://www.europeana.eu/schemas/edm/"
FOAF = "http://xmlns.com/foaf/0.1/"
OWL_SAMEAS = "http://www.w3.org/2002/07/owl#sameAs"
_FORMATS = {"turtle": "TURTLE", "nt": "N_TRIPLES", "nquads": "N_QUADS", "xml": "RDF_XML", "json-ld": "JSON_LD",
            "trig": "TRIG", "n3": "N3"}

FIELD_PREDICATES = {
    "title": (DCTERMS + "title", DC + "title", SCHEMA + "name"),
    "creator": (DCTERMS + "creator", DC + "creator", SCHEMA + "creator"),
    "date": (DCTERMS + "created", DCTERMS + "date", DC + "date", SCHEMA + "dateCreated"),
    "medium": (DCTERMS + "medium", DC + "format", SCHEMA + "artMedium"),
    "subject": (DCTERMS + "subject", DC + "subject", ICO + "subjectText"),
}
IMAGE_PREDICATES = (SCHEMA + "image", EDM + "isShownBy", FOAF + "depiction")
_CAPTURED = {p for ps in FIELD_PREDICATES.values() for p in ps} | set(IMAGE_PREDICATES) | {
    ICO + "image", ICO + "mention", ICO + "unmatched", ICO + "uncertain", ICO + "source", RDF_TYPE,
    DCTERMS + "identifier"}


def _files(path: Path) -> list[Path]:
    if path.is_dir():
        out = []
        for p in sorted(path.rglob("*")):
            try:
                guess_format(p)
            except ConfigError:
                continue
            out.append(p)
        return out
    return [path]


class RDFSource:
    """Parses the files, then yields N-Triples lines: the records (through the writer) and everything else."""

    def __init__(self, cfg: SourceConfig, report: IngestReport, iris: IRIs):
        self.cfg = cfg
        self.report = report
        self.iris = iris
        classes = cfg.options.get("record_class", [])
        self.classes = {ICO + "Record", *([classes] if isinstance(classes, str) else classes)}

    def lines(self, writer: RecordWriter) -> Iterator[str]:
        import pyoxigraph as ox

        path = Path(self.cfg.path)
        if not path.exists():
            raise ConfigError(f"source '{self.cfg.name}': not found: {path}")
        by_subject: dict[str, list[tuple[str, object]]] = defaultdict(list)  # N-Triples subject -> (pred, obj)
        records: set[str] = set()
        for f in _files(path):
            fmt = self.cfg.options.get("format") or guess_format(f)
            try:
                for t in ox.parse(path=str(f), format=getattr(ox.RdfFormat, _FORMATS[fmt]), base_iri=f.as_uri()):
                    s = str(t.subject)
                    by_subject[s].append((t.predicate.value, t.object))
                    if t.predicate.value == RDF_TYPE and t.object.value in self.classes:
                        records.add(s)
            except SyntaxError as e:
                raise InputError(str(f), f"malformed {fmt}: {e}") from None
        if not records:
            self.report.issue(f"no record found (no resource typed {', '.join(sorted(self.classes))})",
                              kind="no records", source=str(path))
        ours = self.iris.record("")
        # image nodes of records are re-written by the writer (location checked, IRI minted): not copied
        image_nodes = {str(o) for s in records for p, o in by_subject[s] if p == ICO + "image"}
        for s, props in by_subject.items():
            if s in records:
                yield from self._record(s, props, ours, writer, str(path), by_subject)
            elif s not in image_nodes:
                for p, o in props:
                    yield f"{s} <{p}> {o} .\n"

    def _record(self, s: str, props: list[tuple[str, object]], ours: str, writer: RecordWriter,
                origin: str, by_subject: dict[str, list[tuple[str, object]]]) -> Iterator[str]:
        import pyoxigraph as ox

        iri = s[1:-1] if s.startswith("<") else s
        ident = next((o.value for p, o in props if p == DCTERMS + "identifier" and isinstance(o, ox.Literal)), None)
        if iri.startswith(ours):
            rid = ident or self.iris.id_of(iri, "record")
        else:
            rid = ident or ([seg for seg in urlparse(iri).path.split("/") if seg] or [iri])[-1]
        rec = Record(id=rid, origin=origin)
        for p, o in props:
            lit = isinstance(o, ox.Literal)
            if p in FIELD_PREDICATES["title"] and lit:
                rec.title.append((o.value, o.language))
            elif p in FIELD_PREDICATES["creator"]:
                rec.creator.append(o.value)
            elif p in FIELD_PREDICATES["date"] and lit:
                rec.date.append(o.value)
            elif p in FIELD_PREDICATES["medium"] and lit:
                rec.medium.append(o.value)
            elif p in FIELD_PREDICATES["subject"] and lit:
                rec.subject.append(o.value)
            elif p in IMAGE_PREDICATES:
                rec.images.append(ImageRef(o.value))
            elif p == ICO + "image":
                node = dict(by_subject.get(str(o), []))
                loc, svc = node.get(ICO + "location"), node.get(ICO + "iiifService")
                if loc is not None:
                    rec.images.append(ImageRef(loc.value, svc.value if svc is not None else None))
        before = self.report.records
        lines = list(writer.write(rec))
        if self.report.records == before:  # the writer refused it (and reported why)
            return
        yield from lines
        new = f"<{self.iris.record(rec.id)}>"
        if new != s:
            yield f"{new} <{OWL_SAMEAS}> {s} .\n"
        for p, o in props:
            if p not in _CAPTURED or (p == DCTERMS + "subject" and not isinstance(o, ox.Literal)):
                yield f"{new} <{p}> {o} .\n"
