"""The demo end to end at smoke-test size: every stage runs on a generated collection and finds what was planted."""

from pathlib import Path

import pytest

from iconoscope.demo.generate import generate


def test_generator_plants_known_errors(tmp_path: Path) -> None:
    import json

    paths = generate(tmp_path, n=40, n_duplicates=3)
    truth = json.loads(paths["truth"].read_text())
    assert len(truth["subjects"]) == 43
    assert len(truth["duplicates"]) == 3
    rows = paths["records"].read_text(encoding="utf-8").splitlines()
    assert len(rows) == 44 and rows[0].startswith("id,titre,auteur")
    # every swapped subject is in the catalogue text but not drawn
    for n in truth["noise"]:
        assert n["annotated"] not in truth["subjects"][n["record"]]


@pytest.mark.slow
def test_demo_quick_runs_every_stage(tmp_path: Path, capsys) -> None:
    from iconoscope.demo.run import run_demo

    res = run_demo(tmp_path / "demo", n=80, quick=True)
    steps = [s for s, _ in res.lines]
    for step in ("collection", "graph", "labels", "classifier", "predict", "search", "noise", "silence",
                 "multimodal", "similar", "duplicates", "map"):
        assert step in steps
    assert res.facts["mAP"] is not None and 0.0 <= res.facts["mAP"] <= 1.0
    # re-encoded and resized copies keep their perceptual hashes: all found. Crops move every pixel (the demo looks
    # for copies by hash only, see demo/run.py), so they may be missed, and nothing else may be.
    assert res.facts["duplicates_planted"] > 0
    assert set(res.facts["duplicates_missed"]) <= {"crop"}
    assert res.facts["duplicates_found"] >= res.facts["duplicates_planted"] * 2 // 3
    assert Path(dict(res.lines)["map"]).exists()
    assert "Iconoscope demo: summary" in capsys.readouterr().out
    # idempotent: a second run in the same folder reuses the data and does not duplicate triples
    first = dict(res.lines)["graph"]
    res2 = run_demo(tmp_path / "demo", n=80, quick=True)
    assert dict(res2.lines)["graph"] == first
