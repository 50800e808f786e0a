"""The fast atomic ``replace_graph`` of the embedded store: diff swap, staged fallback, crash recovery."""

from __future__ import annotations

import gc
from pathlib import Path

import pyoxigraph as ox
import pytest

from iconoscope.graph import store as store_mod
from iconoscope.graph.store import PENDING_PRED, PENDING_PREFIX, OxigraphStore
from iconoscope.graph.terms import nt_iri, nt_literal, triple

G = "https://example.org/t/graph/source/a"


def lines(ids: range, value: str = "v") -> list[str]:
    return [triple(nt_iri(f"https://example.org/s{i}"), nt_iri("https://example.org/p"),
                   nt_literal(f"{value}{i}", lang="fr")) for i in ids]


def values(st: OxigraphStore) -> set[str]:
    return {str(r[0]) for r in st.select(f"SELECT ?o WHERE {{ GRAPH <{G}> {{ ?s ?p ?o }} }}")}


@pytest.mark.parametrize("diff_limit", [500_000, 0])  # in-memory diff, and the staged fallback
def test_replace_applies_exactly_the_difference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                diff_limit: int) -> None:
    monkeypatch.setattr(store_mod, "DIFF_LIMIT", diff_limit)
    st = OxigraphStore(tmp_path / "g")
    assert st.replace_graph(G, iter(lines(range(0, 50)))) == 50
    assert st.replace_graph(G, iter(lines(range(0, 50)))) == 50  # unchanged data: nothing written
    assert st.replace_graph(G, iter(lines(range(25, 80)))) == 55
    assert values(st) == {f"v{i}" for i in range(25, 80)}
    assert st.graphs() == [G]
    assert not list(tmp_path.glob(".iconoscope-spool-*"))  # the spool file is removed


def test_blank_nodes_use_the_staged_swap(tmp_path: Path) -> None:
    st = OxigraphStore(tmp_path / "g")
    ttl = '@prefix ex: <https://example.org/> . ex:a ex:p [ ex:q "1" ] .\n'
    assert st.replace_graph(G, ttl, format="turtle") == 2
    assert st.replace_graph(G, ttl, format="turtle") == 2  # blank nodes never pile up
    assert st.graphs() == [G]


def test_malformed_data_on_replace_keeps_previous_graph(tmp_path: Path) -> None:
    st = OxigraphStore(tmp_path / "g")
    st.replace_graph(G, lines(range(3)))
    with pytest.raises(Exception, match="malformed nt"):
        st.replace_graph(G, iter(["<https://example.org/x> <https://example.org/p> .\n"]))
    assert st.count(G) == 3


def test_crash_during_first_load_is_rolled_back_on_open(tmp_path: Path) -> None:
    """Simulate a process that died while bulk-loading a new graph: marker present, data half there."""
    st = OxigraphStore(tmp_path / "g")
    st.replace_graph(G + "keep", lines(range(4)))
    raw = st._store
    marker = ox.NamedNode(PENDING_PREFIX + "dead")
    raw.add(ox.Quad(marker, ox.NamedNode(PENDING_PRED), ox.NamedNode(G), marker))
    raw.bulk_load(input="".join(lines(range(10))), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode(G))
    st.close()
    del raw  # the RocksDB lock is released when the last reference goes
    gc.collect()
    st2 = OxigraphStore(tmp_path / "g")
    assert st2.graphs() == [G + "keep"]
    assert st2.count() == 4


def test_failed_first_load_leaves_no_graph(tmp_path: Path) -> None:
    st = OxigraphStore(tmp_path / "g")

    def broken():  # type: ignore[no-untyped-def]
        yield from lines(range(5000))
        raise RuntimeError("producer died")

    with pytest.raises(RuntimeError, match="producer died"):
        st.replace_graph(G, broken())
    assert st.graphs() == [] and st.count() == 0
    with pytest.raises(Exception, match="malformed nt"):
        st.replace_graph(G, iter([*lines(range(3)), "<https://example.org/x> .\n", *lines(range(3, 9000))]))
    assert st.graphs() == []


def test_unchanged_data_is_not_diffed_again_unless_the_graph_was_written(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    st = OxigraphStore(tmp_path / "g")
    st.replace_graph(G, iter(lines(range(20))))
    calls: list[str] = []
    real = OxigraphStore._swap_diff
    monkeypatch.setattr(OxigraphStore, "_swap_diff", lambda self, *a: calls.append("diff") or real(self, *a))
    assert st.replace_graph(G, iter(lines(range(20)))) == 20
    assert calls == []  # same content hash: nothing to compare, nothing written
    st.update(f"DELETE DATA {{ GRAPH <{G}> {{ <https://example.org/s0> <https://example.org/p> \"v0\"@fr }} }}")
    assert st.replace_graph(G, iter(lines(range(20)))) == 20  # a write since: compared and repaired
    assert calls == ["diff"]
    st.close()
    st2 = OxigraphStore(tmp_path / "g")  # the digests persist with the store
    monkeypatch.setattr(OxigraphStore, "_swap_diff", lambda self, *a: calls.append("again"))
    assert st2.replace_graph(G, iter(lines(range(20)))) == 20 and calls == ["diff"]
