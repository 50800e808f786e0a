"""Multimodal stage on a real workspace graph: train, eval (paper protocol), predict, fill; a curator's value is
never replaced; missing inputs at prediction time."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iconoscope.errors import ConfigError, IconoscopeError, InputError
from iconoscope.graph.terms import nt_iri, nt_literal, triple
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE
from iconoscope.workspace import Workspace

BACKBONE = "test:vectors"
ARTISTS = {"A": ("Malus", 1890), "B": ("Prunus", 1900), "C": ("Pyrus", 1910)}

CONFIG = """
[collection]
name = "t"
base_iri = "https://example.org/t/"
languages = ["en"]

[store]
kind = "oxigraph"
path = "graph"

[classifiers.mm]
head = "multimodal"
backbone = "{backbone}"
inputs = ["image", "field:genus"]
targets = ["creator", "date:10"]
folds = 3
epochs = 15
image_units = 32
meta_units = 16
shared_units = 64
lr = 0.003
subsets = [0, 50]

[classifiers.meta]
head = "multimodal"
inputs = ["field:genus", "set:field:material"]
targets = ["creator"]
separator = {{ "field:material" = ", " }}
folds = 3
epochs = 10
meta_units = 16
shared_units = 32

[classifiers.plain]
categories = ["http://example.org/c"]
"""


def _make(root: Path, n: int = 240, seed: int = 0) -> Workspace:
    """Artist shows (noisily) in the image vector and, through the genus they paint, in the metadata."""
    root.mkdir(parents=True)
    (root / "iconoscope.toml").write_text(CONFIG.format(backbone=BACKBONE), encoding="utf-8")
    ws = Workspace(root)
    rng = np.random.default_rng(seed)
    lines, ids, recs, vecs = [], [], [], []
    for i in range(n):
        rid = f"r{i:03d}"
        art = "ABC"[i % 3]
        genus, decade = ARTISTS[art]
        if rng.random() < 0.3:
            genus = str(rng.choice(["Malus", "Prunus", "Pyrus"]))
        r, img = nt_iri(ws.iris.record(rid)), nt_iri(ws.iris.image(rid))
        lines += [triple(r, nt_iri(RDF_TYPE), nt_iri(ICO + "Record")),
                  triple(r, nt_iri(DCTERMS + "identifier"), nt_literal(rid)),
                  triple(r, nt_iri(ICO + "source"), nt_literal("s")),
                  triple(r, nt_iri(ws.iris.field("genus")), nt_literal(genus)),
                  triple(r, nt_iri(ws.iris.field("material")), nt_literal("paper, ink" if art == "A" else "paper")),
                  triple(r, nt_iri(ICO + "image"), img),
                  triple(img, nt_iri(RDF_TYPE), nt_iri(ICO + "Image"))]
        if i % 10 != 0:  # every tenth record lacks a creator: those are the ones to fill
            lines.append(triple(r, nt_iri(DCTERMS + "creator"), nt_literal(art)))
        if i % 7 != 0:
            year = decade + int(rng.integers(0, 10))
            lines.append(triple(r, nt_iri(DCTERMS + "created"), nt_literal(f"ca. {year}")))
        if i != 5:  # record r005 was never embedded
            v = rng.normal(0, 1, 6).astype(np.float32)
            v["ABC".index(art)] += 1.5
            ids.append(rid)
            recs.append(rid)
            vecs.append(v)
    ws.store.replace_graph(ws.iris.source_graph("s"), lines)
    from iconoscope.learn.embed import EmbeddingStore

    EmbeddingStore(ws, BACKBONE).append(ids, recs, np.stack(vecs))
    return ws


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from iconoscope.learn.multimodal import train_multimodal

    ws = _make(tmp_path_factory.mktemp("mm") / "ws")
    card = train_multimodal(ws, "mm", progress=False)
    yield ws, card
    ws.close()


def _source_triples(ws: Workspace) -> set[str]:
    return set(ws.store.export("nt", ws.iris.source_graph("s")).decode().splitlines())


def test_train_writes_model_card_with_out_of_fold_scores(trained):
    ws, card = trained
    folder = ws.model_dir("mm")
    assert (folder / "model.pt").is_file() and (folder / "oof.npz").is_file()
    on_disk = json.loads((folder / "model_card.json").read_text())
    assert on_disk["version"] == card["version"] == 1
    creator = card["tasks"]["creator"]
    assert creator["classes"] == 3 and creator["labelled"] == 216  # 240 minus every tenth
    assert 0.7 < creator["cv"]["top1"] <= 1.0  # image + genus both carry the artist
    assert card["tasks"]["date"]["labelled"] == 240 - len(range(0, 240, 7))
    assert card["inputs_present"]["image"] == 239
    assert "Model card" in (folder / "model_card.md").read_text()


def test_compare_single_input_reports_both_models_on_the_same_folds(trained, tmp_path):
    from iconoscope.learn.multimodal import eval_multimodal

    ws, _ = trained
    rep = eval_multimodal(ws, "mm", tmp_path / "rep", compare_single_input=True, progress=False)
    assert set(rep.models) == {"image-only", "multimodal"}
    full, img = rep.models["multimodal"]["creator"][0], rep.models["image-only"]["creator"][0]
    assert full["records"] == img["records"] == 216 and len(full["folds"]) == 3
    for k in ("top1", "top1_std", "macro_p", "macro_r", "macro_f1"):
        assert k in full and k in img
    gain = rep.gains["creator"][0]
    assert gain["top1"] == pytest.approx(full["top1"] - img["top1"], abs=1e-9)
    assert gain["top1"] > 0  # the genus adds what the noisy image vector lacks
    assert rep.models["multimodal"]["creator"][1]["min_count"] == 50
    cm = (tmp_path / "rep" / "confusion_multimodal_creator.csv").read_text().splitlines()
    assert cm[0].split(",")[1:] == ["A", "B", "C"]
    assert sum(int(x) for line in cm[1:] for x in line.split(",")[1:]) == 216
    payload = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert payload["compare_single_input"] is True and "gain" in rep.text()
    # the image-only scores are kept and reused while nothing they depend on changes
    cached = ws.model_dir("mm") / "oof_image_only.npz"
    mtime = cached.stat().st_mtime_ns
    rep2 = eval_multimodal(ws, "mm", tmp_path / "rep2", compare_single_input=True, progress=False)
    assert cached.stat().st_mtime_ns == mtime
    assert rep2.models["image-only"]["creator"][0]["top1"] == img["top1"]


def test_predict_suggests_only_missing_fields_and_never_touches_curated_values(trained):
    from iconoscope.learn.multimodal import predict_multimodal

    ws, _ = trained
    before = _source_triples(ws)
    rep = predict_multimodal(ws, "mm", progress=False)
    assert _source_triples(ws) == before  # nothing written into the source graph
    assert rep.filled["creator"] == 24 and rep.already["creator"] == 216
    assert rep.suggestions["creator"] == 24 * 3  # top-3 of three artists
    assert rep.missing_inputs["image"] == 1  # r005 had no vector and was still predicted
    q = f"""PREFIX ico: <{ICO}> PREFIX oa: <http://www.w3.org/ns/oa#> PREFIX dcterms: <{DCTERMS}>
    SELECT (COUNT(*) AS ?n) WHERE {{ ?a ico:field "creator" ; oa:hasTarget ?r . ?r dcterms:creator ?c }}"""
    assert ws.store.select(q).rows[0][0].py() == 0  # no suggestion for a record that has a creator
    graphs = [g for g in ws.store.graphs() if "/graph/run/" in g]
    count = ws.store.count(graphs[0])
    predict_multimodal(ws, "mm", progress=False)  # again: replaces its run, no duplicates
    assert [g for g in ws.store.graphs() if "/graph/run/" in g] == graphs
    assert ws.store.count(graphs[0]) == count


def test_a_value_a_curator_enters_after_training_is_never_replaced(trained):
    """The curator's value may disagree with the model: predict leaves it and its record alone, and writes
    nothing outside its own run graph."""
    from iconoscope.learn.multimodal import predict_multimodal

    ws, _ = trained
    review = ws.iris.review_graph()
    rec = nt_iri(ws.iris.record("r010"))  # by B; the curator says C
    curated = triple(rec, nt_iri(DCTERMS + "creator"), nt_literal("C"))
    ws.store.add_to_graph(review, [curated])
    try:
        before = _source_triples(ws)
        rep = predict_multimodal(ws, "mm", progress=False)
        assert rep.filled["creator"] == 23 and rep.already["creator"] == 217
        assert _source_triples(ws) == before
        assert set(ws.store.export("nt", review).decode().splitlines()) == {curated.strip()}
        q = f"""PREFIX ico: <{ICO}> PREFIX oa: <http://www.w3.org/ns/oa#>
        SELECT (COUNT(*) AS ?n) WHERE {{ ?a ico:field "creator" ; oa:hasTarget {rec} }}"""
        assert ws.store.select(q).rows[0][0].py() == 0
    finally:
        ws.store.drop_graph(review)


def test_records_missing_a_metadata_input_at_predict_time_are_predicted_and_counted(trained):
    """A record added after training with no genus (or a genus the model never saw) and no image vector: the
    model answers from what is left, and the report names the inputs it lacked."""
    from iconoscope.learn.multimodal import predict_multimodal

    ws, _ = trained
    extra = ws.iris.source_graph("late")
    lines = []
    for rid, genus in (("z1", None), ("z2", "Citrus")):
        r = nt_iri(ws.iris.record(rid))
        lines += [triple(r, nt_iri(RDF_TYPE), nt_iri(ICO + "Record")),
                  triple(r, nt_iri(DCTERMS + "identifier"), nt_literal(rid)),
                  triple(r, nt_iri(ICO + "source"), nt_literal("s"))]
        if genus:
            lines.append(triple(r, nt_iri(ws.iris.field("genus")), nt_literal(genus)))
    ws.store.replace_graph(extra, lines)
    try:
        rep = predict_multimodal(ws, "mm", progress=False)
        assert rep.records == 242
        assert rep.missing_inputs["image"] == 3  # r005, z1, z2
        assert rep.missing_inputs["field:genus"] == 2  # z1 has none, z2's was never seen in training
        assert "records predicted without input 'field:genus'" in rep.summary()
        assert rep.filled["creator"] == 26 and rep.filled["date"] == 35 + 2
        from iconoscope.learn.multimodal.fill import fill_rows

        rows = [r for r in fill_rows(ws, "mm", fields=("creator",)) if r.record in ("z1", "z2")]
        assert sorted((r.record, r.rank) for r in rows) == [("z1", 1), ("z1", 2), ("z1", 3),
                                                             ("z2", 1), ("z2", 2), ("z2", 3)]
        assert all(0.0 <= r.score <= 1.0 for r in rows)
        assert sum(r.score for r in rows if r.record == "z1") == pytest.approx(1.0, abs=1e-4)
    finally:
        ws.store.drop_graph(extra)
        predict_multimodal(ws, "mm", progress=False)  # the shared fixture's run as before


def test_fill_lists_ranked_suggestions_and_drops_records_a_curator_filled(trained):
    from iconoscope.learn.multimodal import predict_multimodal
    from iconoscope.learn.multimodal.fill import fill_rows

    ws, _ = trained
    predict_multimodal(ws, "mm", progress=False)
    rows = fill_rows(ws, "mm", fields=("creator",))
    assert {r.record for r in rows} == {f"r{i:03d}" for i in range(0, 240, 10)}
    first = [r for r in rows if r.record == "r000"]
    assert [r.rank for r in first] == [1, 2, 3]
    assert first[0].score >= first[1].score >= first[2].score
    assert first[0].value == "A"  # r000 is by A (its vector and genus say so)
    assert all(r.score >= 0.5 for r in fill_rows(ws, "mm", min_score=0.5))
    assert len(fill_rows(ws, "mm", k=1, fields=("creator",))) == 24
    # a curator enters r000's creator (in the review graph): it is no longer proposed
    review = ws.iris.review_graph()
    ws.store.add_to_graph(review, [triple(nt_iri(ws.iris.record("r000")), nt_iri(DCTERMS + "creator"),
                                          nt_literal("A"))])
    try:
        assert "r000" not in {r.record for r in fill_rows(ws, "mm", fields=("creator",))}
    finally:
        ws.store.drop_graph(review)
    with pytest.raises(ConfigError, match="not a target"):
        fill_rows(ws, "mm", fields=("medium",))


def test_fill_cli_prints_csv(trained):
    from click.testing import CliRunner

    from iconoscope.cli import cli
    from iconoscope.learn.multimodal import predict_multimodal

    ws, _ = trained
    predict_multimodal(ws, "mm", progress=False)
    ws.close()  # the CLI opens the store itself
    res = CliRunner().invoke(cli, ["-w", str(ws.root), "fill", "mm", "--field", "date", "--k", "1",
                                   "--format", "csv"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[0] == "record,field,rank,value,label,score"
    assert len(lines) - 1 == len(range(0, 240, 7))
    assert all(line.split(",")[3].count("/") == 1 for line in lines[1:])  # decade bins like 1900/1909


def test_no_image_vectors_at_all_names_the_input(tmp_path):
    from iconoscope.learn.multimodal import train_multimodal
    from iconoscope.learn.multimodal.data import gather, load_project

    ws = _make(tmp_path / "ws", n=30)
    try:
        (tmp_path / "ws" / "iconoscope.toml").write_text(
            CONFIG.format(backbone="test:never-embedded"), encoding="utf-8")
        ws2 = Workspace(tmp_path / "ws")
        ws.close()
        with pytest.raises(InputError, match=r"input 'image'.*iconoscope embed --backbone test:never-embedded"):
            gather(ws2, load_project(ws2, "mm"), progress=False)
        with pytest.raises(InputError, match="input 'image'"):
            train_multimodal(ws2, "mm", progress=False)
        ws2.close()
    finally:
        ws.close()


def test_metadata_only_model_with_multivalued_field_and_predict_without_training(tmp_path):
    from iconoscope.learn.multimodal import predict_multimodal, train_multimodal
    from iconoscope.learn.multimodal.data import gather, load_project

    ws = _make(tmp_path / "ws", n=90)
    try:
        with pytest.raises(IconoscopeError, match="no trained model for 'meta'"):
            predict_multimodal(ws, "meta", progress=False)
        raw = gather(ws, load_project(ws, "meta"), progress=False)
        assert raw.inputs["set:field:material"][0] == ["paper", "ink"]  # split at the separator
        card = train_multimodal(ws, "meta", progress=False)
        assert card["project"]["backbone"] is None  # no image input: no backbone needed
        rep = predict_multimodal(ws, "meta", progress=False)
        assert rep.filled["creator"] == 9
        with pytest.raises(ConfigError, match="image-only"):
            from iconoscope.learn.multimodal import eval_multimodal

            eval_multimodal(ws, "meta", tmp_path / "r", compare_single_input=True, progress=False)
    finally:
        ws.close()


def test_an_ensemble_model_trains_saves_loads_and_predicts_in_a_workspace(tmp_path):
    """``ensemble = 2`` through the verbs: the model file keeps both networks (and loads with torch's
    weights-only reader), and ``predict`` averages them."""
    from iconoscope.learn.multimodal import predict_multimodal, train_multimodal
    from iconoscope.learn.multimodal.train import load_model

    ws = _make(tmp_path / "ws", n=90)
    ws.close()
    toml = tmp_path / "ws" / "iconoscope.toml"
    text = toml.read_text(encoding="utf-8")
    toml.write_text(text.replace("[classifiers.meta]\n", "[classifiers.meta]\nensemble = 2\n"), encoding="utf-8")
    ws = Workspace(tmp_path / "ws")
    try:
        train_multimodal(ws, "meta", progress=False)
        model = load_model(ws, "meta")
        assert model.project.net.ensemble == 2 and len(model.classifier.nets) == 2
        assert "Ensemble: 2 networks (seeds 0-1)" in (ws.model_dir("meta") / "model_card.md").read_text()
        a, b = model.classifier.nets
        assert any(not np.allclose(p.detach().numpy(), q.detach().numpy())
                   for p, q in zip(a.parameters(), b.parameters(), strict=True))  # two different seeds
        assert predict_multimodal(ws, "meta", progress=False).filled["creator"] == 9
    finally:
        ws.close()


def test_wrong_classifier_kinds_and_params_are_config_errors(tmp_path):
    from iconoscope.learn.multimodal.data import load_project

    ws = _make(tmp_path / "ws", n=12)
    try:
        with pytest.raises(ConfigError, match="not 'multimodal'"):
            load_project(ws, "plain")
        with pytest.raises(ConfigError, match="no classifier 'nope'"):
            load_project(ws, "nope")
        text = (tmp_path / "ws" / "iconoscope.toml").read_text().replace("epochs = 15", "epochs = 15\nepoch = 3")
        (tmp_path / "ws" / "iconoscope.toml").write_text(text)
        with pytest.raises(ConfigError, match=r"unknown key.*epoch"):
            load_project(Workspace(tmp_path / "ws"), "mm")
    finally:
        ws.close()
