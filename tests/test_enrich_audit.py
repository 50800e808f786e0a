"""Noise and silence: thresholds from out-of-fold scores only, the planted errors found, equal to plain SPARQL."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import test_enrich_helpers as H

from iconoscope.enrich import write as W
from iconoscope.enrich.audit import audit, audit_all, plain_sparql_audit
from iconoscope.enrich.thresholds import class_thresholds, thresholds_from_table
from iconoscope.errors import ConfigError
from iconoscope.graph.terms import nt_iri, nt_literal
from iconoscope.graph.vocab import DCTERMS, ICO, OA


@pytest.fixture
def ws(workspace: Any) -> Any:
    H.build_graph(workspace)
    H.write_oof(workspace)
    return workspace


def write(ws: Any, **kw: Any) -> str:
    imgs = H.all_images()
    return W.write_run(ws, "demo", imgs, [H.concept(ws, c) for c in H.CATEGORIES], H.scores_for(imgs), 1,
                       show_progress=False, **kw)


def items(ws: Any, kind: str, **kw: Any) -> set[tuple[str, str]]:
    return {(i.record, i.concept.rsplit("/", 1)[1]) for i in audit(ws, "demo", kind, **kw)}


def same_as_sparql(ws: Any, kind: str, category: str | None = None) -> None:
    got = [(ws.iris.record(i.record), i.concept, i.score or 0.0)
           for i in audit(ws, "demo", kind, category=category)]
    assert got == plain_sparql_audit(ws, "demo", kind, category=category)


def test_thresholds_are_class_means_of_out_of_fold_scores() -> None:
    t = pa.table({"concept": ["a", "a", "a", "a", "b", "b"], "score": [0.9, 0.7, 0.2, 0.0, 0.6, 0.1],
                  "label": [1, 1, 0, 0, 1, 0], "fold": [0, 1, 0, 1, 0, 1]})
    th = thresholds_from_table(t)
    assert th.concepts == ["a", "b"]
    assert th.t_pos.tolist() == pytest.approx([0.8, 0.6]) and th.t_neg.tolist() == pytest.approx([0.1, 0.1])
    assert th.n_pos.tolist() == [2, 1] and th.n_neg.tolist() == [2, 1]
    one_sided = thresholds_from_table(pa.table({"concept": ["c"], "score": [0.5], "label": [1], "fold": [0]}))
    assert np.isnan(one_sided.t_neg[0]) and one_sided.t_pos[0] == pytest.approx(0.5)


def test_thresholds_come_from_out_of_fold_scores_only(ws: Any) -> None:
    write(ws)
    oof = H.write_oof(ws).to_pandas()
    th = class_thresholds(ws, "demo")
    for c in H.CATEGORIES:
        rows = oof[oof.concept == H.concept(ws, c)]
        assert th.get(H.concept(ws, c)) == pytest.approx((rows[rows.label == 1].score.mean(),
                                                          rows[rows.label == 0].score.mean()), rel=1e-6)
    # a different run changes no threshold; no OOF table is an error, never a fallback to the run's scores
    before = th.as_dict()
    W.write_run(ws, "demo", H.all_images(), [H.concept(ws, c) for c in H.CATEGORIES],
                H.scores_for(H.all_images(), seed=9), 1, show_progress=False)
    assert class_thresholds(ws, "demo").as_dict() == before
    (ws.model_dir("demo") / "oof_scores.parquet").unlink()
    with pytest.raises(ConfigError, match="out-of-fold"):
        audit(ws, "demo", "noise")


def test_audit_finds_the_planted_errors(ws: Any) -> None:
    write(ws)
    assert items(ws, "noise") == {("r3", "chien"), ("r9", "pomme")}
    assert items(ws, "silence") == {("r3", "poire"), ("r9", "chat"), ("r14", "pomme"), ("r22", "pomme")}
    noise = audit(ws, "demo", "noise")
    assert [i.record for i in noise] == ["r3", "r9"]                # lowest score first
    assert noise[0].subject_text == "chien" and noise[0].label in ("chien", "dog")
    assert noise[0].threshold == pytest.approx(class_thresholds(ws, "demo").get(H.concept(ws, "chien"))[1], 1e-6)
    silence = audit(ws, "demo", "silence")
    assert [i.score for i in silence] == sorted([i.score for i in silence], reverse=True)
    assert audit(ws, "demo", "silence", limit=2) == silence[:2]
    assert items(ws, "silence", category="pomme") == {("r14", "pomme"), ("r22", "pomme")}
    both = audit_all(ws, "demo")
    assert both["noise"] == noise and both["silence"] == silence


def test_index_audit_equals_plain_sparql(ws: Any) -> None:
    write(ws)
    for kind in ("noise", "silence"):
        same_as_sparql(ws, kind)
        same_as_sparql(ws, kind, category=H.concept(ws, "pomme"))


def test_floor_keeps_noise_exact(ws: Any) -> None:
    # a floor far above the noise thresholds: the curated pairs' scores are stored anyway, so noise is exact
    write(ws, floor=0.5)
    noise = audit(ws, "demo", "noise")
    assert {(i.record, i.concept.rsplit("/", 1)[1]) for i in noise} == {("r3", "chien"), ("r9", "pomme")}
    assert all(i.score is not None and i.score < 0.01 for i in noise)
    same_as_sparql(ws, "noise")
    same_as_sparql(ws, "silence")
    # a subject curated after the run, whose score fell under the floor: listed, with no score (counted as 0)
    from iconoscope.graph.vocab import DCTERMS

    line = f"{nt_iri(ws.iris.record('r1'))} {nt_iri(DCTERMS + 'subject')} {nt_iri(H.concept(ws, 'pomme'))} .\n"
    ws.store.replace_graph(ws.iris.source_graph("late"), line)
    late = [i for i in audit(ws, "demo", "noise") if i.record == "r1"]
    assert len(late) == 1 and late[0].score is None
    same_as_sparql(ws, "noise")


def test_curators_decisions_are_respected(ws: Any) -> None:
    write(ws)
    pomme = nt_iri(H.concept(ws, "pomme"))
    # r14/pomme rejected (as the web app writes it), r22/pomme accepted (adds the curated subject)
    lines = []
    for rec, status in (("r14", "rejected"), ("r22", "accepted")):
        a = nt_iri(ws.iris.annotation("old-run", f"{rec}~2"))
        lines += [f"{a} {nt_iri(ICO + 'reviewStatus')} {nt_literal(status)} .\n",
                  f"{a} {nt_iri(OA + 'hasTarget')} {nt_iri(ws.iris.image(rec))} .\n",
                  f"{a} {nt_iri(OA + 'hasBody')} {pomme} .\n"]
    lines.append(f"{nt_iri(ws.iris.record('r22'))} {nt_iri(DCTERMS + 'subject')} {pomme} .\n")
    ws.store.add_to_graph(ws.iris.review_graph(), "".join(lines))
    assert items(ws, "silence") == {("r3", "poire"), ("r9", "chat")}
    same_as_sparql(ws, "silence")


def test_clear_errors(ws: Any) -> None:
    with pytest.raises(ConfigError, match="no classifier 'demo'"):
        audit(ws, "demo", "noise")
    H.add_classifier_config(ws.root)
    from iconoscope.workspace import Workspace

    ws2 = Workspace(ws.root)
    ws2._store = ws.store
    with pytest.raises(ConfigError, match="no prediction run"):
        audit(ws2, "demo", "noise")
    write(ws)
    with pytest.raises(ConfigError, match="--kind"):
        audit(ws, "demo", "both")
    with pytest.raises(ConfigError, match="not a category"):
        audit(ws, "demo", "noise", category="fruit")


def test_out_of_fold_scores_keep_memorised_errors_visible(ws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model that memorised its (corrupted) training labels hides them; predict_run's OOF scores do not."""
    from iconoscope.learn import classifier as C
    from iconoscope.learn.embed import EmbeddingStore

    imgs = H.all_images()
    S = H.scores_for(imgs)
    for k, img in enumerate(imgs):               # in-sample: echo the curated label of training images
        cur = H.curated_of(int(H.record_of_image(img)[1:]))
        if cur is not None:
            S[k] = 0.01
            S[k, H.CATEGORIES.index("chien" if cur == "levrier" else cur)] = 0.97
    fake = H.FakeClassifier(ws, imgs, S)
    monkeypatch.setattr(C, "load_classifier", lambda ws_, name: fake)
    X = np.stack([np.arange(len(imgs), dtype=np.float32), np.zeros(len(imgs), np.float32)], axis=1)
    EmbeddingStore(ws, fake.backbone).append(imgs, [H.record_of_image(i) for i in imgs], X)
    W.predict_run(ws, "demo", use_oof=False, show_progress=False)
    assert items(ws, "noise") == set()
    W.predict_run(ws, "demo", show_progress=False)
    assert items(ws, "noise") == {("r3", "chien"), ("r9", "pomme")}
    assert {("r3", "poire"), ("r9", "chat")} <= items(ws, "silence")
