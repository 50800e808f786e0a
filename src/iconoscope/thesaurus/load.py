"""Loading vocabularies into their named graphs, and looking concepts up in them.

``load_vocabulary`` is what ``iconoscope vocab load`` and the demo call. It reads the whole file first (all format
checks happen there), then hands the N-Triples stream to ``Store.replace_graph``, which swaps the vocabulary's
graph atomically: a malformed file leaves the previously loaded version in place.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iconoscope.config import VOCAB_FORMATS
from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, values_iris
from iconoscope.graph.vocab import SKOS
from iconoscope.thesaurus.matching import AMBIGUITY_MODES, LabelIndex
from iconoscope.thesaurus.report import VocabReport

INDEX_VERSION = 1  # bump when normalize() or the index layout changes


def detect_format(path: Path) -> str:
    """iconclass for a folder holding notations.txt, csv for .csv/.tsv files, skos (RDF) otherwise."""
    from iconoscope.thesaurus.iconclass import is_iconclass_folder

    if is_iconclass_folder(path):
        return "iconclass"
    if Path(path).suffix.lower() in (".csv", ".tsv"):
        return "csv"
    return "skos"


def load_vocabulary(ws: Any, name: str, path: Path | str | None = None, format: str | None = None,
                    strict: bool = False, show_progress: bool | None = None) -> VocabReport:
    """Load vocabulary ``name`` (path/format default to ``[vocabularies.NAME]``); replaces its graph atomically.

    ``strict``: the first problem in the file raises an InputError (and nothing is stored) instead of being
    reported. ``show_progress``: a progress bar on stderr (default: only on a terminal).
    """
    from iconoscope.ingest.progress import counted

    cfg = ws.config.vocabulary(name)
    declared = name in ws.config.vocabularies
    if path is None:
        if cfg.path is None:
            raise ConfigError(f"{ws.config_path}: vocabulary '{name}' has no path: give one "
                              f"('iconoscope vocab load {name} PATH') or set [vocabularies.{name}] path")
        path = cfg.path
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise ConfigError(f"{path}: vocabulary file or folder not found")
    fmt = format or (cfg.format if declared else detect_format(path))
    if fmt not in VOCAB_FORMATS:
        raise ConfigError(f"vocabulary format {fmt!r}: expected one of {', '.join(VOCAB_FORMATS)}")
    languages = cfg.languages if declared else ws.config.languages
    scheme = cfg.scheme or ws.iris.scheme(name)
    graph = ws.iris.vocab_graph(name)
    report = VocabReport(name=name, format=fmt, path=str(path), graph=graph, strict=strict)
    t0 = time.perf_counter()

    if fmt == "iconclass":
        from iconoscope.thesaurus.iconclass import iconclass_triples, is_iconclass_folder

        if not is_iconclass_folder(path):
            raise ConfigError(f"{path}: not an Iconclass text distribution (expected a folder with notations.txt)")
        lines: Iterable[str] = iconclass_triples(path, scheme, languages, report)
    elif fmt == "csv":
        from iconoscope.thesaurus.csvtree import csv_triples

        lines = csv_triples(path, scheme, lambda local: ws.iris.concept(name, local), languages[0], report,
                            scheme_label=name)
    else:
        from iconoscope.thesaurus.skos import skos_triples

        if path.is_dir():
            raise ConfigError(f"{path}: a folder; a SKOS vocabulary is one RDF file (or use --format iconclass)")
        lines = skos_triples(path, scheme, report, scheme_label=name)
    report.triples = ws.store.replace_graph(graph, counted(lines, f"vocab {name}", show=show_progress))
    report.seconds = time.perf_counter() - t0
    return report


# ---- lookups -------------------------------------------------------------------------------------------------


def resolve_concept(ws: Any, vocab: str, text: str) -> str:
    """A concept IRI from an IRI, a notation or a label of vocabulary ``vocab``; clear errors otherwise."""
    graph = ws.iris.vocab_graph(vocab)
    store = ws.store
    if graph not in store.graphs():
        raise ConfigError(f"vocabulary '{vocab}' is not loaded (run 'iconoscope vocab load {vocab}')")
    # fast paths first: an IRI the graph describes (its own concepts, or ones it extends), an exact notation
    if text.startswith(("http://", "https://", "urn:")):
        try:
            if store.ask(queries.load("vocab_mentions", graph=IRI(graph), concept=IRI(text))):
                return text
        except ValueError:
            raise IconoscopeError(f"vocabulary '{vocab}': {text!r} is not a valid IRI") from None
    found = sorted(r[0].value for r in store.select(
        queries.load("vocab_resolve_notation", graph=IRI(graph), needle=text)).rows if r[0] is not None)
    if len(found) == 1:
        return found[0]
    rows = store.select(queries.load("vocab_resolve", graph=IRI(graph), needle=text)).rows
    if not rows:
        raise IconoscopeError(f"vocabulary '{vocab}': no concept with IRI, notation or label {text!r}")
    best = rows[0][1].value if rows[0][1] else ""
    found = sorted({r[0].value for r in rows if r[0] is not None and (r[1].value if r[1] else "") == best})
    if len(found) > 1:
        raise IconoscopeError(f"vocabulary '{vocab}': {text!r} is the {best} of {len(found)} concepts "
                              f"({', '.join(found[:5])}{'…' if len(found) > 5 else ''}); give the IRI or notation")
    return found[0]


@dataclass
class ConceptInfo:
    """What ``vocab show`` prints."""

    iri: str
    notation: str | None
    pref: dict[str, str] = field(default_factory=dict)
    alt: dict[str, list[str]] = field(default_factory=dict)
    schemes: list[str] = field(default_factory=list)
    related: list[str] = field(default_factory=list)
    chains: list[list[str]] = field(default_factory=list)  # each from the concept up to a top concept
    names: dict[str, str] = field(default_factory=dict)  # IRI -> "notation label" for printing
    narrower_direct: int = 0
    narrower_all: int = 0


def describe(ws: Any, iris: Sequence[str], lang: str | None = None) -> dict[str, str]:
    """IRI -> 'notation  label' (label in ``lang`` when there is one)."""
    if not iris:
        return {}
    rows = ws.store.select(queries.load("vocab_describe_many", concepts=values_iris(iris))).rows
    notation: dict[str, str] = {}
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    for c, n, label in rows:
        if c is None:
            continue
        if n is not None:
            notation[c.value] = n.value
        if label is not None:
            labels[c.value].setdefault(label.lang or "", label.value)
    out = {}
    for i in iris:
        ls = labels.get(i, {})
        text = ls.get(lang or "") or ls.get("en") or next(iter(ls.values()), "")
        out[i] = " ".join(x for x in (notation.get(i, ""), text) if x) or i
    return out


def broader_chains(edges: Iterable[tuple[str, str]], start: str, limit: int = 8) -> list[list[str]]:
    """All paths from ``start`` up through (narrower, broader) ``edges`` to concepts with no broader."""
    up: dict[str, list[str]] = defaultdict(list)
    for a, b in edges:
        up[a].append(b)
    for v in up.values():
        v.sort()
    chains: list[list[str]] = []
    stack = [[start]]
    while stack and len(chains) < limit:
        path = stack.pop()
        parents = [p for p in up.get(path[-1], []) if p not in path]
        if not parents:
            chains.append(path)
        for p in reversed(parents):
            stack.append([*path, p])
    return chains


def concept_info(ws: Any, vocab: str, text: str, lang: str | None = None) -> ConceptInfo:
    iri = resolve_concept(ws, vocab, text)
    store = ws.store
    info = ConceptInfo(iri=iri, notation=None)
    for p, o in store.select(queries.load("vocab_concept", concept=IRI(iri))).rows:
        if p is None or o is None:
            continue
        if p.value == SKOS + "prefLabel":
            info.pref.setdefault(o.lang or "", o.value)
        elif p.value in (SKOS + "altLabel", SKOS + "hiddenLabel"):
            info.alt.setdefault(o.lang or "", []).append(o.value)
        elif p.value == SKOS + "notation":
            info.notation = o.value
        elif p.value == SKOS + "inScheme":
            info.schemes.append(o.value)
        elif p.value == SKOS + "related":
            info.related.append(o.value)
    edges = [(r[0].value, r[1].value) for r in store.select(queries.load("vocab_broader_edges", concept=IRI(iri)))
             if r[0] is not None and r[1] is not None]
    info.chains = broader_chains(edges, iri)
    info.related = sorted(set(info.related))
    row = store.select(queries.load("vocab_narrower_count", concept=IRI(iri))).rows[0]
    info.narrower_direct = int(row[0].value) if row[0] else 0
    info.narrower_all = int(row[1].value) if row[1] else 0
    names = {c for chain in info.chains for c in chain} | set(info.related)
    info.names = describe(ws, sorted(names), lang)
    return info


# ---- the matcher's index ----------------------------------------------------------------------------------------


def build_label_index(ws: Any, vocabularies: Sequence[str], ambiguous: str = "skip") -> LabelIndex:
    """The label index over the given loaded vocabularies (their named graphs)."""
    if ambiguous not in AMBIGUITY_MODES:
        raise ConfigError(f"ambiguous = {ambiguous!r}: expected one of {', '.join(AMBIGUITY_MODES)}")
    index = LabelIndex(ambiguous=ambiguous)
    store = ws.store
    loaded = set(store.graphs())
    graphs = [ws.iris.vocab_graph(v) for v in vocabularies]
    missing = [v for v, g in zip(vocabularies, graphs, strict=True) if g not in loaded]
    if missing:
        raise ConfigError(f"vocabular{'ies' if len(missing) > 1 else 'y'} {', '.join(missing)} not loaded "
                          f"(run 'iconoscope vocab load {missing[0]}')")
    if not graphs:
        return index
    cache = _index_cache_path(ws, graphs)
    if cache is not None and cache.exists():
        try:
            with open(cache, "rb") as f:
                index.pref, index.alt, index.concepts = pickle.load(f)
            return index
        except (OSError, pickle.UnpicklingError, EOFError, ValueError):
            cache.unlink(missing_ok=True)
    for c, label, kind in store.select(queries.load("vocab_labels", graphs=values_iris(graphs))).rows:
        if c is not None and label is not None and kind is not None:
            index.add(c.value, label.value, label.lang, kind.value)
    if cache is not None:
        tmp = cache.with_name(cache.name + ".part")
        with open(tmp, "wb") as f:
            pickle.dump((index.pref, index.alt, index.concepts), f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(cache)
    return index


def _index_cache_path(ws: Any, graphs: Sequence[str]) -> Path | None:
    """A cache file keyed by the content digests the store keeps for the graphs (no cache without them).

    Building the index normalises every label (~250,000 for Iconclass EN+FR: seconds); the digest changes whenever
    a vocabulary is reloaded with other content and is forgotten on any other write, so a stale index is never used.
    """
    digests = getattr(ws.store, "_digests", None)
    if digests is None:
        return None
    known = digests()
    keys = [known.get(g) for g in graphs]
    if any(k is None for k in keys):
        return None
    h = hashlib.sha256(json.dumps([INDEX_VERSION, list(graphs), keys]).encode()).hexdigest()[:24]
    return Path(ws.cache_dir("label-index")) / f"{h}.pickle"
