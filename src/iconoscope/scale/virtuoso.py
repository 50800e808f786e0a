"""A throwaway local Virtuoso server: tests, benchmarks and trials of the SPARQL store start one in seconds.

Why a class and not a shell script: the tests, ``bench/end_to_end.py`` and a curious user all need the same
thing (a private server on free loopback ports, in its own folder, stopped afterwards) and must never touch a
system-wide Virtuoso (its ``/var/lib`` database, its default ports 1111/8890) that someone may be running.

The Debian package ``virtuoso-opensource`` provides ``virtuoso-t``; ``VIRTUOSO_BINARY`` overrides the path.
Memory is set by ``buffers`` (8 KiB pages of cache): 10,000 pages (~80 MiB) for tests, a few hundred thousand
for the 300k-record benchmark (the Virtuoso guide: about 2/3 of free RAM on a dedicated server).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from iconoscope.errors import IconoscopeError

USER = "dba"

# Run once on a new Virtuoso database (isql-vt): its own graphs become private, so the union default graph that
# anonymous queries see (/sparql) holds only collection data, as on the embedded store. Updates go to /sparql-auth.
SYSTEM_GRAPHS = ("http://www.openlinksw.com/schemas/virtrdf#", "http://www.w3.org/ns/ldp#",
                 "http://localuriqaserver/sparql")
PRIVATE_GROUP = "http://www.openlinksw.com/schemas/virtrdf#PrivateGraphs"
SETUP_SQL = (
    [f"DB.DBA.RDF_GRAPH_GROUP_CREATE ('{PRIVATE_GROUP}', 1)"]
    + [f"DB.DBA.RDF_GRAPH_GROUP_INS ('{PRIVATE_GROUP}', '{g}')" for g in SYSTEM_GRAPHS]
    + ["DB.DBA.RDF_DEFAULT_USER_PERMS_SET ('nobody', 1, 0)",   # anonymous: read public graphs
       "DB.DBA.RDF_DEFAULT_USER_PERMS_SET ('nobody', 0, 1)"]   # ... and nothing of the private ones
)


def die_with_parent(sig: int = signal.SIGKILL) -> Callable[[], None] | None:
    """A ``preexec_fn`` that has Linux send ``sig`` to the child when the process that started it dies.

    Servers run in their own session (a Ctrl-C meant for pytest must not reach them first), so without this a test
    run killed by a signal, or whose output pipe closed, would leave them running.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl  # loaded here: the child only makes the call

    def setup() -> None:
        prctl(1, int(sig), 0, 0, 0)  # PR_SET_PDEATHSIG

    return setup


def find_virtuoso() -> str | None:
    """The ``virtuoso-t`` executable, or None when Virtuoso is not installed."""
    env = os.environ.get("VIRTUOSO_BINARY")
    if env:
        return env if Path(env).is_file() else None
    return shutil.which("virtuoso-t")


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


INI = """\
[Database]
DatabaseFile = {d}/virtuoso.db
ErrorLogFile = {d}/virtuoso.log
LockFile = {d}/virtuoso.lck
TransactionFile = {d}/virtuoso.trx
xa_persistent_file = {d}/virtuoso.pxa
ErrorLogLevel = 7
FileExtend = 200
MaxCheckpointRemap = 2000
Striping = 0
TempStorage = TempDatabase

[TempDatabase]
DatabaseFile = {d}/virtuoso-temp.db
TransactionFile = {d}/virtuoso-temp.trx
MaxCheckpointRemap = 2000
Striping = 0

[Parameters]
ServerPort = 127.0.0.1:{sql_port}
DisableUnixSocket = 1
MaxClientConnections = 20
CheckpointInterval = {checkpoint_min}
CaseMode = 2
DirsAllowed = ., {d}, /tmp
NumberOfBuffers = {buffers}
MaxDirtyBuffers = {dirty}
ThreadsPerQuery = {threads}
AsyncQueueMaxThreads = {threads}
MaxQueryMem = {query_mem}
TransactionAfterImageLimit = 1500000000

[HTTPServer]
ServerPort = 127.0.0.1:{http_port}
ServerRoot = {d}
MaxClientConnections = 8
ServerThreads = 8
EnabledGzipContent = 0
KeepAliveTimeout = 10

[SPARQL]
ResultSetMaxRows = {max_rows}
MaxQueryExecutionTime = {max_query_s}
MaxQueryCostEstimationTime = 0
"""


class LocalVirtuoso:
    """A private ``virtuoso-t`` on free loopback ports in ``directory`` (a temp dir by default).

    Use as a context manager; ``query_url``/``update_url``/``graph_store_url`` and ``user``/``password`` are what a
    ``SparqlStore`` (or ``[store] kind = "sparql"``) needs. ``update_url`` is ``/sparql-auth`` (digest auth), the
    endpoint Virtuoso grants SPARQL updates on.
    """

    def __init__(self, directory: Path | str | None = None, *, buffers: int = 10_000, threads: int = 2,
                 max_rows: int = 10_000_000, max_query_s: int = 600, query_mem: str = "1G",
                 binary: str | None = None, start_timeout_s: float = 60.0):
        self.binary = binary or find_virtuoso()
        self._own_dir = directory is None
        self.directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="iconoscope-virtuoso-"))
        self.buffers = buffers
        self.threads = threads
        self.max_rows = max_rows
        self.max_query_s = max_query_s
        self.query_mem = query_mem
        self.start_timeout_s = start_timeout_s
        self.user = USER
        self.password = "dba"  # the fresh database's default; the server only listens on loopback
        self.http_port = 0
        self.sql_port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    # ---- URLs
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def query_url(self) -> str:
        return f"{self.base_url}/sparql"

    @property
    def update_url(self) -> str:
        return f"{self.base_url}/sparql-auth"

    @property
    def graph_store_url(self) -> str:
        return f"{self.base_url}/sparql-graph-crud-auth"

    @property
    def log_path(self) -> Path:
        return self.directory / "virtuoso.log"

    # ---- life cycle
    def start(self) -> LocalVirtuoso:
        if self.binary is None:
            raise IconoscopeError("virtuoso-t not found: install the Debian package virtuoso-opensource "
                                  "(bash scripts/system-deps.sh) or set VIRTUOSO_BINARY")
        self.directory.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _attempt in range(3):  # a port picked as free can be taken before the server binds it
            self.sql_port, self.http_port = free_port(), free_port()
            ini = self.directory / "virtuoso.ini"
            ini.write_text(INI.format(
                d=self.directory, sql_port=self.sql_port, http_port=self.http_port, buffers=self.buffers,
                dirty=max(1000, self.buffers * 3 // 4), threads=self.threads, max_rows=self.max_rows,
                max_query_s=self.max_query_s, query_mem=self.query_mem, checkpoint_min=60), encoding="utf-8")
            out = open(self.directory / "stdout.log", "ab")  # noqa: SIM115 - handed to the child process
            try:
                self._proc = subprocess.Popen([self.binary, "-f", "-c", str(ini)], cwd=self.directory,
                                              stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                              preexec_fn=die_with_parent())
            finally:
                out.close()
            try:
                self._wait_ready()
                self.isql(";\n".join(SETUP_SQL))
                return self
            except IconoscopeError as e:
                last_error = str(e)
                self._kill()
        raise IconoscopeError(last_error)

    def _wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise IconoscopeError(f"virtuoso-t exited with code {self._proc.returncode} while starting; "
                                      f"log {self.log_path}:\n{self._log_tail()}")
            try:
                r = httpx.get(self.query_url, params={"query": "ASK {}"}, timeout=2.0)
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise IconoscopeError(f"virtuoso-t did not answer on {self.query_url} within {self.start_timeout_s:.0f} s; "
                              f"log {self.log_path}:\n{self._log_tail()}")

    def _log_tail(self, n: int = 15) -> str:
        for p in (self.log_path, self.directory / "stdout.log"):
            if p.exists():
                return "\n".join(p.read_text(errors="replace").splitlines()[-n:])
        return "(no log)"

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        """Stop the server and, when we created it, delete its folder."""
        self._kill()
        if self._own_dir:
            shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> LocalVirtuoso:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def rss_bytes(self) -> int:
        """Resident memory of the server process (for benchmarks), 0 when unknown."""
        if self._proc is None:
            return 0
        try:
            for line in Path(f"/proc/{self._proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            return 0
        return 0

    def isql(self, sql: str, timeout_s: float = 600.0) -> str:
        """Run SQL through ``isql-vt`` (Virtuoso's own bulk loader is reached this way, not over HTTP)."""
        isql = shutil.which("isql-vt") or shutil.which("isql")
        if isql is None:
            raise IconoscopeError("isql-vt not found (Debian package virtuoso-opensource-7-bin)")
        r = subprocess.run([isql, f"127.0.0.1:{self.sql_port}", self.user, self.password, f"EXEC={sql}"],
                           capture_output=True, text=True, timeout=timeout_s, check=False)
        if r.returncode != 0 or "*** Error" in r.stdout or "*** Error" in r.stderr:
            raise IconoscopeError(f"isql failed: {sql[:200]}: {(r.stdout + r.stderr).strip()[-500:]}")
        return r.stdout

    def store(self, **kwargs: Any) -> Any:
        """A ``SparqlStore`` on this server (digest auth as dba on /sparql-auth)."""
        from iconoscope.graph.sparql_store import SparqlStore

        return SparqlStore(self.query_url, self.update_url, user=self.user, password=self.password, **kwargs)
