from pathlib import Path

import pytest

from iconoscope.cli import main
from iconoscope.config import load_config, parse_config
from iconoscope.errors import ConfigError


def test_init_writes_a_loadable_commented_config(tmp_path: Path) -> None:
    from iconoscope.cli.workspace_cmds import init_workspace

    cfg = init_workspace(tmp_path / "w", name="My Coll")
    assert "#" in cfg.read_text()
    c = load_config(tmp_path / "w")
    assert c.name == "my-coll"
    assert c.store.kind == "oxigraph"
    assert c.store.path == (tmp_path / "w" / "graph").resolve()


@pytest.mark.parametrize(
    "data, needle",
    [
        ({"store": {"kind": "postgres"}}, "key 'kind' = 'postgres': expected one of oxigraph, sparql"),
        ({"collection": {"base_iri": "example.org"}}, "key 'base_iri' = 'example.org'"),
        ({"serve": {"port": 99999}}, "key 'port' = 99999"),
        ({"sources": {"s": {"kind": "xls", "path": "a"}}}, "key 'kind' = 'xls'"),
        ({"sources": {"s": {"kind": "csv"}}}, "missing key 'path'"),
        ({"classifiers": {"c": {"categories": []}}}, "key 'categories'"),
        ({"classifiers": {"c": {"categories": ["x"], "head": "svm"}}}, "key 'head' = 'svm'"),
        ({"classifiers": {"c": {"categories": ["x"], "folds": 1}}}, "key 'folds' = 1"),
        ({"colection": {}}, "unknown key(s) colection"),
    ],
)
def test_config_errors_name_key_value_and_expectation(tmp_path: Path, data: dict, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(data, tmp_path, origin="x.toml")
    assert needle in str(e.value)
    assert "x.toml" in str(e.value)


def test_paths_resolve_relative_to_config_and_env_overrides(tmp_path: Path, monkeypatch) -> None:
    data = {"paths": {"data": "somewhere"},
            "sources": {"s": {"kind": "csv", "path": "${data}/records.csv"}}}
    c = parse_config(data, tmp_path)
    assert c.sources["s"].path == (tmp_path / "somewhere" / "records.csv").resolve()
    monkeypatch.setenv("ICONOSCOPE_DATA", "/elsewhere")
    c = parse_config(data, tmp_path)
    assert c.sources["s"].path == Path("/elsewhere/records.csv")


def test_cli_config_error_exits_2_with_message(tmp_path: Path, capsys) -> None:
    (tmp_path / "iconoscope.toml").write_text('[store]\nkind = "nope"\n')
    with pytest.raises(SystemExit) as e:
        main(["-w", str(tmp_path), "sparql", "SELECT * WHERE { ?s ?p ?o }"])
    assert e.value.code == 2
    assert "kind" in capsys.readouterr().err


def test_cli_missing_workspace_exits_2(tmp_path: Path, capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["-w", str(tmp_path / "none"), "sparql", "SELECT * WHERE { ?s ?p ?o }"])
    assert e.value.code == 2
    assert "no workspace here" in capsys.readouterr().err
