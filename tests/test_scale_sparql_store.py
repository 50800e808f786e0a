"""SparqlStore behaviour that only a server shows: auth, config, chunked loads, row caps (a real local Virtuoso).

The backend-neutral contract is in tests/test_store.py; these tests cover what can go wrong over HTTP.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph.sparql_store import SparqlStore
from iconoscope.graph.terms import nt_iri, nt_literal, triple

pytestmark = pytest.mark.virtuoso

G = "https://example.org/t/graph/source/a"


def _bnode_data() -> list[str]:
    """Records whose creator is a blank node, its triples far apart in the stream (chunk boundaries between)."""
    lines = [f"<http://x/r{i}> <http://x/creator> _:c{i} .\n" for i in range(6)]
    lines += [triple(nt_iri(f"http://x/r{i}"), nt_iri("http://x/title"), nt_literal(f"Titre {i} é", lang="fr"))
              for i in range(6)]
    lines += [f'_:c{i} <http://x/name> "Artist {i}" .\n' for i in range(6)]
    return lines


BNODE_JOIN = "SELECT ?r ?n WHERE { ?r <http://x/creator> ?c . ?c <http://x/name> ?n } ORDER BY ?r"


@pytest.mark.parametrize("graph_store", ["auto", None], ids=["graph-store-protocol", "insert-data"])
def test_chunked_loads_keep_blank_nodes_whole(virtuoso, virtuoso_store, graph_store) -> None:
    st = virtuoso.store(graph_store_url=graph_store, chunk_triples=2, insert_chunk_triples=2)
    assert (st.graph_store_url is not None) == (graph_store == "auto")
    assert st.replace_graph(G, _bnode_data()) == 18
    rows = st.select(BNODE_JOIN).dicts()
    assert [r["n"] for r in rows] == [f"Artist {i}" for i in range(6)]  # 6 creators, each still one node
    assert st.select("SELECT (COUNT(DISTINCT ?c) AS ?n) WHERE { ?r <http://x/creator> ?c }").rows[0][0].py() == 6
    assert st.ask('ASK { ?r <http://x/title> "Titre 3 é"@fr }')


def test_replace_graph_leaves_other_clients_staging_alone(virtuoso, virtuoso_store) -> None:
    """A server has several clients: one client's replace_graph must not drop another's load in progress."""
    from iconoscope.graph.store import STAGING_PREFIX

    other = f"{STAGING_PREFIX}other-client-loading"
    virtuoso_store.add_to_graph(other, _bnode_data()[:3])
    virtuoso_store.replace_graph(G, _bnode_data())
    assert other in virtuoso_store.graphs(include_staging=True)
    assert virtuoso_store.graphs() == [G]
    virtuoso_store.cleanup_staging()
    assert virtuoso_store.graphs(include_staging=True) == [G]


def test_truncated_results_are_refused(virtuoso, virtuoso_store) -> None:
    """Virtuoso cuts results at ResultSetMaxRows; a silently shortened answer would corrupt labels or audits."""
    virtuoso_store.replace_graph(G, _bnode_data())
    ini = virtuoso.directory / "virtuoso.ini"
    original = ini.read_text()
    ini.write_text(re.sub(r"ResultSetMaxRows = \d+", "ResultSetMaxRows = 5", original))  # read per request
    try:
        with pytest.raises(IconoscopeError, match=r"cut the result at 5 rows.*ResultSetMaxRows"):
            virtuoso_store.select("SELECT * WHERE { ?s ?p ?o }")
        with pytest.raises(IconoscopeError, match="cut the result at 5 rows"):
            virtuoso_store.raw_query("SELECT * WHERE { ?s ?p ?o }", "csv")
        assert len(virtuoso_store.select("SELECT * WHERE { ?s ?p ?o } LIMIT 4")) == 4  # under the cap: fine
    finally:
        ini.write_text(original)
    assert len(virtuoso_store.select("SELECT * WHERE { ?s ?p ?o }")) == 18


def test_authentication_errors_name_the_setting(virtuoso) -> None:
    wrong = SparqlStore(virtuoso.query_url, virtuoso.update_url, user="dba", password="not-the-password")
    with pytest.raises(ConfigError, match=r"user 'dba' refused \(HTTP 401\)"):
        wrong.drop_graph(G)
    anonymous = SparqlStore(virtuoso.query_url, virtuoso.update_url)
    with pytest.raises(ConfigError, match=r"anonymous access refused.*password_env"):
        anonymous.drop_graph(G)
    read_only = SparqlStore(virtuoso.query_url)
    assert read_only.ask("ASK {}")
    with pytest.raises(ConfigError, match="read-only"):
        read_only.replace_graph(G, _bnode_data())


def test_unreachable_server_is_a_clear_error() -> None:
    from iconoscope.scale.virtuoso import free_port

    st = SparqlStore(f"http://127.0.0.1:{free_port()}/sparql", timeout_s=5)
    with pytest.raises(IconoscopeError, match=r"cannot reach the SPARQL server at http://127\.0\.0\.1"):
        st.select("SELECT * WHERE { ?s ?p ?o }")


def test_workspace_on_virtuoso_via_config(virtuoso, virtuoso_store, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """``[store] kind = "sparql"`` opens a SparqlStore; the password comes from the variable password_env names."""
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.workspace import Workspace

    root = tmp_path / "ws"
    init_workspace(root, name="remote")
    cfg = root / "iconoscope.toml"
    text = cfg.read_text()
    assert 'kind = "oxigraph"\npath = "graph"' in text
    cfg.write_text(text.replace('kind = "oxigraph"\npath = "graph"', f'''kind = "sparql"
query_url = "{virtuoso.query_url}"
update_url = "{virtuoso.update_url}"
user = "dba"
password_env = "TEST_VIRTUOSO_PASSWORD"
timeout_s = 30'''))
    monkeypatch.delenv("TEST_VIRTUOSO_PASSWORD", raising=False)
    with pytest.raises(ConfigError, match="TEST_VIRTUOSO_PASSWORD, which is not set"):
        _ = Workspace(root).store
    monkeypatch.setenv("TEST_VIRTUOSO_PASSWORD", virtuoso.password)
    with Workspace(root) as ws:
        assert ws.store.kind == "sparql"
        ws.store.replace_graph(ws.iris.source_graph("s"), _bnode_data())
        assert ws.store.graphs() == [ws.iris.source_graph("s")]


def test_malformed_streamed_lines_keep_the_previous_graph(virtuoso_store) -> None:
    """Streamed N-Triples go to the server unparsed; its refusal must still leave the store as it was."""
    bad = ['<http://x/a> <http://x/b> "ok" .\n', '<http://x/a> <http://x/b> "unterminated .\n']
    with pytest.raises(IconoscopeError, match=r"HTTP \d+ while loading triples"):
        virtuoso_store.replace_graph(G, iter(bad))
    assert virtuoso_store.graphs(include_staging=True) == []
    virtuoso_store.replace_graph(G, _bnode_data())
    with pytest.raises(IconoscopeError, match=r"HTTP \d+ while loading triples"):
        virtuoso_store.replace_graph(G, iter(bad))
    assert virtuoso_store.count(G) == 18
    assert virtuoso_store.graphs(include_staging=True) == [G]


def test_cleanup_staging_rolls_back_a_crashed_first_load(virtuoso_store) -> None:
    """A process that died while creating a graph in place left its marker: cleanup drops the half graph."""
    from iconoscope.graph import queries
    from iconoscope.graph.queries import IRI
    from iconoscope.graph.store import PENDING_PRED, PENDING_PREFIX

    virtuoso_store.replace_graph(G + "/kept", _bnode_data())
    marker = PENDING_PREFIX + "crashed"
    virtuoso_store.update(queries.load("scale_pending_mark", marker=IRI(marker), creates=IRI(PENDING_PRED),
                                       graph=IRI(G)))
    virtuoso_store.add_to_graph(G, _bnode_data()[:4])  # the half-loaded graph
    assert virtuoso_store.graphs() == [G, G + "/kept"]
    virtuoso_store.cleanup_staging()
    assert virtuoso_store.graphs(include_staging=True) == [G + "/kept"]
