"""Text -> concepts: rank a vocabulary's concepts by similarity to a title or a description.

Every label of a concept in the text's language (``skos:prefLabel``, ``altLabel``/keywords, ``hiddenLabel``,
``definition``) is embedded by the text encoder; a concept's score is the best cosine similarity of any of its texts
to the query, so a concept found by one precise keyword is not diluted by its other, broader ones.

The embeddings are cached per vocabulary, encoder and language in ``cache/concepts/{vocab}/{encoder}/{lang}/``
(float16 vectors; a few hundred MB for all of Iconclass in one language would be twice that in float32). The cache is
keyed by a fingerprint of the texts: reloading a changed vocabulary re-embeds only the texts that are new.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph import queries
from iconoscope.learn.text import DEFAULT_TEXT_ENCODER, get_text_encoder

KINDS = ("pref", "alt", "hidden", "def")

# the commonest function words per language: enough to tell a title's language without a model
_STOP_TEXT = {
    "en": "the of and a an in on with to at by from for his her their is are was this that as or into under",
    "fr": "le la les de des du un une et en au aux avec sur dans par pour sa son ses leur est qui que l d",
    "de": "der die das den dem des ein eine einer und mit auf im in von zu zum zur bei aus ist sich nach",
    "nl": "de het een van en met op in bij uit voor door aan zijn haar die dat er naar",
    "it": "il lo la le gli i di del della dei delle un una e con su nel nella per da al alla",
    "es": "el la los las de del un una y con en por para al su sus que",
}
_STOP = {lang: set(words.split()) for lang, words in _STOP_TEXT.items()}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def guess_language(text: str, candidates: Sequence[str], default: str | None = None) -> str | None:
    """The candidate language whose function words the text uses most (ties and no evidence -> ``default``)."""
    words = [w.lower() for w in _WORD.findall(text)]
    # elided articles (l'arbre, d'après) are words of their own in French and Italian
    words += [w.split("'")[0] for w in re.findall(r"\b\w+'\w+", text.lower())]
    best, best_n = default, 0
    for lang in candidates:
        stop = _STOP.get(lang.lower().split("-")[0], set())
        n = sum(1 for w in words if w in stop)
        if n > best_n:
            best, best_n = lang, n
    return best


@dataclass
class ConceptIndex:
    """The embedded texts of one vocabulary in one language; texts are grouped by concept (``starts``)."""

    concepts: list[str]
    labels: list[str]
    texts: list[str]
    kinds: list[str]
    starts: np.ndarray  # int64 [C]: first text of each concept
    vectors: np.ndarray  # float16 [S, D], L2-normalised
    lang: str = ""

    @classmethod
    def build(cls, entries: dict[str, list[tuple[str, str]]], labels: dict[str, str],
              embed: Any, lang: str = "", old: ConceptIndex | None = None) -> ConceptIndex:
        """``entries``: concept -> [(kind, text)]; ``embed``: strings -> float32 vectors. Reuses ``old``'s
        vectors for texts it already embedded."""
        concepts = sorted(c for c, ts in entries.items() if ts)
        texts, kinds, starts = [], [], []
        for c in concepts:
            starts.append(len(texts))
            seen: set[str] = set()
            for kind, t in sorted(entries[c], key=lambda kt: (KINDS.index(kt[0]), kt[1])):
                if t not in seen:
                    seen.add(t)
                    texts.append(t)
                    kinds.append(kind)
        known = {t: i for i, t in enumerate(old.texts)} if old is not None else {}
        todo = sorted({t for t in texts if t not in known})
        new = embed(todo) if todo else np.zeros((0, old.vectors.shape[1] if old else 0), np.float32)
        new_pos = {t: i for i, t in enumerate(todo)}
        dim = new.shape[1] if len(todo) else (old.vectors.shape[1] if old is not None else 0)
        vectors = np.zeros((len(texts), dim), dtype=np.float16)
        for i, t in enumerate(texts):
            vectors[i] = new[new_pos[t]] if t in new_pos else old.vectors[known[t]]  # type: ignore[union-attr]
        return cls(concepts, [labels.get(c, entries[c][0][1]) for c in concepts], texts, kinds,
                   np.asarray(starts, dtype=np.int64), vectors, lang)

    def __len__(self) -> int:
        return len(self.concepts)

    def _sims(self, Q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(text similarities [Q, S], concept scores [Q, C] = the best text of each concept)."""
        sims = Q.astype(np.float32) @ self.vectors.astype(np.float32).T
        return sims, np.maximum.reduceat(sims, self.starts, axis=1)

    def search(self, Q: np.ndarray, k: int = 10) -> list[list[tuple[int, float, int]]]:
        """Top-k (concept index, score, index of the text that matched best) per query."""
        ends = np.append(self.starts[1:], len(self.texts))
        out = []
        for start in range(0, len(Q), 256):
            sims, best = self._sims(Q[start:start + 256])
            kk = min(k, best.shape[1])
            top = np.argpartition(-best, kk - 1, axis=1)[:, :kk]
            for r in range(len(top)):
                idx = top[r][np.argsort(-best[r, top[r]], kind="stable")]
                out.append([(int(c), float(best[r, c]),
                             int(self.starts[c] + np.argmax(sims[r, self.starts[c]:ends[c]]))) for c in idx])
        return out

    def ranks(self, Q: np.ndarray) -> np.ndarray:
        """Rank (1 = best) of every concept for every query: [Q, C] int32."""
        out = np.zeros((len(Q), len(self.concepts)), dtype=np.int32)
        for start in range(0, len(Q), 256):
            _, best = self._sims(Q[start:start + 256])
            order = np.argsort(-best, axis=1, kind="stable")
            r = np.empty_like(order)
            np.put_along_axis(r, order, np.arange(1, best.shape[1] + 1)[None, :].repeat(len(order), 0), axis=1)
            out[start:start + len(order)] = r
        return out

    # ---- files
    def save(self, folder: Path, fingerprint: str, spec: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / ".vectors.npy.tmp"
        with tmp.open("wb") as f:
            np.save(f, self.vectors)
        tmp.replace(folder / "vectors.npy")
        meta = {"fingerprint": fingerprint, "encoder": spec, "lang": self.lang, "concepts": self.concepts,
                "labels": self.labels, "texts": self.texts, "kinds": self.kinds, "starts": self.starts.tolist()}
        tmp = folder / ".index.json.tmp"
        tmp.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        tmp.replace(folder / "index.json")

    @classmethod
    def load(cls, folder: Path) -> tuple[ConceptIndex, str, str] | None:
        try:
            meta = json.loads((folder / "index.json").read_text(encoding="utf-8"))
            vectors = np.load(folder / "vectors.npy")
        except (OSError, ValueError):
            return None
        if len(vectors) != len(meta["texts"]):
            return None
        idx = cls(meta["concepts"], meta["labels"], meta["texts"], meta["kinds"],
                  np.asarray(meta["starts"], dtype=np.int64), vectors, meta.get("lang", ""))
        return idx, meta["fingerprint"], meta.get("encoder", "")


def _fingerprint(entries: dict[str, list[tuple[str, str]]], enc_fp: str) -> str:
    h = hashlib.sha256(enc_fp.encode())
    for c in sorted(entries):
        h.update(c.encode())
        for kind, t in sorted(entries[c]):
            h.update(f"\x00{kind}\x01{t}".encode())
    return h.hexdigest()[:24]


def vocabulary_texts(ws: Any, vocab: str) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """lang -> concept -> [(kind, text)] for the concepts of a vocabulary graph ('' = untagged)."""
    graph = ws.iris.vocab_graph(vocab)
    if graph not in ws.store.graphs():
        known = sorted(g.rsplit("/", 1)[-1] for g in ws.store.graphs() if "/graph/vocab/" in g)
        raise ConfigError(f"no vocabulary '{vocab}' in the graph (loaded: {', '.join(known) or 'none'}); "
                          f"run 'iconoscope vocab load {vocab} PATH' first")
    res = ws.store.select(queries.load("mm_concept_texts", graph=queries.IRI(graph)))
    out: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for concept, kind, text, lang in res.rows:
        if concept is None or text is None or not text.value.strip():
            continue
        out[(lang.value if lang is not None else "").lower()][concept.value].append((kind.value, text.value))  # type: ignore[union-attr]
    return out


def notations(ws: Any, vocab: str) -> dict[str, str]:
    res = ws.store.select(queries.load("mm_concept_notations", graph=queries.IRI(ws.iris.vocab_graph(vocab))))
    return {c.value: n.value for c, n in res.rows if c is not None and n is not None}


def vocabulary_languages(by_lang: dict[str, Any]) -> list[str]:
    return sorted(lang for lang in by_lang if lang)


def concept_index(ws: Any, vocab: str, lang: str | None = None, encoder: str = DEFAULT_TEXT_ENCODER,
                  progress: bool = True) -> ConceptIndex:
    """The (cached) index of ``vocab`` in ``lang`` (None: the workspace's first language the vocabulary has)."""
    from iconoscope.workspace import slug

    by_lang = vocabulary_texts(ws, vocab)
    if not by_lang:
        raise IconoscopeError(f"vocabulary '{vocab}' has no labelled skos:Concept")
    langs = vocabulary_languages(by_lang)
    if lang is None:
        lang = next((lg for lg in ws.config.languages if lg in by_lang), langs[0] if langs else "")
    lang = lang.lower()
    if lang not in by_lang:
        raise ConfigError(f"vocabulary '{vocab}' has no labels in language {lang!r} "
                          f"(it has: {', '.join(langs) or 'untagged labels only'})")
    entries = {c: list(ts) for c, ts in by_lang[lang].items()}
    for c, ts in by_lang.get("", {}).items():  # untagged labels (notations-as-labels, keywords) count for all
        entries.setdefault(c, []).extend(ts)
    enc = get_text_encoder(encoder)
    fp = _fingerprint(entries, enc.fingerprint())
    folder = ws.cache_dir("concepts", slug(vocab), slug(enc.spec), slug(lang or "und"))
    cached = ConceptIndex.load(folder)
    if cached is not None and cached[1] == fp:
        return cached[0]
    labels = {c: next((t for k, t in ts if k == "pref"), ts[0][1]) for c, ts in entries.items()}
    idx = ConceptIndex.build(entries, labels, lambda texts: enc.embed(texts, progress=progress), lang,
                             old=cached[0] if cached is not None else None)
    idx.save(folder, fp, enc.spec)
    return idx


@dataclass(frozen=True)
class Suggestion:
    rank: int
    concept: str
    notation: str | None
    label: str
    score: float
    matched: str


def suggest_concepts(ws: Any, text: str, vocab: str, k: int = 10, lang: str | None = None,
                     encoder: str = DEFAULT_TEXT_ENCODER, progress: bool = True) -> tuple[str, list[Suggestion]]:
    """(language used, top-k concepts) for ``text``; the language is guessed from the text when not given."""
    if not text.strip():
        raise ConfigError("concepts suggest: the text is empty")
    if lang is None:
        langs = vocabulary_languages(vocabulary_texts(ws, vocab))
        default = next((lg for lg in ws.config.languages if lg in langs), langs[0] if langs else None)
        lang = guess_language(text, langs, default)
    idx = concept_index(ws, vocab, lang, encoder, progress)
    q = get_text_encoder(encoder).embed([text])
    notes = notations(ws, vocab)
    hits = idx.search(q, k)[0]
    return idx.lang, [Suggestion(i + 1, idx.concepts[c], notes.get(idx.concepts[c]), idx.labels[c], s,
                                 idx.texts[t]) for i, (c, s, t) in enumerate(hits)]
