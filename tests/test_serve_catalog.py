"""The web app's read model and review writes, against the graph model (docs/graph-model.md)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import serve_fixtures as F

from iconoscope.graph.terms import nt_float, nt_iri, nt_literal, triple
from iconoscope.graph.vocab import DCTERMS, ICO, OA, PROV, RDF_TYPE
from iconoscope.serve.catalog import Catalog
from iconoscope.serve.errors import BadRequest, NotFound
from iconoscope.serve.review import decide

RUN1 = F.BASE + "run/run-1"


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory):
    w = F.build_workspace(tmp_path_factory.mktemp("serve") / "ws")
    yield w
    w.close()


@pytest.fixture
def cat(ws) -> Catalog:  # type: ignore[no-untyped-def]
    yield Catalog(ws)
    ws.store.drop_graph(ws.iris.review_graph())   # each test starts without decisions


def truth() -> dict[str, F.Rec]:
    return {r.id: r for r in F.records()}


def test_only_the_latest_run_of_a_classifier_is_shown(cat: Catalog) -> None:
    runs = cat.runs()
    assert [(r.iri, r.classifier, r.version) for r in runs] == [(RUN1, "fruit", "2")]
    preds = cat.predictions("r03")
    assert preds and {p.run for p in preds} == {RUN1}
    # two images x four concepts, from run-1 only (run-0 holds as many annotations)
    assert len(preds) == 8
    assert preds == sorted(preds, key=lambda p: -p.score)


def test_concept_search_includes_narrower_concepts_curated_first(cat: Catalog) -> None:
    res = cat.search(concept=F.concept_iri("fruit"), min_score=0.6, limit=50)
    recs = truth()
    curated = {r.id for r in recs.values() if r.curated}
    assert res.total == len(recs)          # every record is curated with, or confidently predicted as, a fruit
    first = [it.id for it in res.items[: len(curated)]]
    assert set(first) == curated and all(it.match == "curated" for it in res.items[: len(curated)])
    rest = res.items[len(curated):]
    assert {it.id for it in rest} == {r.id for r in recs.values() if not r.curated}
    assert [it.score for it in rest] == sorted((it.score for it in rest), reverse=True)
    assert all(it.score is not None and it.score >= 0.6 for it in rest)


def test_concept_search_counts_only_predictions_above_min_score(cat: Catalog) -> None:
    cherry = F.concept_iri("cherry")
    strict = cat.search(concept=cherry, min_score=0.6, limit=50)
    loose = cat.search(concept=cherry, min_score=0.0, limit=50)
    recs = truth()
    expect = {r.id for r in recs.values() if r.truth == "cherry" or r.curated == "cherry"}
    assert {it.id for it in strict.items} == expect
    assert loose.total == len(recs)        # every image has some cherry score
    with pytest.raises(BadRequest, match="min_score"):
        cat.search(concept=cherry, min_score=1.5)


def test_text_search_matches_titles_labels_and_multilingual_subject_text(cat: Catalog) -> None:
    by_title = {it.id for it in cat.search(q="odd identifier").items}
    assert by_title == {"T 13/b é"}
    # 'cerise' is the French label of Cherry and the subject text of cherry records
    cerise = cat.search(q="Cerise", limit=50)
    assert {it.id for it in cerise.items} >= {r.id for r in truth().values() if r.truth == "cherry"}
    # 'malus' is only an altLabel of Apple: records match through curated subjects and predictions
    malus = {it.id for it in cat.search(q="malus", limit=50).items}
    assert malus == {r.id for r in truth().values() if r.truth == "apple" or r.curated == "apple"}


def test_facets_count_the_matching_records_and_filter(cat: Catalog) -> None:
    res = cat.search(limit=50)
    creators = {f.value: f.count for f in res.facets["creator"]}
    expected: dict[str, int] = {}
    for r in F.records():
        expected[r.creator] = expected.get(r.creator, 0) + 1
    assert creators == expected
    one = F.CREATORS[2]
    filtered = cat.search(creator=one, limit=50)
    assert filtered.total == expected[one]
    assert [f.selected for f in filtered.facets["creator"] if f.value == one] == [True]
    decade = cat.search(decade=1930, limit=50)
    assert {it.id for it in decade.items} == {r.id for r in F.records() if 1930 <= r.year < 1940}


def test_record_detail_fields_subjects_images(cat: Catalog) -> None:
    rec = cat.record("r03")
    assert rec.title == "Peach variety no. 3"
    labels = {f.label: f.value for f in rec.fields}
    assert labels["Creator"] == F.records()[2].creator and labels["Variety"] == "Variety 3"
    assert [s.label for s in rec.subjects] == ["Peach"] and rec.subjects[0].origin == "source"
    assert [i.id for i in rec.images] == ["r03", "r03-2"]
    assert all(i.url is None for i in rec.images)       # local paths are never exposed
    assert rec.manifest == "/iiif/r03/manifest"
    odd = cat.record("T 13/b é")
    assert odd.manifest == "/iiif/T%2013%2Fb%20%C3%A9/manifest"
    with pytest.raises(NotFound, match="no such record"):
        cat.record("nope")


def test_review_queue_kinds(cat: Catalog) -> None:
    recs = truth()
    sugg = cat.review_queue("suggestions", limit=200)
    curated_pairs = {(r.id, F.concept_iri(r.curated)) for r in recs.values() if r.curated}
    assert sugg.items and not any((i.record, i.concept) in curated_pairs for i in sugg.items)
    assert [i.score for i in sugg.items] == sorted((i.score for i in sugg.items), reverse=True)

    silence = cat.review_queue("silence", limit=200)
    got = {(i.record, i.concept) for i in silence.items}
    # uncurated records' true subjects, and r08's true 'cherry' (it is curated as 'pear')
    want = {(r.id, F.concept_iri(r.truth)) for r in recs.values() if r.curated != r.truth}
    assert got == want and all(i.score >= i.threshold for i in silence.items)

    noise = cat.review_queue("noise", limit=200)
    assert [(i.record, i.concept) for i in noise.items] == [("r08", F.concept_iri("pear"))]

    only_pear = cat.review_queue("silence", category=F.concept_iri("pear"))
    assert {i.concept for i in only_pear.items} == {F.concept_iri("pear")}
    page = cat.review_queue("suggestions", limit=3)
    assert len(page.items) == 3 and page.has_more


def test_audit_thresholds_come_from_out_of_fold_scores(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    """With enrichment's class_thresholds (mean out-of-fold score of positives / negatives), silence and noise
    of each category use them; without, the classifier's thresholds.json; else 0.5."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    pear = F.concept_iri("pear")
    mdir = Path(ws.root) / "models" / "fruit"
    suggestions = cat.review_queue("suggestions", category=pear, limit=200).items
    top = sorted(i.score for i in suggestions)[-3:]
    assert len(top) == 3
    t_pos = (top[0] + top[1]) / 2                   # between the third and second best suggestions
    noise_score = cat.review_queue("noise", limit=1).items[0].score    # r08's curated pear
    t_neg = noise_score - 0.01                        # just below it: r08 is no longer noise
    oof = pa.table({"record": list("abcd"), "image": list("abcd"), "concept": [pear] * 4,
                    "score": [t_pos - 0.01, t_pos + 0.01, t_neg - 0.01, t_neg + 0.01], "label": [1, 1, 0, 0],
                    "fold": [0, 1, 0, 1]})
    pq.write_table(oof, mdir / "oof_scores.parquet")
    try:
        silence = cat.review_queue("silence", category=pear, limit=200).items
        assert all(i.threshold == pytest.approx(t_pos, abs=1e-6) for i in silence)
        assert [i.annotation for i in silence] == [i.annotation for i in suggestions if i.score >= t_pos]
        assert len(silence) == 2
        assert cat.review_queue("noise", limit=200).items == []
        # categories without out-of-fold rows get no silence at all
        assert cat.review_queue("silence", category=F.concept_iri("apple"), limit=200).items == []
    finally:
        (mdir / "oof_scores.parquet").unlink()
    (mdir / "thresholds.json").write_text(json.dumps({"thresholds": {pear: 0.3}}), encoding="utf-8")
    try:
        assert {i.threshold for i in cat.review_queue("silence", category=pear, limit=200).items} == {0.3}
        # the learning stage's layout: parallel lists
        (mdir / "thresholds.json").write_text(json.dumps({"categories": [F.concept_iri("apple"), pear],
                                                          "thresholds": [0.2, 0.25]}), encoding="utf-8")
        assert {i.threshold for i in cat.review_queue("silence", category=pear, limit=200).items} == {0.25}
    finally:
        (mdir / "thresholds.json").unlink()


def test_a_curated_narrower_subject_counts_for_its_broader_category(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    """A classifier of 'Fruit' must not suggest 'Fruit' for a record curated as 'Apple' (as labels count it)."""
    run, g = ws.iris.run("top-1"), ws.iris.run_graph("top-1")
    lines = [triple(nt_iri(run), nt_iri(RDF_TYPE), nt_iri(PROV + "Activity")),
             triple(nt_iri(run), nt_iri(ICO + "classifier"), nt_literal("fruit-top")),
             triple(nt_iri(run), nt_iri(PROV + "endedAtTime"),
                    nt_literal("2024-06-01T00:00:00Z", datatype="http://www.w3.org/2001/XMLSchema#dateTime"))]
    for r in F.records():
        a = nt_iri(ws.iris.annotation("top-1", r.images[0]))
        lines += [triple(a, nt_iri(RDF_TYPE), nt_iri(OA + "Annotation")),
                  triple(a, nt_iri(OA + "hasTarget"), nt_iri(ws.iris.image(r.images[0]))),
                  triple(a, nt_iri(OA + "hasBody"), nt_iri(F.concept_iri("fruit"))),
                  triple(a, nt_iri(ICO + "score"), nt_float(0.9)),
                  triple(a, nt_iri(PROV + "wasGeneratedBy"), nt_iri(run))]
    ws.store.replace_graph(g, lines)
    cat.invalidate()
    try:
        silence = cat.review_queue("silence", classifier="fruit-top", limit=100).items
        assert {i.record for i in silence} == {r.id for r in F.records() if not r.curated}
        preds = {p.concept: p.curated for p in cat.predictions("r01")}
        assert preds[F.concept_iri("fruit")] is True and preds[F.concept_iri("pear")] is False
    finally:
        ws.store.drop_graph(g)
        cat.invalidate()


def review_triples(ws) -> set[str]:  # type: ignore[no-untyped-def]
    return set(ws.store.export("nt", graph=ws.iris.review_graph()).decode().splitlines())


def test_accept_writes_the_graph_model_and_never_touches_other_graphs(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    before = {g: ws.store.export("nt", graph=g) for g in ws.store.graphs()}
    item = cat.review_queue("silence", limit=1).items[0]
    out = decide(ws, item.annotation, "accepted", "Ada Lovelace")
    assert (out.record, out.concept, out.status, out.by) == (item.record, item.concept, "accepted", "Ada Lovelace")
    ann, rec, concept = nt_iri(item.annotation), nt_iri(ws.iris.record(item.record)), nt_iri(item.concept)
    triples = review_triples(ws)
    assert f'{ann} <{ICO}reviewStatus> "accepted" .' in triples
    assert f"{ann} <{PROV}wasAttributedTo> <{F.BASE}agent/Ada%20Lovelace> ." in triples
    assert any(t.startswith(f"{ann} <{DCTERMS}modified> ") and "XMLSchema#dateTime" in t for t in triples)
    assert f"{rec} <{DCTERMS}subject> {concept} ." in triples
    for g, data in before.items():
        assert ws.store.export("nt", graph=g) == data, f"{g} was modified"
    # the subject is now curated: shown as such, gone from the queue
    assert any(s.iri == item.concept and s.origin == "review" for s in cat.subjects(ws.iris.record(item.record)))
    assert item.annotation not in {i.annotation for i in cat.review_queue("silence", limit=200).items}
    pred = next(p for p in cat.predictions(item.record) if p.annotation == item.annotation)
    assert pred.status == "accepted" and pred.curated


def test_reject_then_accept_again_keeps_one_decision(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    item = cat.review_queue("silence", limit=1).items[0]
    decide(ws, item.annotation, "accepted", "a")
    decide(ws, item.annotation, "rejected", "b")
    triples = review_triples(ws)
    ann = nt_iri(item.annotation)
    assert sum(f"<{ICO}reviewStatus>" in t for t in triples) == 1
    assert f'{ann} <{ICO}reviewStatus> "rejected" .' in triples
    assert not any(f"<{DCTERMS}subject>" in t for t in triples)     # the accepted subject is withdrawn
    # a rejected prediction no longer counts in search
    hits = cat.search(concept=item.concept, min_score=0.0, limit=100)
    assert item.record not in {i.id for i in hits.items if i.match != "curated"}
    decide(ws, item.annotation, "accepted", "c")
    assert sum(f"<{ICO}reviewStatus>" in t for t in review_triples(ws)) == 1


def test_a_decision_outlives_a_new_prediction_run(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    item = cat.review_queue("silence", limit=1).items[0]
    decide(ws, item.annotation, "rejected", "a")
    img = ws.iris.image(item.image)
    run = ws.iris.run("run-2")
    new_ann = ws.iris.annotation("run-2", "x")
    lines = [triple(nt_iri(run), nt_iri(RDF_TYPE), nt_iri(PROV + "Activity")),
             triple(nt_iri(run), nt_iri(ICO + "classifier"), nt_literal("fruit")),
             triple(nt_iri(run), nt_iri(PROV + "endedAtTime"),
                    nt_literal("2024-06-01T00:00:00Z", datatype="http://www.w3.org/2001/XMLSchema#dateTime")),
             triple(nt_iri(new_ann), nt_iri(RDF_TYPE), nt_iri(OA + "Annotation")),
             triple(nt_iri(new_ann), nt_iri(OA + "hasTarget"), nt_iri(img)),
             triple(nt_iri(new_ann), nt_iri(OA + "hasBody"), nt_iri(item.concept)),
             triple(nt_iri(new_ann), nt_iri(ICO + "score"), nt_float(0.99)),
             triple(nt_iri(new_ann), nt_iri(PROV + "wasGeneratedBy"), nt_iri(run))]
    g = ws.iris.run_graph("run-2")
    ws.store.replace_graph(g, lines)
    try:
        assert [r.iri for r in cat.runs()] == [run]
        preds = cat.predictions(item.record)
        assert [(p.annotation, p.status) for p in preds] == [(new_ann, "rejected")]
        assert cat.review_queue("silence", limit=200).items == []
    finally:
        ws.store.drop_graph(g)


def test_bad_decisions_are_refused_with_a_reason(ws, cat: Catalog) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFound, match="no prediction"):
        decide(ws, F.BASE + "annotation/run-1/nope", "accepted", "a")
    with pytest.raises(BadRequest, match="decision"):
        decide(ws, F.BASE + "annotation/run-1/nope", "maybe", "a")
    with pytest.raises(BadRequest, match="not an absolute IRI"):
        decide(ws, "https://x/a b>", "accepted", "a")
    with pytest.raises(BadRequest, match="user name"):
        decide(ws, cat.review_queue(limit=1).items[0].annotation, "accepted", "<b>x</b>")
    # a prediction of a field value (literal body) cannot become a curated subject
    a = ws.iris.annotation("run-1", "field")
    g = ws.iris.run_graph("run-1")
    ws.store.add_to_graph(g, [triple(nt_iri(a), nt_iri(RDF_TYPE), nt_iri(OA + "Annotation")),
                              triple(nt_iri(a), nt_iri(OA + "hasTarget"), nt_iri(ws.iris.image("r01"))),
                              triple(nt_iri(a), nt_iri(OA + "hasBody"), nt_literal("Passmore")),
                              triple(nt_iri(a), nt_iri(ICO + "field"), nt_literal("creator")),
                              triple(nt_iri(a), nt_iri(ICO + "score"), nt_float(0.7)),
                              triple(nt_iri(a), nt_iri(PROV + "wasGeneratedBy"), nt_iri(RUN1))])
    try:
        with pytest.raises(BadRequest, match="field value"):
            decide(ws, a, "accepted", "a")
        field = [p for p in cat.predictions("r01") if p.field]
        assert [(p.field, p.label, p.concept) for p in field] == [("creator", "Passmore", None)]
        assert review_triples(ws) == set()
    finally:
        ws.store.update(f"DELETE WHERE {{ GRAPH <{g}> {{ <{a}> ?p ?o }} }}")


def test_noise_and_silence_come_from_the_enrichment_audit_when_it_can(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A run written by the enrichment stage's writer, with out-of-fold thresholds: the queue shows the audit's
    lists (method 'audit'), they agree with the server's own reading of the graph, and decisions apply."""
    write = pytest.importorskip("iconoscope.enrich.write")
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iconoscope.serve import integrations

    ws = F.build_workspace(tmp_path / "ws")
    try:
        for g in ("run-0", "run-1"):
            ws.store.drop_graph(ws.iris.run_graph(g))
        recs = F.records()
        cats = [F.concept_iri(c) for c in F.CONCEPTS]
        images = [(r.id, img) for r in recs for img in r.images]
        rng = np.random.default_rng(3)
        S = np.array([[rng.uniform(0.6, 0.95) if c == next(x for x in recs if x.id == rid).truth
                       else rng.uniform(0.02, 0.4) for c in F.CONCEPTS] for rid, _img in images], np.float32)
        write.write_run(ws, "fruit", [img for _r, img in images], cats, S, model_version=1, floor=0.0,
                        records=[rid for rid, _img in images], show_progress=False)
        t_pos, t_neg = 0.7, 0.45
        n = len(cats)
        oof = pa.table({"record": ["a", "b", "c", "d"] * n, "image": ["a", "b", "c", "d"] * n,
                        "concept": [c for c in cats for _ in range(4)],
                        "score": [t_pos - 0.05, t_pos + 0.05, t_neg - 0.05, t_neg + 0.05] * n,
                        "label": [1, 1, 0, 0] * n, "fold": [0, 1, 0, 1] * n})
        pq.write_table(oof, ws.model_dir("fruit") / "oof_scores.parquet")
        # expectation, from the score matrix: per record, the best image
        best: dict[tuple[str, str], float] = {}
        for (rid, _img), row in zip(images, S, strict=True):
            for c, s in zip(cats, row.tolist(), strict=True):
                best[(rid, c)] = max(best.get((rid, c), 0.0), s)
        curated = {(r.id, F.concept_iri(r.curated)) for r in recs if r.curated}
        want_silence = {k for k, s in best.items() if k not in curated and s >= t_pos - 1e-6}
        want_noise = {k for k, s in best.items() if k in curated and s <= t_neg + 1e-6}
        assert want_silence and want_noise

        cat = Catalog(ws)
        silence = cat.review_queue("silence", limit=100)
        noise = cat.review_queue("noise", limit=100)
        assert silence.method == "audit" and noise.method == "audit"
        assert {(i.record, i.concept) for i in silence.items} == want_silence
        assert {(i.record, i.concept) for i in noise.items} == want_noise
        assert all(i.threshold == pytest.approx(t_pos) for i in silence.items)
        # the server's own reading of the graph agrees
        real = integrations.optional_function
        monkeypatch.setattr(integrations, "optional_function",
                            lambda module, attr: None if attr == "audit" else real(module, attr))
        plain = Catalog(ws)
        s2, n2 = plain.review_queue("silence", limit=100), plain.review_queue("noise", limit=100)
        assert s2.method == "graph" and {(i.record, i.concept) for i in s2.items} == want_silence
        assert {(i.record, i.concept) for i in n2.items} == want_noise
        monkeypatch.undo()
        # text search (the enrichment stage's ranked search merged with the server's) on the same run
        cherry = F.concept_iri("cherry")
        hits = {i.id for i in cat.search(q="cherry", min_score=0.6, limit=100).items}
        assert hits == {r.id for r in recs if r.curated == "cherry" or best[(r.id, cherry)] >= 0.6
                        or "cherry" in r.title.lower()}
        ranked = integrations.search(ws, "cherry", None, 0.6)       # the enrichment stage's answer, via the adapter
        assert ranked and {rid for rid, _ in ranked} <= hits
        # a decision takes the item out of the audit's list at once
        item = silence.items[0]
        decide(ws, item.annotation, "rejected", "a")
        after = Catalog(ws).review_queue("silence", limit=100)
        assert after.method == "audit"
        assert {(i.record, i.concept) for i in after.items} == want_silence - {(item.record, item.concept)}
    finally:
        ws.close()
