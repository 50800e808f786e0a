"""Shared fixtures: temp workspaces, the shared real data (skipped cleanly when absent)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("ICONOSCOPE_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (or $ICONOSCOPE_DATA); tests that need it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (set ICONOSCOPE_DATA)")
    return SHARED_DATA


@pytest.fixture
def workspace(tmp_path: Path):
    """An empty initialised workspace, opened."""
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.workspace import Workspace

    init_workspace(tmp_path / "ws", name="test")
    ws = Workspace(tmp_path / "ws")
    yield ws
    ws.close()


@pytest.fixture(scope="session")
def virtuoso():
    """A private Virtuoso server on loopback for the whole session (skips when virtuoso-t is not installed)."""
    from iconoscope.scale.virtuoso import LocalVirtuoso, find_virtuoso

    if find_virtuoso() is None:
        pytest.skip("virtuoso-t not found: install Debian's virtuoso-opensource (bash scripts/system-deps.sh)")
    server = LocalVirtuoso().start()
    yield server
    server.stop()


@pytest.fixture
def virtuoso_store(virtuoso):
    """A SparqlStore on the session's Virtuoso, emptied of every graph before the test."""
    st = virtuoso.store()
    for g in st.graphs(include_staging=True):
        st.drop_graph(g)
    yield st
    st.close()


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster (head + one worker process, 1 CPU each) shared by the session; stopped at the end."""
    from iconoscope.scale.ray_cluster import LocalRayCluster

    cluster = LocalRayCluster(workers=1, cpus_per_node=1).start()
    yield cluster
    cluster.stop()
