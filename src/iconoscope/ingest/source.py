"""Ingesting a declared source into its named graph (``iconoscope ingest``).

The whole source is read, checked, matched and written as N-Triples into a spool before the store is touched;
then ``Store.replace_graph`` swaps the source's graph atomically. Hence: ingesting twice gives the same triples,
a crash or a ``--strict`` stop leaves the previous graph, and a run that could read no record at all is refused
rather than emptying the graph.

Images are checked cheaply by default (``check_images = "exists"``: one stat per local file; URLs are not
fetched). ``--check-images`` (``"decode"``) also decodes each local image, which finds truncated or corrupt files
at ingest instead of at ``embed`` time, at the cost of reading every file; ``"none"`` skips the check.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from iconoscope.config import SourceConfig
from iconoscope.errors import ConfigError, InputError
from iconoscope.ingest.records import CHECK_IMAGES, RecordWriter
from iconoscope.ingest.report import IngestReport
from iconoscope.thesaurus.matching import AMBIGUITY_MODES

OPTIONS = {
    "extra": "a table: field name -> source column (written as <B/field/NAME>)",
    "delimiter": "the CSV delimiter (default ',' for csv, tab for tsv)",
    "encoding": "the file encoding (default utf-8)",
    "lang": "language tag of titles (default: subject_lang)",
    "ambiguous": f"what to do with a label of several concepts: {' | '.join(AMBIGUITY_MODES)}",
    "check_images": f"{' | '.join(CHECK_IMAGES)}",
    "image_separator": "splits one image cell into several images (e.g. '|')",
    "record_class": "RDF sources: class IRI(s) whose instances are records (besides ico:Record)",
    "format": "RDF sources: the RDF syntax when the file suffix does not tell",
}


def _check_options(ws: Any, cfg: SourceConfig) -> None:
    where = f"{ws.config_path} [sources.{cfg.name}]"
    unknown = sorted(set(cfg.options) - set(OPTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: kind, path, fields, images, "
                          f"vocabularies, subject_parser, subject_separator, subject_lang, mapping, "
                          f"{', '.join(OPTIONS)}")
    o = cfg.options
    extra = o.get("extra", {})
    if not isinstance(extra, dict) or not all(isinstance(v, str) for v in extra.values()):
        raise ConfigError(f"{where}: key 'extra' = {extra!r}: expected a table of field name = \"column\"")
    for key, allowed in (("ambiguous", AMBIGUITY_MODES), ("check_images", CHECK_IMAGES)):
        if key in o and o[key] not in allowed:
            raise ConfigError(f"{where}: key '{key}' = {o[key]!r}: expected one of {', '.join(allowed)}")
    for key in ("delimiter", "encoding", "lang", "image_separator", "format"):
        if key in o and not isinstance(o[key], str):
            raise ConfigError(f"{where}: key '{key}' = {o[key]!r}: expected a string")
    if "delimiter" in o and len(o["delimiter"]) != 1:
        raise ConfigError(f"{where}: key 'delimiter' = {o['delimiter']!r}: expected one character")


def _ensure_vocabularies(ws: Any, names: Sequence[str], report: IngestReport) -> list[str]:
    """Load declared vocabularies that are not in the store yet (so one 'ingest' sets a workspace up)."""
    from iconoscope.thesaurus import load_vocabulary

    loaded = set(ws.store.graphs())
    done = []
    for v in names:
        if ws.iris.vocab_graph(v) not in loaded and ws.config.vocabulary(v).path is not None:
            load_vocabulary(ws, v)
            done.append(v)
    return done


def ingest_source(ws: Any, name: str, strict: bool = False, check_images: str | None = None,
                  show_progress: bool | None = None) -> IngestReport:
    """Ingest source ``name`` of the workspace config into ``B/graph/source/{name}``; returns the report.

    ``strict``: the first problem (malformed row, missing image, unknown concept in the mapping table...) raises
    an InputError naming the source, line and reason, and the store is left as it was.
    """
    from iconoscope.ingest.mapping import known_concepts, load_mapping
    from iconoscope.ingest.progress import counted
    from iconoscope.thesaurus import build_label_index

    cfg = ws.config.source(name)
    _check_options(ws, cfg)
    opts = cfg.options
    graph = ws.iris.source_graph(name)
    report = IngestReport(source=name, kind=cfg.kind, path=str(cfg.path), graph=graph, strict=strict)
    t0 = time.perf_counter()
    loaded_now = _ensure_vocabularies(ws, cfg.vocabularies, report)
    index = build_label_index(ws, cfg.vocabularies, opts.get("ambiguous", "skip"))
    if cfg.mapping is not None:
        known = known_concepts(ws, cfg.vocabularies)
        for text, concepts in load_mapping(cfg.mapping, known, report).items():
            index.add_mapping(text, concepts)
    check = check_images or opts.get("check_images", "exists")
    if check not in CHECK_IMAGES:
        raise ConfigError(f"check_images = {check!r}: expected one of {', '.join(CHECK_IMAGES)}")
    writer = RecordWriter(ws.iris, name, report, index, subject_parser=cfg.subject_parser,
                          subject_separator=cfg.subject_separator, subject_lang=cfg.subject_lang,
                          title_lang=opts.get("lang", cfg.subject_lang), images_root=cfg.images,
                          check_images=check)

    def lines() -> Iterator[str]:
        if cfg.kind == "rdf":
            from iconoscope.ingest.rdf import RDFSource

            yield from RDFSource(cfg, report, ws.iris).lines(writer)
        else:
            if cfg.kind == "iiif":
                from iconoscope.ingest.iiif import IIIFReader

                records: Any = IIIFReader(cfg, report, ws.cache_dir("iiif"))
            else:
                from iconoscope.ingest.tabular import TabularReader

                records = TabularReader(cfg, report)
            for rec in counted(records, f"ingest {name}", unit="records", show=show_progress):
                yield from writer.write(rec)
        if report.records == 0:
            raise InputError(str(cfg.path), f"no record could be read ({report.n_issues} issue(s), e.g. "
                                            f"{report.issues[0] if report.issues else 'an empty source'}); the "
                                            "previous graph is kept")

    report.triples = ws.store.replace_graph(graph, lines())
    report.seconds = time.perf_counter() - t0
    out = ws.reports_dir() / f"ingest-{name}.json"
    data = report.as_dict()
    data["vocabularies_loaded"] = loaded_now
    out.write_text(json.dumps(data, ensure_ascii=False, indent=1), encoding="utf-8")
    return report


def ingest_all(ws: Any, names: Sequence[str] | None = None, strict: bool = False, check_images: str | None = None,
               show_progress: bool | None = None) -> list[IngestReport]:
    """Ingest the named sources (default: every source of the config, in its order)."""
    todo = list(names) if names else list(ws.config.sources)
    if not todo:
        raise ConfigError(f"{ws.config_path}: no [sources.NAME] declared")
    for n in todo:
        ws.config.source(n)  # unknown names fail before anything runs
    return [ingest_source(ws, n, strict=strict, check_images=check_images, show_progress=show_progress)
            for n in todo]
