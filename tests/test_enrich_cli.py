"""The enrichment verbs end to end through the CLI: search, audit (table/csv/html), export, suggest-related."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pytest
import test_enrich_helpers as H
from click.testing import CliRunner

from iconoscope.cli import cli
from iconoscope.enrich import write as W
from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.workspace import Workspace


@pytest.fixture
def root(workspace: Any, tmp_path: Path) -> Path:
    H.build_graph(workspace, image_dir=tmp_path / "images")
    H.write_oof(workspace)
    imgs = H.all_images()
    W.write_run(workspace, "demo", imgs, [H.concept(workspace, c) for c in H.CATEGORIES], H.scores_for(imgs), 1,
                show_progress=False)
    workspace.close()  # the CLI opens the store itself (one writer per store)
    H.add_classifier_config(workspace.root)
    return workspace.root


def run(root: Path, *args: str) -> Any:
    res = CliRunner().invoke(cli, ["-w", str(root), *args], catch_exceptions=True)
    if res.exception and not isinstance(res.exception, SystemExit):
        raise res.exception
    return res


def test_search_cli(root: Path) -> None:
    res = run(root, "search", "chien", "--lang", "fr", "--min-score", "0.5", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert {r["record"] for r in rows} == {f"r{i}" for i in range(0, 40, 4)}
    assert {r["annotated"] for r in rows} == {"yes"}
    with pytest.raises(IconoscopeError, match="no concept labelled 'licorne'"):
        run(root, "search", "licorne")


def test_audit_cli(root: Path, tmp_path: Path) -> None:
    res = run(root, "audit", "demo", "--kind", "noise", "--format", "csv")
    assert [r["record"] for r in csv.DictReader(io.StringIO(res.stdout))] == ["r3", "r9"]
    out = tmp_path / "silence.html"
    run(root, "audit", "demo", "--kind", "silence", "--format", "html", "-o", str(out))
    page = out.read_text(encoding="utf-8")
    assert page.count("data:image/jpeg;base64,") == 4 and "r14" in page and "sans sujet" in page
    res = run(root, "audit", "demo", "--kind", "silence", "--category", "pomme", "--lang", "fr")
    assert "r14" in res.stdout and "r3" not in res.stdout
    with pytest.raises(ConfigError, match="not a category"):
        run(root, "audit", "demo", "--kind", "noise", "--category", "animal")


def test_export_cli(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "p.csv"
    run(root, "export", "predictions", "demo", "--format", "csv", "-o", str(out))
    header = out.read_text(encoding="utf-8").splitlines()[0]
    assert header == "record,image,concept,label,score,model,model_version,run"
    res = run(root, "export", "predictions", "demo", "--format", "ttl")
    assert "@prefix oa:" in res.stdout and "oa:Annotation" in res.stdout


def test_suggest_related_cli(root: Path, tmp_path: Path) -> None:
    out = tmp_path / "pairs.csv"
    run(root, "suggest-related", "demo", "--min-count", "1", "--min-rate", "0", "-o", str(out))
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert rows and all(r["accept"] == "" for r in rows)
    res = run(root, "suggest-related", "demo", "--apply", str(out))
    assert f"{len(rows)} skos:related pair(s)" in res.stdout
    with Workspace(root) as ws:
        assert ws.store.count(ws.iris.rules_graph("related-demo")) > 0


def test_predict_floor_is_checked_before_any_work(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A floor outside [0, 1) is a configuration error naming the value (exit 2), before the classifier is loaded."""
    from iconoscope.cli import main

    try:
        rc = main(["-w", str(root), "predict", "demo", "--floor", "1.5"])
    except SystemExit as e:
        rc = e.code
    assert rc == 2
    assert "floor 1.5" in capsys.readouterr().err
