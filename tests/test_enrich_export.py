"""Export (CSV, JSON-LD, Turtle parse back to the run graph), related-link suggestions, record predictions."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rdflib
import rdflib.compare
import test_enrich_helpers as H

from iconoscope.enrich import write as W
from iconoscope.enrich.export import CSV_COLUMNS, export_to_string
from iconoscope.enrich.predictions import record_predictions
from iconoscope.enrich.related import apply_related, odds_ratio, suggest_related, write_suggestions_csv
from iconoscope.enrich.runs import latest_run
from iconoscope.errors import ConfigError, InputError


@pytest.fixture
def ws(workspace: Any) -> Any:
    H.build_graph(workspace)
    H.write_oof(workspace)
    imgs = H.all_images()
    W.write_run(workspace, "demo", imgs, [H.concept(workspace, c) for c in H.CATEGORIES], H.scores_for(imgs), 3,
                {"backbone": "fake"}, show_progress=False)
    return workspace


def run_graph(ws: Any) -> rdflib.Graph:
    g = rdflib.Graph()
    g.parse(data=ws.store.export("nt", graph=latest_run(ws, "demo").graph).decode("utf-8"), format="nt")
    return g


def test_csv_export(ws: Any) -> None:
    text = export_to_string(ws, "demo", "csv", lang="fr")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert list(rows[0]) == CSV_COLUMNS
    run = latest_run(ws, "demo")
    idx_n = sum(1 for _ in run_graph(ws).subjects(rdflib.RDF.type, rdflib.URIRef("http://www.w3.org/ns/oa#Annotation")))
    assert len(rows) == idx_n
    assert {r["model"] for r in rows} == {"demo"} and {r["model_version"] for r in rows} == {"3"}
    assert {r["run"] for r in rows} == {run.run_id}
    r0 = [r for r in rows if r["image"] == "r0-2"]
    assert r0 and all(r["record"] == "r0" for r in r0)
    chien = next(r for r in rows if r["image"] == "r0" and r["concept"] == H.concept(ws, "chien"))
    assert chien["label"] == "chien"
    S = H.scores_for(H.all_images())
    assert np.float32(chien["score"]) == S[H.all_images().index("r0"), 0]
    assert [(r["record"], r["image"], r["concept"]) for r in rows] == sorted(
        (r["record"], r["image"], r["concept"]) for r in rows)


@pytest.mark.parametrize(("fmt", "rdf_format"), [("ttl", "turtle"), ("jsonld", "json-ld")])
def test_rdf_exports_parse_back_to_the_run_graph(ws: Any, fmt: str, rdf_format: str) -> None:
    text = export_to_string(ws, "demo", fmt)
    g = rdflib.Graph()
    g.parse(data=text, format=rdf_format)
    expected = run_graph(ws)
    assert len(g) == len(expected) > 100
    assert rdflib.compare.isomorphic(g, expected)
    if fmt == "jsonld":
        doc = json.loads(text)
        assert "@context" in doc and isinstance(doc["@graph"], list)


def test_export_errors(ws: Any) -> None:
    with pytest.raises(ConfigError, match="--format"):
        export_to_string(ws, "demo", "xml")
    with pytest.raises(ConfigError):
        export_to_string(ws, "nothing", "csv")


def test_record_predictions(ws: Any) -> None:
    preds = record_predictions(ws, "r0", lang="fr")
    assert {p.image for p in preds} == {"r0", "r0-2"}
    assert preds[0].concept == H.concept(ws, "chien") and preds[0].annotated and preds[0].image == "r0"
    assert [p.score for p in preds] == sorted((p.score for p in preds), reverse=True)
    assert record_predictions(ws, "nope") == []


def test_odds_ratio() -> None:
    ratio, low = odds_ratio(30, 40, 40, 1000)
    assert ratio > 50 and low > 1
    ratio, low = odds_ratio(2, 100, 100, 1000)
    assert ratio < 1 and low < 1


def _write_cooccurring_subjects(ws: Any) -> None:
    """Records 0..15 that show a chien also get a curated 'chat' (a pair that co-occurs far above chance)."""
    from iconoscope.graph.terms import nt_iri
    from iconoscope.graph.vocab import DCTERMS

    lines = [f"{nt_iri(ws.iris.record(f'r{i}'))} {nt_iri(DCTERMS + 'subject')} {nt_iri(H.concept(ws, 'chat'))} .\n"
             for i in range(0, 40, 4) if i not in H.SWAPPED]
    ws.store.replace_graph(ws.iris.source_graph("extra"), lines)


def test_suggest_and_apply_related(ws: Any, tmp_path: Path) -> None:
    _write_cooccurring_subjects(ws)
    sugg = suggest_related(ws, "demo", min_count=5)
    pairs = {frozenset((s.concept_a, s.concept_b)): s for s in sugg}
    chien_chat = pairs[frozenset((H.concept(ws, "chien"), H.concept(ws, "chat")))]
    assert "cooccurrence" in chien_chat.evidence and chien_chat.n_ab >= 9 and chien_chat.odds_ratio_low > 1
    assert frozenset((H.concept(ws, "pomme"), H.concept(ws, "poire"))) not in pairs
    # model confusion (out-of-fold): r3, labelled chien, scores poire above poire's silence threshold
    loose = {frozenset((s.concept_a, s.concept_b)): s for s in suggest_related(ws, "demo", min_count=1, min_rate=0)}
    chien_poire = loose[frozenset((H.concept(ws, "chien"), H.concept(ws, "poire")))]
    assert "confusion" in chien_poire.evidence and chien_poire.confused_ab + chien_poire.confused_ba == 1
    out = tmp_path / "pairs.csv"
    with open(out, "w", encoding="utf-8", newline="") as f:
        write_suggestions_csv(sugg, f)
    text = out.read_text(encoding="utf-8").splitlines()
    text = [text[0]] + [line[:-1] + "1" if "chien" in line and "chat" in line else line for line in text[1:]]
    out.write_text("\n".join(text) + "\n", encoding="utf-8")
    assert apply_related(ws, "demo", out, user="ana") == 1
    q = ("PREFIX skos: <http://www.w3.org/2004/02/skos/core#> SELECT ?a ?b WHERE { GRAPH <"
         + ws.iris.rules_graph("related-demo") + "> { ?a skos:related ?b } }")
    links = {(str(a), str(b)) for a, b in ws.store.select(q).rows}
    assert links == {(H.concept(ws, "chien"), H.concept(ws, "chat")), (H.concept(ws, "chat"), H.concept(ws, "chien"))}
    prov = ws.store.select("PREFIX prov: <http://www.w3.org/ns/prov#> PREFIX ico: <https://w3id.org/iconoscope/ns#> "
                           "SELECT ?act ?ev WHERE { ?l prov:wasGeneratedBy ?act ; ico:evidence ?ev . "
                           "?act ico:rule \"suggest-related\" }").dicts()
    assert len(prov) == 1 and json.loads(prov[0]["ev"])["evidence"].startswith("cooccurrence")
    # applied again: no duplicate link; the pair is now linked, so it is no longer suggested
    apply_related(ws, "demo", out)
    assert {(str(a), str(b)) for a, b in ws.store.select(q).rows} == links
    assert frozenset((H.concept(ws, "chien"), H.concept(ws, "chat"))) not in {
        frozenset((s.concept_a, s.concept_b)) for s in suggest_related(ws, "demo", min_count=5)}
    # the runs are untouched: the rule's activity is not a prediction run
    assert latest_run(ws, "demo").model_version == "3"


def test_apply_refuses_unknown_concepts_with_the_line(ws: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text(f"concept_a,concept_b\n{H.concept(ws, 'chien')},{H.concept(ws, 'chat')}\n"
                   f"{H.concept(ws, 'chien')},https://example.org/nope\n", encoding="utf-8")
    with pytest.raises(InputError, match="line 3"):
        apply_related(ws, "demo", bad)
    q = "PREFIX skos: <http://www.w3.org/2004/02/skos/core#> ASK { ?a skos:related ?b }"
    assert not ws.store.ask(q)       # nothing written
    bad.write_text("a,b\nx,y\n", encoding="utf-8")
    with pytest.raises(InputError, match="concept_a"):
        apply_related(ws, "demo", bad)
