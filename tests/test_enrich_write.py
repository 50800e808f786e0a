"""Prediction runs in the graph: shape, atomic replacement, no duplicates, floor, derived index kept equal."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import test_enrich_helpers as H

from iconoscope.enrich import write as W
from iconoscope.enrich.index import ensure_index, index_dir, index_from_graph, indexes_equal, load_index, verify_index
from iconoscope.enrich.runs import latest_run, list_runs
from iconoscope.errors import InputError

PFX = ("PREFIX oa: <http://www.w3.org/ns/oa#> PREFIX ico: <https://w3id.org/iconoscope/ns#> "
       "PREFIX prov: <http://www.w3.org/ns/prov#> ")


def n_annotations(ws: Any) -> int:
    q = PFX + "SELECT (COUNT(DISTINCT ?a) AS ?n) WHERE { ?a a oa:Annotation }"
    return int(ws.store.select(q).rows[0][0].value)


@pytest.fixture
def ws(workspace: Any) -> Any:
    H.build_graph(workspace)
    return workspace


def write(ws: Any, S: np.ndarray | None = None, **kw: Any) -> str:
    imgs = H.all_images()
    S = H.scores_for(imgs) if S is None else S
    return W.write_run(ws, "demo", imgs, [H.concept(ws, c) for c in H.CATEGORIES], S, 1, {"note": "test"},
                       show_progress=False, **kw)


def test_run_shape_follows_the_graph_model(ws: Any) -> None:
    run_id = write(ws, floor=0.0)
    run = latest_run(ws, "demo")
    assert run is not None and run.run_id == run_id and run.graph == ws.iris.run_graph(run_id)
    assert run.model_version == "1" and run.params["note"] == "test" and run.started and run.ended
    n_img, n_cat = len(H.all_images()), len(H.CATEGORIES)
    assert n_annotations(ws) == n_img * n_cat
    # every annotation has exactly the contract's shape, inside the run graph
    q = PFX + f"""SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{run.graph}> {{
        ?a a oa:Annotation ; oa:motivatedBy oa:classifying ; oa:hasTarget ?img ; oa:hasBody ?c ;
           ico:score ?s ; prov:wasGeneratedBy <{run.iri}> . FILTER(datatype(?s) = xsd:float) }} }}"""
    assert int(ws.store.select("PREFIX xsd: <http://www.w3.org/2001/XMLSchema#> " + q).rows[0][0].value) == \
        n_img * n_cat
    q = PFX + f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{run.graph}> {{ <{run.iri}> ico:scoredImage ?i }} }}"
    assert int(ws.store.select(q).rows[0][0].value) == n_img


def test_index_equals_the_graph(ws: Any) -> None:
    write(ws)
    run = latest_run(ws, "demo")
    assert verify_index(ws, run)
    stored = load_index(ws, run.run_id)
    rebuilt = index_from_graph(ws, run)
    assert indexes_equal(stored, rebuilt)
    # the graph holds exactly the float32 values written (no rounding on the way), and nothing under the floor
    imgs = H.all_images()
    S = H.scores_for(imgs)
    expected = np.where((np.float32(W.DEFAULT_FLOOR) <= S) | H.curated_mask(imgs), S, np.nan)
    rows = [imgs.index(ws.iris.id_of(i, "image")) for i in rebuilt.images.tolist()]
    cols = [H.CATEGORIES.index(c.rsplit("/", 1)[1]) for c in rebuilt.categories]
    assert np.array_equal(np.asarray(rebuilt.scores), expected[rows][:, cols], equal_nan=True)
    assert np.isnan(expected).any()


def test_rerun_replaces_without_duplicates(ws: Any) -> None:
    first = write(ws)
    n1 = n_annotations(ws)
    triples1 = ws.store.count(latest_run(ws, "demo").graph)
    second = write(ws)
    assert second != first
    runs = list_runs(ws, "demo")
    assert [r.run_id for r in runs] == [second]
    assert n_annotations(ws) == n1
    assert ws.store.count(runs[0].graph) == triples1
    assert ws.iris.run_graph(first) not in ws.store.graphs()
    assert not index_dir(ws, first).exists() and index_dir(ws, second).exists()


def test_interrupted_run_leaves_the_previous_one(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    first = write(ws)
    before = ws.store.count(ws.iris.run_graph(first))
    real = W._run_lines

    def dying(*args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        for k, chunk in enumerate(real(*args, **kwargs)):
            if k == 10:
                raise KeyboardInterrupt
            yield chunk

    monkeypatch.setattr(W, "_run_lines", dying)
    with pytest.raises(KeyboardInterrupt):
        write(ws, S=H.scores_for(H.all_images(), seed=5))
    runs = list_runs(ws, "demo")
    assert [r.run_id for r in runs] == [first]
    assert ws.store.count(ws.iris.run_graph(first)) == before
    assert not any(g.startswith("urn:iconoscope:staging:") for g in ws.store.graphs(include_staging=True))
    assert sorted(p.name for p in ws.runs_dir().iterdir()) == [index_dir(ws, first).name]
    assert verify_index(ws, runs[0])


def test_floor_and_per_category_floors(ws: Any) -> None:
    imgs = H.all_images()
    S = H.scores_for(imgs)
    chat = H.concept(ws, "chat")
    rep = W.write_run_report(ws, "demo", imgs, [H.concept(ws, c) for c in H.CATEGORIES], S, 1, floor=0.1,
                             floors={chat: 0.05}, show_progress=False)
    idx = load_index(ws, rep.run_id)
    floor = np.array([0.05 if c == "chat" else 0.1 for c in H.CATEGORIES], np.float32)
    # the score of every curated (record, category) pair is kept under the floor: the noise audit needs it
    curated = H.curated_mask(imgs)
    expected = (floor[None, :] <= S) | curated
    assert n_annotations(ws) == int(expected.sum()) == idx.n_annotations == rep.annotations
    assert rep.curated_kept == int((curated & (floor[None, :] > S)).sum()) >= 2    # r3/chien, r9/pomme at least
    assert latest_run(ws, "demo").params["floors"] == {chat: pytest.approx(0.05)}
    W.write_run(ws, "demo", imgs, [H.concept(ws, c) for c in H.CATEGORIES], S, 1, floor=0.1, keep_curated=False,
                show_progress=False)
    assert n_annotations(ws) == int((S >= 0.1).sum())


def test_bad_input_is_refused_with_the_record(ws: Any) -> None:
    imgs = H.all_images()
    cats = [H.concept(ws, c) for c in H.CATEGORIES]
    with pytest.raises(InputError, match="shape"):
        W.write_run(ws, "demo", imgs, cats, np.zeros((2, 2)), 1, show_progress=False)
    S = H.scores_for(imgs)
    S[3, 1] = 1.5
    with pytest.raises(InputError, match=imgs[3]):
        W.write_run(ws, "demo", imgs, cats, S, 1, show_progress=False)
    with pytest.raises(InputError, match="twice"):
        W.write_run(ws, "demo", imgs[:2] + imgs[:1], cats, np.zeros((3, 4)), 1, show_progress=False)
    with pytest.raises(InputError, match="IRI"):
        W.write_run(ws, "demo", imgs[:1], ["not an iri"], np.zeros((1, 1)), 1, show_progress=False)
    assert list_runs(ws, "demo") == []  # nothing half-written


def test_unknown_images_are_skipped_and_counted(ws: Any) -> None:
    imgs = [*H.all_images(), "ghost"]
    S = np.vstack([H.scores_for(H.all_images()), np.full((1, 4), 0.5, np.float32)])
    rep = W.write_run_report(ws, "demo", imgs, [H.concept(ws, c) for c in H.CATEGORIES], S, 1, show_progress=False)
    assert rep.skipped == {"not in the graph": 1} and rep.images == len(H.all_images())


def test_missing_index_is_rebuilt_from_the_graph(ws: Any) -> None:
    import shutil

    write(ws)
    run = latest_run(ws, "demo")
    before = load_index(ws, run.run_id)
    shutil.rmtree(index_dir(ws, run.run_id))
    assert load_index(ws, run.run_id) is None
    after = ensure_index(ws, run)
    assert indexes_equal(before, after) and verify_index(ws, run)


def test_predict_run_uses_out_of_fold_scores_for_training_images(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from iconoscope.learn import classifier as C
    from iconoscope.learn.embed import EmbeddingStore

    imgs = H.all_images()
    S = H.scores_for(imgs)
    fake = H.FakeClassifier(ws, imgs, S)
    monkeypatch.setattr(C, "load_classifier", lambda ws_, name: fake)
    X = np.stack([np.arange(len(imgs), dtype=np.float32), np.zeros(len(imgs), np.float32)], axis=1)
    EmbeddingStore(ws, fake.backbone).append(imgs, [H.record_of_image(i) for i in imgs], X)
    oof = H.write_oof(ws)
    rep = W.predict_run(ws, "demo", floor=0.0, show_progress=False)
    labelled = {i for i in oof.column("image").to_pylist()}
    assert rep.oof_images == len(labelled) and rep.images == len(imgs)
    idx = load_index(ws, rep.run_id)
    row = {ws.iris.id_of(i, "image"): k for k, i in enumerate(idx.images.tolist())}
    oof_rows = oof.to_pylist()
    for r in oof_rows[:12]:
        assert idx.scores[row[r["image"]], idx.column(r["concept"])] == np.float32(r["score"])
    # an unlabelled image (r14 has no curated subject) keeps the model's score
    j = H.CATEGORIES.index("pomme")
    assert idx.scores[row["r14"], idx.column(H.concept(ws, "pomme"))] == S[imgs.index("r14"), j]
    run = latest_run(ws, "demo")
    assert run.params["training_images"] == "out_of_fold" and run.params["oof_images"] == len(labelled)
    # re-running predict: still one run, same number of annotations
    n = n_annotations(ws)
    W.predict_run(ws, "demo", floor=0.0, show_progress=False)
    assert len(list_runs(ws, "demo")) == 1 and n_annotations(ws) == n


def test_field_predictions_have_literal_bodies_and_replace_their_run(ws: Any) -> None:
    write(ws)
    concept_run = latest_run(ws, "demo").run_id
    preds = [W.FieldPrediction(ws.iris.record("r1"), "creator", "Passmore, Deborah", 0.8),
             W.FieldPrediction(ws.iris.record("r1"), "creator", "Newton, Amanda", 0.1)]
    first = W.write_field_run(ws, "mm", preds, 2, {"k": 2})
    q = PFX + ("SELECT ?body ?field ?score WHERE { ?a prov:wasGeneratedBy ?run ; oa:hasBody ?body ; "
               "ico:field ?field ; ico:score ?score . ?run ico:classifier \"mm\" } ORDER BY DESC(?score)")
    rows = ws.store.select(q).dicts()
    assert [(r["body"], r["field"]) for r in rows] == [("Passmore, Deborah", "creator"), ("Newton, Amanda", "creator")]
    second = W.write_field_run(ws, "mm", preds[:1], 3)
    assert second != first and ws.iris.run_graph(first) not in ws.store.graphs()
    assert len(ws.store.select(q).rows) == 1
    assert latest_run(ws, "demo").run_id == concept_run and list_runs(ws, "mm") == []   # not a concept run
    with pytest.raises(InputError, match="outside"):
        W.write_field_run(ws, "mm", [W.FieldPrediction(ws.iris.record("r1"), "creator", "x", 2.0)], 3)


def test_run_report_prints_as_its_summary() -> None:
    """`iconoscope predict` echoes the report: a sentence, as the ingest and vocabulary reports print, not a repr."""
    from iconoscope.enrich.write import RunReport

    rep = RunReport("genera", run_id="genera-1", images=3, categories=2, annotations=5, triples=40)
    assert str(rep) == rep.summary()
    assert str(rep).startswith("run genera-1: 3 images x 2 categories") and "RunReport(" not in str(rep)
