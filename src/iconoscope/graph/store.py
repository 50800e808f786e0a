"""The ``Store`` protocol and the embedded Oxigraph backend (the default).

Everything above this module talks to the graph through these few methods, so the same code (and the same
test-suite) runs on the embedded store and on any SPARQL 1.1 server (``iconoscope.graph.sparql_store``).

Atomic replacement of a named graph. Measured on this store (RocksDB on disk), a SPARQL ``MOVE`` costs about ten
times the bulk load it follows (~80 µs per triple against ~8 µs) and deleting costs ~30 µs per triple, so
``OxigraphStore.replace_graph`` avoids both where it can:

1. a graph that does not exist yet is bulk-loaded straight into place, under a "pending" marker graph. Streamed
   input (a generator of N-Triples lines, what ingest produces) goes through a named pipe to the bulk loader
   running in another thread, so producing and loading overlap on two cores. If the producer fails (a ``--strict``
   stop, an exception), what was loaded is dropped; if the process dies, the next open rolls the half-loaded graph
   back (the previous state: no graph);
2. an existing graph: streamed input is first spooled to a file beside the store and hashed, so any error while
   producing it happens before the store is touched. Unchanged data (same hash as the last replace, and no other
   write since) costs nothing more. Otherwise the new data is compared with the graph, and one SPARQL update (one
   transaction) deletes what is gone and inserts what is new: the switch costs the size of the difference.
A crash at any point leaves the previous graph (plus staging graphs, which the next open or ``replace_graph``
removes).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph.terms import Term, from_oxigraph

STAGING_PREFIX = "urn:iconoscope:staging:"
PENDING_PREFIX = STAGING_PREFIX + "pending:"
PENDING_PRED = "urn:iconoscope:creates"
DIFF_LIMIT = 500_000  # above this many changed triples, replace_graph diffs inside the store instead of in memory

# file suffix -> format name understood by every backend
FORMAT_BY_SUFFIX = {
    ".ttl": "turtle", ".turtle": "turtle", ".nt": "nt", ".ntriples": "nt", ".nq": "nquads",
    ".rdf": "xml", ".xml": "xml", ".owl": "xml", ".jsonld": "json-ld", ".json": "json-ld", ".trig": "trig",
    ".n3": "n3",
}
MEDIA_TYPES = {
    "turtle": "text/turtle", "nt": "application/n-triples", "nquads": "application/n-quads",
    "xml": "application/rdf+xml", "json-ld": "application/ld+json", "trig": "application/trig", "n3": "text/n3",
}


def guess_format(path: Path | str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix == ".gz":
        suffix = Path(str(path)[:-3]).suffix.lower()
    if suffix not in FORMAT_BY_SUFFIX:
        raise ConfigError(f"{path}: cannot tell the RDF format from '{suffix}' "
                          f"(use one of {', '.join(sorted(FORMAT_BY_SUFFIX))} or say --format)")
    return FORMAT_BY_SUFFIX[suffix]


@dataclass
class SelectResult:
    """Rows of a SELECT: ``vars`` in order, each row a tuple of Term (or None when unbound)."""

    vars: list[str]
    rows: list[tuple[Term | None, ...]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[tuple[Term | None, ...]]:
        return iter(self.rows)

    def dicts(self) -> list[dict[str, object]]:
        """Rows as dicts of Python values (None when unbound): the convenient form for small results."""
        return [{v: (t.py() if t is not None else None) for v, t in zip(self.vars, row, strict=True)}
                for row in self.rows]

    def column(self, var: str) -> list[object]:
        i = self.vars.index(var)
        return [r[i].py() if r[i] is not None else None for r in self.rows]


RDFData = str | bytes | Path | Iterable[str]


@runtime_checkable
class Store(Protocol):
    """A SPARQL 1.1 dataset. Queries see the union of all named graphs as their default graph."""

    kind: str

    def select(self, query: str) -> SelectResult: ...

    def ask(self, query: str) -> bool: ...

    def construct(self, query: str, format: str = "nt") -> bytes: ...

    def update(self, update: str) -> None: ...

    def replace_graph(self, graph: str, data: RDFData, format: str = "nt") -> int: ...

    def add_to_graph(self, graph: str, data: RDFData, format: str = "nt") -> None: ...

    def drop_graph(self, graph: str) -> None: ...

    def graphs(self) -> list[str]: ...

    def count(self, graph: str | None = None) -> int: ...

    def export(self, format: str = "nquads", graph: str | None = None) -> bytes: ...

    def close(self) -> None: ...


class _LineStream(io.RawIOBase):
    """A binary file-like view of an iterable of text lines, so bulk loaders can stream generators."""

    def __init__(self, lines: Iterable[str]):
        self._it = iter(lines)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: bytearray) -> int:  # type: ignore[override]
        while len(self._buf) < len(b):
            chunk = "".join(line for _, line in zip(range(4096), self._it, strict=False))
            if not chunk:
                break
            self._buf += chunk.encode("utf-8")
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def as_input(data: RDFData) -> tuple[object, Path | None]:
    """Normalise RDF input to what pyoxigraph's loaders take: (input, path)."""
    if isinstance(data, Path):
        return None, data
    if isinstance(data, (str, bytes)):
        return data, None
    return io.BufferedReader(_LineStream(data), buffer_size=1 << 20), None


class OxigraphStore:
    """The embedded store: a RocksDB-backed Oxigraph dataset in the workspace (or in memory when path is None)."""

    kind = "oxigraph"

    def __init__(self, path: Path | None = None, read_only: bool = False):
        import pyoxigraph as ox

        self._ox = ox
        self.path = path
        self.read_only = read_only
        self._digest_cache: dict[str, list[object]] | None = None
        try:
            if path is None:
                self._store = ox.Store()
            elif read_only:
                self._store = ox.Store.read_only(str(path))
            else:
                Path(path).mkdir(parents=True, exist_ok=True)
                self._store = ox.Store(str(path))
        except OSError as e:
            busy = "lock" in str(e).lower()
            hint = " (is another iconoscope process, e.g. 'serve', using this workspace?)" if busy else ""
            raise IconoscopeError(f"{path}: cannot open the graph store: {e}{hint}") from e
        if not read_only:
            self.recover()

    # ---- conversions

    def _fmt(self, name: str):  # type: ignore[no-untyped-def]
        f = self._ox.RdfFormat
        table = {"turtle": f.TURTLE, "nt": f.N_TRIPLES, "nquads": f.N_QUADS, "xml": f.RDF_XML,
                 "json-ld": f.JSON_LD, "trig": f.TRIG, "n3": f.N3}
        if name not in table:
            raise ConfigError(f"unknown RDF format '{name}' (expected one of {', '.join(table)})")
        return table[name]

    def _query(self, query: str):  # type: ignore[no-untyped-def]
        try:
            return self._store.query(query, use_default_graph_as_union=True)
        except SyntaxError as e:
            raise IconoscopeError(f"SPARQL syntax error: {e}") from e
        except OSError as e:
            raise IconoscopeError(f"SPARQL query failed: {e}") from e

    # ---- queries
    def select(self, query: str) -> SelectResult:
        res = self._query(query)
        if not isinstance(res, self._ox.QuerySolutions):
            raise IconoscopeError("expected a SELECT query")
        names = [v.value for v in res.variables]
        term = from_oxigraph
        rows = [tuple(term(sol[i]) for i in range(len(names))) for sol in res]
        return SelectResult(names, rows)

    def ask(self, query: str) -> bool:
        res = self._query(query)
        if not isinstance(res, self._ox.QueryBoolean):
            raise IconoscopeError("expected an ASK query")
        return bool(res)

    def construct(self, query: str, format: str = "nt") -> bytes:
        res = self._query(query)
        if not isinstance(res, self._ox.QueryTriples):
            raise IconoscopeError("expected a CONSTRUCT or DESCRIBE query")
        return res.serialize(format=self._fmt(format))

    def raw_query(self, query: str, result_format: str) -> tuple[bytes, str]:
        """Serialize a query result natively (for the SPARQL endpoint): ``result_format`` json|xml|csv|tsv|nt|turtle."""
        res = self._query(query)
        ox = self._ox
        if isinstance(res, ox.QueryTriples):
            fmt = "turtle" if result_format == "turtle" else "nt"
            return res.serialize(format=self._fmt(fmt)), MEDIA_TYPES[fmt]
        rf = ox.QueryResultsFormat
        table = {"json": (rf.JSON, "application/sparql-results+json"),
                 "xml": (rf.XML, "application/sparql-results+xml"),
                 "csv": (rf.CSV, "text/csv"), "tsv": (rf.TSV, "text/tab-separated-values")}
        fmt, media = table.get(result_format, table["json"])
        return res.serialize(format=fmt), media

    def update(self, update: str) -> None:
        """Run a SPARQL UPDATE (it may touch any graph, so the replace digests are forgotten)."""
        self._forget_all()
        self._update(update)

    def _update(self, update: str) -> None:
        try:
            self._store.update(update)
        except SyntaxError as e:
            raise IconoscopeError(f"SPARQL update syntax error: {e}") from e
        except OSError as e:
            raise IconoscopeError(f"SPARQL update failed: {e}") from e

    # ---- graphs
    def _load(self, graph: str, data: RDFData, format: str) -> None:
        inp, path = as_input(data)
        to_graph = self._ox.NamedNode(graph)
        try:
            if path is not None:
                self._store.bulk_load(path=str(path), format=self._fmt(format), to_graph=to_graph)
            else:
                self._store.bulk_load(input=inp, format=self._fmt(format), to_graph=to_graph)
        except SyntaxError as e:
            where = str(path) if path is not None else "input"
            raise IconoscopeError(f"{where}: malformed {format} data: {e}") from e

    def replace_graph(self, graph: str, data: RDFData, format: str = "nt") -> int:
        """Load ``data`` into ``graph``, replacing it atomically; returns the new triple count (see module doc)."""
        self.cleanup_staging()
        if not self._has_graph(graph):
            digest = self._create_graph(graph, data, format)
        else:
            digest = self._swap_graph(graph, data, format)
        n = self.count(graph)
        if n == 0:  # replacing with nothing leaves no (empty) named graph behind
            self.drop_graph(graph)
            digest = None
        self._remember(graph, digest, n)
        return n

    # ---- content digests: re-loading unchanged data writes nothing and skips the diff
    def _digests_path(self) -> Path | None:
        return Path(f"{self.path}.digests.json") if self.path is not None else None

    def _digests(self) -> dict[str, list[object]]:
        if self._digest_cache is None:
            p = self._digests_path()
            try:
                self._digest_cache = json.loads(p.read_text()) if p is not None and p.exists() else {}
            except (OSError, ValueError):
                self._digest_cache = {}
        return self._digest_cache

    def _remember(self, graph: str, digest: str | None, count: int) -> None:
        """Record (or forget) what a graph was last replaced with; any other write to the store forgets all."""
        d = self._digests()
        if digest is None:
            d.pop(graph, None)
        else:
            d[graph] = [digest, count]
        self._save_digests()

    def _forget_all(self) -> None:
        if self._digests():
            self._digest_cache = {}
            self._save_digests()

    def _save_digests(self) -> None:
        p = self._digests_path()
        if p is not None:
            tmp = p.with_name(p.name + ".part")
            tmp.write_text(json.dumps(self._digest_cache or {}))
            tmp.replace(p)

    # ---- streaming
    def _write_lines(self, f: BinaryIO, lines: Iterable[str], digest: Any) -> None:
        buf: list[str] = []
        for line in lines:
            buf.append(line)
            if len(buf) == 4096:
                chunk = "".join(buf).encode("utf-8")
                digest.update(chunk)
                f.write(chunk)
                buf.clear()
        if buf:
            chunk = "".join(buf).encode("utf-8")
            digest.update(chunk)
            f.write(chunk)

    def _spool(self, lines: Iterable[str], digest: Any) -> Path:
        """Write streamed N-Triples lines to a temporary file beside the store (same disk, no RAM copy)."""
        folder = Path(self.path).parent if self.path is not None else None
        fd, name = tempfile.mkstemp(prefix=".iconoscope-spool-", suffix=".nt", dir=folder)
        try:
            with os.fdopen(fd, "wb", buffering=1 << 20) as f:
                self._write_lines(f, lines, digest)
        except BaseException:
            Path(name).unlink(missing_ok=True)
            raise
        return Path(name)

    def _stream_load(self, target: Any, graph: str, lines: Iterable[str], format: str, digest: Any) -> None:
        """Bulk-load streamed lines into ``target`` through a FIFO: Python produces while Rust parses and writes
        (the loader releases the GIL), so the two use both cores instead of taking turns.

        A failure of the producer closes the pipe (the loader then stops at a clean end; the caller undoes
        what was loaded); a failure of the loader breaks the pipe and is raised here.
        """
        folder = tempfile.mkdtemp(prefix="iconoscope-fifo-")
        fifo = os.path.join(folder, "data.nt")
        os.mkfifo(fifo)
        errors: list[BaseException] = []
        to_graph = self._ox.NamedNode(graph)
        fmt = self._fmt(format)

        def load() -> None:
            try:
                target.bulk_load(path=fifo, format=fmt, to_graph=to_graph)
            except BaseException as e:  # handed over to the producer thread
                errors.append(e)

        loader = threading.Thread(target=load, name="iconoscope-bulk-load", daemon=True)
        loader.start()
        try:
            fd = None
            while fd is None and loader.is_alive():
                try:
                    fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                except OSError as e:
                    if e.errno != errno.ENXIO:  # ENXIO: the loader has not opened its end yet
                        raise
                    time.sleep(0.002)
            if fd is not None:
                os.set_blocking(fd, True)
                try:
                    with os.fdopen(fd, "wb", buffering=1 << 20) as f:
                        self._write_lines(f, lines, digest)
                except BrokenPipeError:
                    pass  # the loader stopped reading: its error is raised below
        finally:
            loader.join()
            shutil.rmtree(folder, ignore_errors=True)
        if errors:
            e = errors[0]
            if isinstance(e, SyntaxError):
                raise IconoscopeError(f"input: malformed {format} data: {e}") from e
            raise e

    def _create_graph(self, graph: str, data: RDFData, format: str) -> str | None:
        """Bulk-load a new graph in place; a marker graph lets ``recover`` undo a load the process died in.

        Streamed data goes through :meth:`_stream_load`; if its producer fails, what was loaded is dropped.
        """
        ox = self._ox
        marker = ox.NamedNode(f"{PENDING_PREFIX}{uuid.uuid4().hex}")
        self._store.add(ox.Quad(marker, ox.NamedNode(PENDING_PRED), ox.NamedNode(graph), marker))
        digest = None
        try:
            if isinstance(data, (str, bytes, Path)):
                self._load(graph, data, format)
            elif not hasattr(os, "mkfifo"):  # no named pipes (Windows): spool, then load
                h = hashlib.blake2b(digest_size=20)
                spool = self._spool(data, h)
                try:
                    self._load(graph, spool, format)
                finally:
                    spool.unlink(missing_ok=True)
                digest = h.hexdigest()
            else:
                h = hashlib.blake2b(digest_size=20)
                self._stream_load(self._store, graph, data, format, h)
                digest = h.hexdigest()
        except BaseException:
            self.drop_graph(graph)
            raise
        finally:
            self._store.remove_graph(marker)
        return digest

    def _swap_graph(self, graph: str, data: RDFData, format: str) -> str | None:
        """Replace an existing graph by applying only the difference, in one transaction.

        Streamed data is spooled (any error while producing it happens before the store is touched) and hashed:
        if it is what the graph was last replaced with, and the graph was not written to since, nothing is done.
        Otherwise the new data is bulk-loaded into a scratch in-memory store (which also validates it),
        compared with the graph triple by triple, and the difference is written with one
        ``DELETE DATA ; INSERT DATA`` update. Blank nodes cannot be compared that way, and a very large
        difference would make a huge update, so those cases stage the data in the store and diff there with one
        SPARQL update instead.
        """
        spool: Path | None = None
        digest = None
        try:
            if not isinstance(data, (str, bytes, Path)):
                h = hashlib.blake2b(digest_size=20)
                spool = self._spool(data, h)
                digest = h.hexdigest()
                data = spool
                if self._digests().get(graph) == [digest, self.count(graph)]:
                    return digest
            self._swap_diff(graph, data, format)
        finally:
            if spool is not None:
                spool.unlink(missing_ok=True)
        return digest

    def _swap_diff(self, graph: str, data: RDFData, format: str) -> None:
        ox = self._ox
        g = ox.NamedNode(graph)
        scratch = ox.Store()
        inp, path = as_input(data)
        try:
            if path is not None:
                scratch.bulk_load(path=str(path), format=self._fmt(format), to_graph=g)
            else:
                scratch.bulk_load(input=inp, format=self._fmt(format), to_graph=g)
        except SyntaxError as e:
            raise IconoscopeError(f"{path or 'input'}: malformed {format} data: {e}") from e
        gone = [q for q in self._store.quads_for_pattern(None, None, None, g) if q not in scratch]
        new = [q for q in scratch.quads_for_pattern(None, None, None, g) if q not in self._store]
        del scratch
        if not gone and not new:
            return
        bnode = ox.BlankNode
        if len(gone) + len(new) > DIFF_LIMIT or any(
                isinstance(q.subject, bnode) or isinstance(q.object, bnode) for q in (*gone, *new)):
            self._swap_graph_staged(graph, data, format)
            return
        body = []
        if gone:
            body.append(f"DELETE DATA {{ GRAPH <{graph}> {{\n" + "".join(
                f"{q.subject} {q.predicate} {q.object} .\n" for q in gone) + "} }")
        if new:
            body.append(f"INSERT DATA {{ GRAPH <{graph}> {{\n" + "".join(
                f"{q.subject} {q.predicate} {q.object} .\n" for q in new) + "} }")
        self._update(" ;\n".join(body))

    def _swap_graph_staged(self, graph: str, data: RDFData, format: str) -> None:
        """Stage the new data in the store, then apply the difference with one SPARQL update (one transaction)."""
        staging = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            self._load(staging, data, format)
            self._update(
                f"DELETE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} "
                f"FILTER NOT EXISTS {{ GRAPH <{staging}> {{ ?s ?p ?o }} }} }} ;\n"
                f"INSERT {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} WHERE {{ GRAPH <{staging}> {{ ?s ?p ?o }} "
                f"FILTER NOT EXISTS {{ GRAPH <{graph}> {{ ?s ?p ?o }} }} }}")
        finally:
            self.drop_graph(staging)

    def recover(self) -> None:
        """Undo loads a crashed process left half-done (pending markers) and drop leftover staging graphs."""
        ox = self._ox
        for g in self.graphs(include_staging=True):
            if g.startswith(PENDING_PREFIX):
                for q in self._store.quads_for_pattern(None, ox.NamedNode(PENDING_PRED), None, ox.NamedNode(g)):
                    self.drop_graph(q.object.value)
        self.cleanup_staging()

    def add_to_graph(self, graph: str, data: RDFData, format: str = "nt") -> None:
        self._remember(graph, None, 0)
        self._load(graph, data, format)

    def _has_graph(self, graph: str) -> bool:
        return self._store.contains_named_graph(self._ox.NamedNode(graph))

    def drop_graph(self, graph: str) -> None:
        if not graph.startswith(STAGING_PREFIX) and graph in self._digests():
            self._remember(graph, None, 0)
        if self._has_graph(graph):
            self._store.remove_graph(self._ox.NamedNode(graph))

    def cleanup_staging(self) -> None:
        """Remove staging graphs a crashed load left behind."""
        for g in self.graphs(include_staging=True):
            if g.startswith(STAGING_PREFIX):
                self._store.remove_graph(self._ox.NamedNode(g))

    def graphs(self, include_staging: bool = False) -> list[str]:
        names = [g.value for g in self._store.named_graphs() if isinstance(g, self._ox.NamedNode)]
        return sorted(n for n in names if include_staging or not n.startswith(STAGING_PREFIX))

    def count(self, graph: str | None = None) -> int:
        if graph is None:
            q = ("SELECT (COUNT(*) AS ?n) WHERE { GRAPH ?g { ?s ?p ?o } "
                 f'FILTER(!STRSTARTS(STR(?g), "{STAGING_PREFIX}")) }}')
        else:
            q = f"SELECT (COUNT(*) AS ?n) WHERE {{ GRAPH <{graph}> {{ ?s ?p ?o }} }}"
        row = self.select(q).rows[0][0]
        return int(row.value) if row is not None else 0

    def export(self, format: str = "nquads", graph: str | None = None) -> bytes:
        if graph is None:
            if format not in ("nquads", "trig"):
                raise ConfigError("exporting the whole dataset needs a quad format (nquads or trig)")
            return self._store.dump(format=self._fmt(format))
        return self._store.dump(format=self._fmt(format), from_graph=self._ox.NamedNode(graph))

    def flush(self) -> None:
        self._store.flush()

    def snapshot(self, path: Path | str) -> Path:
        """A consistent on-disk copy of the store at ``path`` (RocksDB checkpoint: hard links, so it is cheap).

        Read-only readers (e.g. the SPARQL endpoint's killable worker processes) open snapshots while this process
        keeps writing; on-disk stores only.
        """
        if self.path is None:
            raise IconoscopeError("an in-memory store has no on-disk snapshot")
        self._store.backup(str(path))
        return Path(path)

    def close(self) -> None:
        # a read-only instance (pyoxigraph >= 0.4) refuses flush() with a RuntimeError: nothing to write anyway
        if self.path is not None and not self.read_only and self._store is not None:
            with contextlib.suppress(OSError):
                self._store.flush()
        self._store = None  # type: ignore[assignment]


def open_store(config: object, read_only: bool = False) -> Store:
    """The store a workspace config asks for (``[store] kind``)."""
    from iconoscope.config import StoreConfig

    sc: StoreConfig = config.store if hasattr(config, "store") else config  # type: ignore[assignment]
    if sc.kind == "oxigraph":
        return OxigraphStore(sc.path, read_only=read_only)
    if sc.kind == "sparql":
        from iconoscope.graph.sparql_store import SparqlStore

        return SparqlStore.from_config(sc)
    raise ConfigError(f"[store] kind = {sc.kind!r}: expected oxigraph or sparql")
