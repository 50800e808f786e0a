"""From what a user types to concepts: labels (any case, with or without accents), notations or IRIs.

Exact label matches go through the store's indexes (a VALUES block of the likely spellings in the wanted
languages), so the common case costs milliseconds even on Iconclass; only when that finds nothing do we fold case
and accents over every label in Python.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

from iconoscope.enrich.tables import select_table
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw, values_iris
from iconoscope.graph.terms import nt_literal


def fold(text: str) -> str:
    """Lower case, no accents, single spaces: how two spellings of a label are compared."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return " ".join("".join(ch for ch in decomposed if not unicodedata.combining(ch)).split())


def _is_iri(text: str) -> bool:
    return text.startswith(("http://", "https://", "urn:"))


def resolve_concepts(ws: Any, text: str, lang: str | None = None) -> list[str]:
    """The concepts ``text`` names (a label in ``lang`` or any configured language, a notation, or an IRI)."""
    text = text.strip()
    if not text:
        return []
    store = ws.store
    if _is_iri(text):
        try:
            return [text] if store.ask(queries.load("enrich_is_concept", concept=IRI(text))) else []
        except ValueError:
            return []
    langs = [lang] if lang else list(dict.fromkeys(ws.config.languages))
    spellings = dict.fromkeys([text, text.lower(), text[:1].upper() + text[1:].lower(), text.title(), text.upper()])
    lits = [nt_literal(s, lang=lg) for s in spellings for lg in langs] + [nt_literal(s) for s in spellings]
    res = store.select(queries.load("enrich_concepts_by_label", labels=Raw(" ".join(lits))))
    found = [str(c) for c in res.column("concept")]
    if found:
        return found
    # slow path: fold case and accents over every label (a typo-free "levrier" finds "lévrier")
    want = fold(text)
    t = select_table(store, queries.load("enrich_concept_labels_all"))
    hits = {c for c, label in zip(t.column("concept").to_pylist(), t.column("l").to_pylist(), strict=True)
            if label is not None and fold(label) == want}
    return sorted(hits)   # the folded path ignores the language: a near-miss in another language still helps


def narrower_closure(ws: Any, concepts: Iterable[str]) -> list[str]:
    """``concepts`` and every concept below them."""
    concepts = list(dict.fromkeys(concepts))
    if not concepts:
        return []
    res = ws.store.select(queries.load("enrich_narrower_closure", concepts=values_iris(concepts)))
    return sorted(set(concepts) | {str(c) for c in res.column("concept")})


def concepts_below(ws: Any, concepts: Iterable[str], tops: Iterable[str]) -> set[str]:
    """Those of ``concepts`` that are at or below one of ``tops`` (cheap when ``concepts`` is short, however large
    the tree under ``tops``)."""
    concepts, tops = list(dict.fromkeys(concepts)), list(dict.fromkeys(tops))
    if not concepts or not tops:
        return set()
    out: set[str] = set()
    for k in range(0, len(concepts), 500):
        res = ws.store.select(queries.load("enrich_concepts_below", concepts=values_iris(concepts[k:k + 500]),
                                           tops=values_iris(tops)))
        out.update(str(c) for c in res.column("concept"))
    return out


def concept_labels(ws: Any, concepts: Sequence[str], lang: str | None = None) -> dict[str, str]:
    """A display label per concept: its prefLabel in ``lang``, else in the collection's languages, else any, else
    the IRI's last segment."""
    concepts = list(dict.fromkeys(concepts))
    out: dict[str, str] = {}
    prefs = ([lang] if lang else []) + list(ws.config.languages)
    for k in range(0, len(concepts), 500):
        chunk = concepts[k:k + 500]
        res = ws.store.select(queries.load("enrich_concept_labels", concepts=values_iris(chunk)))
        best: dict[str, tuple[int, str]] = {}
        for c, term in res.rows:
            if c is None or term is None:
                continue
            tag = (term.lang or "").lower()
            rank = next((i for i, p in enumerate(prefs) if tag == p.lower() or tag.startswith(p.lower() + "-")),
                        len(prefs))
            if c.value not in best or (rank, term.value) < best[c.value]:
                best[c.value] = (rank, term.value)
        out.update({c: v for c, (_, v) in best.items()})
    for c in concepts:
        out.setdefault(c, c.rstrip("/#").rsplit("/", 1)[-1].rsplit("#", 1)[-1])
    return out
