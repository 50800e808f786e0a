"""Ranked search: label -> concept (and below) -> records by score; the same ranking as the MonaLIA query."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_enrich_helpers as H

from iconoscope.enrich import write as W
from iconoscope.enrich.concepts import fold, narrower_closure, resolve_concepts
from iconoscope.enrich.search import search, top_order

MONALIA = Path(__file__).resolve().parents[1] / "queries" / "monalia_ranked.rq"


@pytest.fixture
def ws(workspace: Any) -> Any:
    H.build_graph(workspace)
    imgs = H.all_images()
    W.write_run(workspace, "demo", imgs, [H.concept(workspace, c) for c in H.CATEGORIES], H.scores_for(imgs), 1,
                show_progress=False)
    return workspace


def monalia(ws: Any, label: str, lang: str, classifier: str, min_score: float) -> list[tuple[str, float, bool]]:
    text = MONALIA.read_text(encoding="utf-8")
    line = f'VALUES (?label ?classifier ?minScore) {{ ("{label}"@{lang} "{classifier}" "{min_score!r}"^^xsd:float) }}'
    text, n = re.subn(r"VALUES \(\?label \?classifier \?minScore\) \{[^\n]*\}", line, text)
    assert n == 1, "the shipped query's VALUES line changed shape"
    res = ws.store.select(text)
    return [(ws.iris.id_of(r["record"], "record"), float(np.float32(r["best"])), bool(r["annotated"]))
            for r in res.dicts()]


def test_label_resolution(ws: Any) -> None:
    chien = H.concept(ws, "chien")
    assert resolve_concepts(ws, "chien", "fr") == [chien]
    assert resolve_concepts(ws, "Chien") == [chien]          # any configured language, any case
    assert resolve_concepts(ws, "dog", "en") == [chien]
    assert resolve_concepts(ws, "levrier", "fr") == [H.concept(ws, "levrier")]  # accents folded (slow path)
    assert resolve_concepts(ws, chien) == [chien]             # an IRI
    assert resolve_concepts(ws, "licorne") == []
    assert set(narrower_closure(ws, [chien])) == {chien, H.concept(ws, "levrier")}
    assert fold("  Lévrier  Afghan ") == "levrier afghan"


@pytest.mark.parametrize(("label", "lang", "min_score"), [("chien", "fr", 0.0), ("chien", "fr", 0.5),
                                                          ("pear", "en", 0.1), ("animal", "fr", 0.3)])
def test_search_agrees_with_the_monalia_query(ws: Any, label: str, lang: str, min_score: float) -> None:
    hits = search(ws, label, lang=lang, min_score=min_score, limit=1000)
    got = [(h.record, float(np.float32(h.score)), h.annotated) for h in hits]
    assert got == monalia(ws, label, lang, "demo", min_score)
    assert len(got) > 3


def test_search_ranks_annotated_and_new_finds(ws: Any) -> None:
    hits = search(ws, "chien", lang="fr", min_score=0.5)
    recs = [h.record for h in hits]
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    dogs = {f"r{i}" for i in range(H.N_RECORDS) if H.truth_of(i) == "chien"}
    assert set(recs) == dogs
    by_rec = {h.record: h for h in hits}
    assert by_rec["r4"].annotated            # annotated with 'lévrier', below 'chien'
    assert by_rec["r0"].annotated and by_rec["r0"].image == "r0"     # the best of r0's two images
    assert by_rec["r0"].concept == H.concept(ws, "chien") and by_rec["r0"].label == "chien"
    # a pomme labelled nothing is a new find for "fruit"
    fruit = {h.record: h for h in search(ws, "fruit", lang="fr", min_score=0.5)}
    assert fruit["r14"].annotated is False and fruit["r14"].concept == H.concept(ws, "pomme")
    low = {h.record: h for h in search(ws, "fruit", lang="fr", min_score=0.0, limit=100)}
    assert low["r9"].annotated is True and low["r9"].score < 0.5   # labelled pomme (wrongly): annotated, low score
    assert "r9" not in {h.record for h in search(ws, "pomme", lang="fr", min_score=0.5)}


def test_paging_and_unknown_labels(ws: Any) -> None:
    full = search(ws, "animal", min_score=0.0, limit=1000)
    assert search(ws, "animal", min_score=0.0, limit=5, offset=5) == full[5:10]
    assert search(ws, "licorne") == []
    assert search(ws, "lévrier", lang="fr") == []      # no classifier scores it (nor anything below it)
    assert search(ws, "chien", classifier="other") == []


def test_top_order_breaks_ties_like_sparql() -> None:
    scores = np.array([0.5, 0.9, 0.5, 0.9, 0.1], np.float32)
    keys = np.array(["e", "d", "c", "b", "a"], dtype=object)
    assert top_order(scores, [keys], 3).tolist() == [3, 1, 2]
    assert top_order(scores, [keys], 10).tolist() == [3, 1, 2, 0, 4]
