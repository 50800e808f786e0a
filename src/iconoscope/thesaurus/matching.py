"""Multilingual label matching: free subject text -> thesaurus concepts.

Catalogue text and thesaurus labels rarely agree on case, accents, apostrophes or spacing (``Etoile`` vs
``étoile``, ``représentation d’objet`` vs ``représentation d'objet``), so both sides are reduced to one
normal form (:func:`normalize`) before they are compared. Matching is exact on that form: no stemming or fuzzy
distance, because a wrong curated subject becomes a wrong training label; what does not match stays as text and is
counted, so a curator can map it explicitly.

The ambiguity rule (one label -> several concepts), applied in this order, first tier with any candidate wins:

1. the explicit mapping table (``text,concept``) of the source: always wins, and may map one text to several
   concepts on purpose;
2. prefLabel in the mention's language; 3. prefLabel in any language;
4. altLabel/hiddenLabel in the mention's language; 5. altLabel/hiddenLabel in any language.

Within the winning tier a single candidate is a match. Several candidates are **ambiguous**: by default
(``ambiguous = "skip"``) nothing is linked, the mention is kept as unmatched text and reported with its candidates
(the report lists the most frequent ones, ready to be settled in the mapping table); ``ambiguous = "all"`` links
every candidate instead (recall over precision). Iconclass keywords make this common: ``pomme`` is a keyword of
ten notations (the fruit, Eve's apple, Saint Dorothy's attribute...).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

AMBIGUITY_MODES = ("skip", "all")

_APOS = str.maketrans({"’": "'", "‘": "'", "`": "'", "´": "'", "ʼ": "'", "‐": "-", "‑": "-", "–": "-",
                       "—": "-", "\u00a0": " ", "\u202f": " ", "，": ","})
_SPACE = re.compile(r"\s+")
_PUNCT_SPACE = re.compile(r"\s*([:;,])\s*")
_EDGE = re.compile(r"^[\s.,;:!?\"'()\[\]-]+|[\s.,;:!?\"'()\[\]-]+$")


@lru_cache(maxsize=1 << 18)
def normalize(text: str) -> str:
    """Case-, accent- and spacing-insensitive key: ``'  Étoile  d’or '`` -> ``"etoile d'or"``."""
    s = unicodedata.normalize("NFKD", text.translate(_APOS))
    s = "".join(c for c in s if not unicodedata.combining(c)).casefold()
    s = s.replace("œ", "oe").replace("æ", "ae").replace("ß", "ss")
    s = _PUNCT_SPACE.sub(r"\1 ", s)
    s = _SPACE.sub(" ", s)
    return _EDGE.sub("", s)


@dataclass(frozen=True)
class Match:
    """The outcome for one mention: ``concepts`` linked (empty when unmatched or skipped as ambiguous)."""

    concepts: tuple[str, ...]
    how: str  # mapping | pref | alt | ambiguous | none
    candidates: tuple[str, ...] = ()

    @property
    def matched(self) -> bool:
        return bool(self.concepts)


NO_MATCH = Match((), "none")


@dataclass
class LabelIndex:
    """normalized label -> language -> concepts, for prefLabels and for alt/hidden labels separately."""

    pref: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    alt: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    mapping: dict[str, tuple[str, ...]] = field(default_factory=dict)
    ambiguous: str = "skip"
    concepts: set[str] = field(default_factory=set)
    _cache: dict[tuple[str, str | None], Match] = field(default_factory=dict, repr=False)

    def add(self, concept: str, label: str, lang: str | None, kind: str) -> None:
        """Add one label; ``kind`` is 'pref' or 'alt' (altLabel and hiddenLabel)."""
        key = normalize(label)
        if not key:
            return
        table = self.pref if kind == "pref" else self.alt
        table.setdefault(key, {}).setdefault((lang or "").lower(), set()).add(concept)
        self.concepts.add(concept)
        self._cache.clear()

    def add_mapping(self, text: str, concepts: Iterable[str]) -> None:
        key = normalize(text)
        self.mapping[key] = tuple(dict.fromkeys((*self.mapping.get(key, ()), *concepts)))
        self._cache.clear()

    def __len__(self) -> int:
        return len(self.pref) + len(self.alt)

    @staticmethod
    def _tiers(table: dict[str, set[str]], lang: str | None) -> Iterable[set[str]]:
        if lang:
            same = table.get(lang.lower())
            if same:
                yield same
        merged: set[str] = set().union(*table.values()) if table else set()
        if merged:
            yield merged

    def lookup(self, text: str, lang: str | None = None) -> Match:
        """Apply the tiers of the module doc to one mention (memoised: catalogues repeat their mentions)."""
        hit = self._cache.get((text, lang))
        if hit is None:
            hit = self._cache[(text, lang)] = self._lookup(text, lang)
        return hit

    def _lookup(self, text: str, lang: str | None) -> Match:
        key = normalize(text)
        if not key:
            return NO_MATCH
        mapped = self.mapping.get(key)
        if mapped:
            return Match(mapped, "mapping")
        for kind, table in (("pref", self.pref), ("alt", self.alt)):
            by_lang = table.get(key)
            if not by_lang:
                continue
            for cands in self._tiers(by_lang, lang):
                if len(cands) == 1:
                    return Match(tuple(cands), kind)
                ordered = tuple(sorted(cands))
                if self.ambiguous == "all":
                    return Match(ordered, kind, ordered)
                return Match((), "ambiguous", ordered)
        return NO_MATCH
