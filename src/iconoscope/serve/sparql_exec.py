"""Running the public endpoint's queries safely: a real time limit, a row limit, few at a time, no SERVICE.

Oxigraph cannot cancel a running query, and a query such as a filtered cross product can run for hours without
yielding a row. So on the embedded store, queries run in worker processes over a read-only snapshot of the
store (a RocksDB checkpoint: hard links, cheap), and a worker still busy at the deadline is killed: the client
gets a 503 and the CPU is free again. The snapshot is refreshed after every write made through this server (and
only this server can write while it holds the store). At most ``slots`` queries run at once; more get a 503
rather than a queue that grows without bound. For a remote SPARQL store, the server it talks to enforces its
own limits and queries go straight to it.

Federated ``SERVICE`` calls are refused: they would let anyone on the network make the server send requests to
any host it can reach.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import re
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from iconoscope.errors import IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.terms import Term
from iconoscope.graph.vocab import prefix_block
from iconoscope.serve.errors import BadRequest, Unavailable

log = logging.getLogger("iconoscope.serve")

_STRINGS = re.compile(
    r"'''.*?'''|\"\"\".*?\"\"\"|'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"|<[^<>\"{}|^`\\\s]*>|#[^\n]*",
    re.DOTALL)
_SERVICE = re.compile(r"(?<![\w?$:.\-])SERVICE(?![\w:\-])", re.IGNORECASE)
_KIND = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)


def strip_literals(text: str) -> str:
    """The query with strings, IRIs and comments blanked out, so keywords inside them are not seen."""
    return _STRINGS.sub(" ", text)


def check_query(text: str) -> None:
    if _SERVICE.search(strip_literals(text)):
        raise BadRequest("SERVICE (federated query) is not allowed on this endpoint")


def query_form(text: str) -> str:
    """SELECT / ASK / CONSTRUCT / DESCRIBE: the first such keyword outside strings, IRIs and comments."""
    m = _KIND.search(strip_literals(queries.prefix_free(text)))
    return m.group(1).upper() if m else ""


@dataclass
class Result:
    kind: str                                   # 'bindings' | 'boolean' | 'graph'
    variables: list[str] = field(default_factory=list)
    rows: list[tuple[Term | None, ...]] = field(default_factory=list)
    boolean: bool = False
    graph_nt: bytes = b""                       # CONSTRUCT/DESCRIBE results as N-Triples


class _Worker:
    """One query process; starting it (a fresh interpreter) does not count against a query's time limit."""

    START_TIMEOUT_S = 60.0

    def __init__(self, ctx: Any):
        from iconoscope.serve import sparql_worker

        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=sparql_worker.main, args=(child,), daemon=True, name="iconoscope-sparql")
        self.proc.start()
        child.close()
        if not self.conn.poll(self.START_TIMEOUT_S) or self.conn.recv() != ("ready",):
            self.kill()
            raise IconoscopeError("the SPARQL query worker did not start")

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.proc.kill()
            self.proc.join(timeout=5)
        with contextlib.suppress(Exception):
            self.conn.close()


class QueryRunner:
    """Runs the endpoint's read queries under a time limit and a row limit, at most ``slots`` at a time."""

    def __init__(self, store: Any, timeout_s: float = 10.0, max_rows: int = 200_000, slots: int = 2,
                 snapshot_dir: Path | None = None):
        self.store = store
        self.timeout_s = float(timeout_s)
        self.max_rows = int(max_rows)
        self.slots = max(1, int(slots))
        self.killed = 0                       # workers killed at the deadline (for tests and logs)
        self._slots = threading.BoundedSemaphore(self.slots)
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._generation = 0
        self._snapshot: tuple[int, Path] | None = None
        self._snapshot_dir = Path(snapshot_dir) if snapshot_dir else None
        self._ctx = multiprocessing.get_context("spawn")
        oxi = getattr(store, "kind", "") == "oxigraph" and getattr(store, "path", None) is not None
        self.mode = "process" if oxi and self._snapshot_dir is not None and hasattr(store, "_store") else "direct"

    # ---- snapshots of the embedded store
    def invalidate(self) -> None:
        """Call after a write: the next query reads a fresh snapshot."""
        with self._lock:
            self._generation += 1

    def _current_snapshot(self) -> Path:
        with self._lock:
            if self._snapshot and self._snapshot[0] == self._generation:
                return self._snapshot[1]
            assert self._snapshot_dir is not None
            self._snapshot_dir.mkdir(parents=True, exist_ok=True)
            gen = self._generation
            path = self._snapshot_dir / f"gen-{gen}-{id(self)}"
            if path.exists():
                shutil.rmtree(path)
            self.store.snapshot(path)
            previous = self._snapshot[1] if self._snapshot else None
            # keep the previous snapshot (a query may still read it); remove older ones
            for old in self._snapshot_dir.glob(f"gen-*-{id(self)}"):
                if old not in (path, previous):
                    shutil.rmtree(old, ignore_errors=True)
            self._snapshot = (gen, path)
            return path

    # ---- running
    def run(self, text: str) -> Result:
        """Run a read query; Unavailable (503) past the time limit or when every slot is busy.

        Our prefixes (ico:, skos:, dcterms:, oa:, prov:...) are declared for every query, so curators can
        write ``?r a ico:Record`` without a prologue; a query's own declarations come later and win."""
        check_query(text)
        text = prefix_block() + text
        if not self._slots.acquire(timeout=min(2.0, self.timeout_s)):
            raise Unavailable("all query slots are busy with long queries; try again in a moment")
        try:
            if self.mode == "process":
                return self._run_in_worker(text)
            return self._run_direct(text)
        finally:
            self._slots.release()

    def _run_in_worker(self, text: str) -> Result:
        snapshot = self._current_snapshot()
        try:
            worker = self._idle.get_nowait()
        except queue.Empty:
            worker = _Worker(self._ctx)
        try:
            worker.conn.send((str(snapshot), text, self.max_rows))
            if not worker.conn.poll(self.timeout_s):
                raise TimeoutError
            reply = worker.conn.recv()
        except TimeoutError:
            worker.kill()
            self.killed += 1
            log.warning("SPARQL query stopped at the %.3g s limit: %.200s", self.timeout_s, text)
            raise Unavailable(f"the query ran past the {self.timeout_s:g} s time limit") from None
        except (EOFError, OSError, ValueError) as e:
            worker.kill()
            raise IconoscopeError(f"the query worker failed: {e}") from None
        self._idle.put(worker)
        if reply[0] == "ok":
            return self._result(reply[1], reply[2])
        if reply[0] == "bad":
            raise BadRequest(reply[1])
        raise IconoscopeError(f"query failed: {reply[1]}")

    @staticmethod
    def _result(kind: str, payload: Any) -> Result:
        if kind == "boolean":
            return Result("boolean", boolean=bool(payload))
        if kind == "graph":
            return Result("graph", graph_nt=payload)
        names, rows = payload
        return Result("bindings", variables=list(names), rows=list(rows))

    def _run_direct(self, text: str) -> Result:
        """An in-memory or remote store: run in this process (a remote server enforces its own limits)."""
        form = query_form(text)
        if form == "ASK":
            return Result("boolean", boolean=self.store.ask(text))
        if form in ("CONSTRUCT", "DESCRIBE"):
            return Result("graph", graph_nt=self.store.construct(text, "nt"))
        res = self.store.select(text)
        if len(res.rows) > self.max_rows:
            raise BadRequest(f"the result has more than {self.max_rows} rows; add a LIMIT (and OFFSET to page)")
        return Result("bindings", variables=list(res.vars), rows=list(res.rows))

    def update(self, text: str) -> None:
        """A SPARQL UPDATE on the live store (the caller checked the token); later queries see it."""
        check_query(text)
        try:
            self.store.update(prefix_block() + text)
        finally:
            self.invalidate()

    def close(self) -> None:
        while True:
            try:
                self._idle.get_nowait().kill()
            except queue.Empty:
                break
        if self._snapshot_dir is not None:
            for old in self._snapshot_dir.glob(f"gen-*-{id(self)}"):
                shutil.rmtree(old, ignore_errors=True)


def serialize_graph(result: Result, fmt: str, prefixes: dict[str, str] | None = None) -> bytes:
    """CONSTRUCT/DESCRIBE results as Turtle, N-Triples, RDF/XML or JSON-LD."""
    import pyoxigraph as ox

    if fmt == "nt":
        return result.graph_nt
    table = {"turtle": ox.RdfFormat.TURTLE, "xml": ox.RdfFormat.RDF_XML, "json-ld": ox.RdfFormat.JSON_LD}
    triples = list(ox.parse(result.graph_nt, format=ox.RdfFormat.N_TRIPLES))
    kwargs = {"prefixes": prefixes} if prefixes and fmt in ("turtle", "xml") else {}
    return ox.serialize(triples, format=table[fmt], **kwargs) or b""
