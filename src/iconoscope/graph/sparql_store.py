"""The ``Store`` protocol on a SPARQL 1.1 server (Virtuoso, Fuseki, GraphDB, QLever...) over HTTP.

When a collection outgrows one process (Europeana-size graphs, several writers, a public endpoint), the graph moves
to a server and every stage keeps working unchanged: this class answers with the same ``SelectResult``/``Term``
values as the embedded Oxigraph store, and the same contract test-suite runs on both.

Choices, and why:

* **Loading** sends N-Triples chunks with the SPARQL 1.1 Graph Store HTTP Protocol (``POST``), one chunk in flight
  while the next is prepared; servers without a graph-store URL get chunked ``INSERT DATA``. Files, strings and
  other formats go through pyoxigraph's parser first (malformed input fails with the embedded store's message,
  before the server sees it); streamed N-Triples lines from our own writers pass through as they are. Triples with
  blank nodes travel together in one final chunk: a blank node label is scoped to one request, so splitting them
  would split one node into several. Measured in ``bench/sparql_load.py`` (docs/scaling.md).
* **Atomic replacement**: load into a fresh staging graph, then one ``MOVE`` update. A failure while loading drops
  only our own staging graph; the target graph is untouched. A graph that does not exist yet is loaded in place
  (there is nothing to keep, and the ``MOVE`` would double the cost), under a marker graph that
  ``cleanup_staging`` reads to drop it if the process died mid-load. Unlike the embedded store we never sweep
  staging graphs automatically: on a server, another client may be loading one right now.
* **The union default graph**: queries see all named graphs as their default graph (Virtuoso does this when no
  ``FROM`` is given). Virtuoso also keeps its own metadata in graphs (``virtrdf#``, ~2,500 triples). They are never
  listed or counted here; to hide them from union queries too, the server marks them private to anonymous readers
  (``iconoscope.scale.virtuoso.SETUP_SQL``, docs/scaling.md). Not Virtuoso's ``input:default-graph-exclude``
  pragma: in 7.2 it breaks ``GRAPH <iri> { }`` patterns (a count of 2 triples came back as 1).
* **Authentication**: HTTP digest or basic, whichever the server's challenge asks for (Virtuoso's ``/sparql-auth``
  wants digest); the password comes from an environment variable named in the config, never from the file.
* **Silent truncation is refused**: Virtuoso caps result sets (``ResultSetMaxRows``) and returns partial results
  when a query runs out of time; both are detected and raised as errors naming the server setting.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import uuid
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.graph import queries
from iconoscope.graph.queries import IRI, Raw
from iconoscope.graph.store import (
    MEDIA_TYPES,
    PENDING_PRED,
    PENDING_PREFIX,
    STAGING_PREFIX,
    RDFData,
    SelectResult,
    as_input,
)
from iconoscope.graph.terms import XSD, Term

RDF_LANGSTRING = "http://www.w3.org/1999/02/22-rdf-syntax-ns#langString"
JSON_RESULTS = "application/sparql-results+json"
RESULT_MEDIA = {"json": JSON_RESULTS, "xml": "application/sparql-results+xml", "csv": "text/csv",
                "tsv": "text/tab-separated-values"}
DEFAULT_PASSWORD_ENV = "ICONOSCOPE_SPARQL_PASSWORD"
# Virtuoso's own graphs (RDF-view metadata, LDP, URIQA): never listed or counted as collection data.
VIRTUOSO_SYSTEM_GRAPHS = ("http://www.openlinksw.com/", "http://localuriqaserver/", "http://www.w3.org/ns/ldp#")

_STRIP_FOR_FORM = re.compile(r'<[^<>\s]*>|"""[\s\S]*?"""|\'\'\'[\s\S]*?\'\'\'|"(?:[^"\\\n]|\\.)*"|'
                             r"'(?:[^'\\\n]|\\.)*'|#[^\n]*")
_FORM = re.compile(r"\b(SELECT|ASK|CONSTRUCT|DESCRIBE)\b", re.IGNORECASE)
_TAGS = re.compile(r"<[^>]+>")


def query_form(query: str) -> str:
    """``select``, ``ask``, ``construct`` or ``describe``: decides which result media type to ask the server for."""
    m = _FORM.search(_STRIP_FOR_FORM.sub(" ", query))
    if m is None:
        raise IconoscopeError("SPARQL syntax error: no SELECT, ASK, CONSTRUCT or DESCRIBE in the query")
    return m.group(1).lower()


class _ChallengeAuth(httpx.Auth):
    """Digest or basic auth, as the server's ``WWW-Authenticate`` challenge asks (credentials sent only when asked)."""

    requires_request_body = True

    def __init__(self, user: str, password: str):
        self._digest = httpx.DigestAuth(user, password)
        self._basic = httpx.BasicAuth(user, password)
        self._scheme: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self._scheme == "basic":
            yield from self._basic.auth_flow(request)
            return
        if self._scheme == "digest":
            yield from self._digest.auth_flow(request)
            return
        response = yield request
        if response.status_code != 401:
            return
        schemes = [h.split(" ", 1)[0].lower() for h in response.headers.get_list("www-authenticate")]
        if "digest" in schemes:
            self._scheme = "digest"
            flow = self._digest.auth_flow(request)
            next(flow)  # the unauthenticated request we already sent
            try:
                retry = flow.send(response)
            except StopIteration:
                return
            response = yield retry
            with contextlib.suppress(StopIteration):
                flow.send(response)
        elif "basic" in schemes:
            self._scheme = "basic"
            yield from self._basic.auth_flow(request)


def _error_text(resp: httpx.Response) -> str:
    """The server's error message without HTML markup, shortened (Virtuoso repeats the whole query after it)."""
    text = resp.text
    if "<html" in text.lower() or "<!doctype" in text.lower():
        text = _TAGS.sub(" ", text)
    text = text.split("\nSPARQL query:")[0]
    text = " ".join(text.split())
    return text[:600] + ("..." if len(text) > 600 else "")


def _is_syntax_error(status: int, message: str) -> bool:
    """The query's fault (Virtuoso SP030, Fuseki/GraphDB parse errors), not the server's (e.g. Virtuoso SP031
    'SPARQL compiler: Internal error', which a rewording of a valid query avoids)."""
    low = message.lower()
    if "internal error" in low:
        return False
    return status == 400 and ("syntax error" in low or "parse error" in low or "lexical error" in low
                              or "encountered" in low)


class SparqlStore:
    """A ``Store`` on a remote SPARQL 1.1 query endpoint (+ update endpoint, + optional Graph Store endpoint).

    ``graph_store_url``: the SPARQL 1.1 Graph Store HTTP Protocol endpoint used for bulk loads and exports;
    ``"auto"`` derives Virtuoso's (``/sparql-graph-crud-auth`` beside ``/sparql-auth``), None disables it.
    ``dialect``: ``"auto"`` recognises Virtuoso from its ``Server`` header; ``"virtuoso"`` or ``"generic"`` force.
    """

    kind = "sparql"

    def __init__(self, query_url: str, update_url: str | None = None, *, user: str | None = None,
                 password: str | None = None, timeout_s: float = 60.0, graph_store_url: str | None = "auto",
                 chunk_triples: int = 100_000, insert_chunk_triples: int = 2_000, dialect: str = "auto"):
        if not query_url.startswith(("http://", "https://")):
            raise ConfigError(f"[store] query_url = {query_url!r}: expected an http(s) URL")
        if dialect not in ("auto", "virtuoso", "generic"):
            raise ConfigError(f"SparqlStore dialect {dialect!r}: expected auto, virtuoso or generic")
        self.query_url = query_url
        self.update_url = update_url
        self.user = user
        self.timeout_s = float(timeout_s)
        self.chunk_triples = max(1, int(chunk_triples))
        self.insert_chunk_triples = max(1, int(insert_chunk_triples))
        self._dialect = None if dialect == "auto" else dialect
        self._graph_store_setting = graph_store_url
        auth = _ChallengeAuth(user, password or "") if user else None
        self._http = httpx.Client(auth=auth, timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
                                  headers={"User-Agent": "iconoscope"}, follow_redirects=True)

    @classmethod
    def from_config(cls, sc: Any) -> SparqlStore:
        """From ``[store] kind = "sparql"``; the password is read from the env variable ``password_env`` names."""
        if not sc.query_url:
            raise ConfigError("[store] kind = 'sparql' needs query_url (the endpoint's query URL)")
        password = None
        if sc.user:
            env = sc.password_env or DEFAULT_PASSWORD_ENV
            password = os.environ.get(env)
            if password is None:
                raise ConfigError(f"[store] user = {sc.user!r}: the password is read from the environment variable "
                                  f"{env}, which is not set ([store] password_env names the variable)")
        return cls(sc.query_url, sc.update_url, user=sc.user, password=password, timeout_s=sc.timeout_s)

    # ---- HTTP
    def _send(self, method: str, url: str, what: str, *, syntax_label: str = "SPARQL",
              **kwargs: Any) -> httpx.Response:
        try:
            resp = self._http.request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise IconoscopeError(f"{url}: no answer within {self.timeout_s:g} s while {what} "
                                  "(raise [store] timeout_s, or the server's own query time limit)") from None
        except httpx.TransportError as e:
            raise IconoscopeError(f"cannot reach the SPARQL server at {url} while {what}: {e} "
                                  "(is it running? check [store] query_url/update_url)") from None
        if self._dialect is None:
            self._dialect = "virtuoso" if "virtuoso" in resp.headers.get("server", "").lower() else "generic"
        if resp.status_code in (401, 403):
            who = f"user {self.user!r}" if self.user else "anonymous access"
            hint = "check [store] user and the password variable" if self.user else \
                "set [store] user and password_env (Virtuoso updates go to /sparql-auth)"
            raise ConfigError(f"{url}: {who} refused (HTTP {resp.status_code}) while {what}; {hint}")
        if resp.status_code >= 400:
            msg = _error_text(resp)
            if _is_syntax_error(resp.status_code, msg):
                raise IconoscopeError(f"{syntax_label} syntax error: {msg}")
            if "internal error" in msg.lower():
                raise IconoscopeError(f"{url}: the server failed to compile a valid query while {what}: {msg} "
                                      "(a known Virtuoso 7.2 limitation: see docs/scaling.md for rewordings)")
            raise IconoscopeError(f"{url}: HTTP {resp.status_code} while {what}: {msg}")
        return resp

    @property
    def dialect(self) -> str:
        """``virtuoso`` or ``generic``, from the server's ``Server`` header (one request the first time)."""
        if self._dialect is None:
            self._send("GET", self.query_url, "connecting", params={"query": "ASK {}"},
                       headers={"Accept": JSON_RESULTS})
        return self._dialect or "generic"

    def _is_system_graph(self, graph: str) -> bool:
        return self.dialect == "virtuoso" and graph.startswith(VIRTUOSO_SYSTEM_GRAPHS)

    def _post_query(self, query: str, accept: str, what: str) -> httpx.Response:
        """POST a query; refuses Virtuoso's 'anytime' partial answers (X-SQL-State S1TAT) as errors."""
        resp = self._send("POST", self.query_url, what, data={"query": query}, headers={"Accept": accept})
        if resp.headers.get("x-sql-state", "").upper() == "S1TAT":
            raise IconoscopeError(f"{self.query_url}: the server stopped the query at its time limit and returned a "
                                  "partial result (raise MaxQueryExecutionTime in virtuoso.ini [SPARQL])")
        return resp

    def _check_row_cap(self, resp: httpx.Response, n_rows: int) -> None:
        """Refuse a result the server cut at its row cap (Virtuoso's ResultSetMaxRows, announced in a header)."""
        cap = resp.headers.get("x-sparql-maxrows", "")
        if cap.isdigit() and n_rows >= int(cap):
            raise IconoscopeError(f"{self.query_url}: the server cut the result at {cap} rows "
                                  "(raise ResultSetMaxRows in virtuoso.ini [SPARQL], or page with LIMIT/OFFSET)")

    # ---- conversions
    @staticmethod
    def _term(b: dict[str, str] | None) -> Term | None:
        if b is None:
            return None
        kind, value = b["type"], b["value"]
        if kind == "uri":
            return Term("uri", value)
        if kind == "bnode":
            return Term("bnode", value.removeprefix("nodeID://"))
        lang = b.get("xml:lang") or b.get("lang")
        if lang:
            return Term("literal", value, None, lang)
        dt = b.get("datatype")
        if dt in (XSD + "string", RDF_LANGSTRING):
            dt = None
        if dt == XSD + "boolean":  # Virtuoso writes booleans as 1/0
            value = {"1": "true", "0": "false"}.get(value, value)
        return Term("literal", value, dt, None)

    # ---- queries
    def select(self, query: str) -> SelectResult:
        resp = self._post_query(query, JSON_RESULTS, "running a SELECT")
        data = resp.json()
        if "boolean" in data or "results" not in data:
            raise IconoscopeError("expected a SELECT query")
        names = list(data["head"].get("vars", []))
        term = self._term
        rows = [tuple(term(b.get(v)) for v in names) for b in data["results"]["bindings"]]
        self._check_row_cap(resp, len(rows))
        return SelectResult(names, rows)

    def ask(self, query: str) -> bool:
        data = self._post_query(query, JSON_RESULTS, "running an ASK").json()
        if "boolean" not in data:
            raise IconoscopeError("expected an ASK query")
        return bool(data["boolean"])

    def construct(self, query: str, format: str = "nt") -> bytes:
        if query_form(query) not in ("construct", "describe"):
            raise IconoscopeError("expected a CONSTRUCT or DESCRIBE query")
        resp = self._post_query(query, MEDIA_TYPES["nt"], "running a CONSTRUCT")
        return self._reserialize(resp.content, format)

    def raw_query(self, query: str, result_format: str) -> tuple[bytes, str]:
        """The server's own serialization (for the web app's /sparql passthrough): json|xml|csv|tsv|nt|turtle."""
        if query_form(query) in ("construct", "describe"):
            fmt = "turtle" if result_format == "turtle" else "nt"
            resp = self._post_query(query, MEDIA_TYPES[fmt], "running a CONSTRUCT")
            return self._reserialize(resp.content, fmt), MEDIA_TYPES[fmt]
        media = RESULT_MEDIA.get(result_format, JSON_RESULTS)
        resp = self._post_query(query, media, "running a query")
        if resp.headers.get("x-sparql-maxrows"):
            body = resp.content
            if media == JSON_RESULTS:
                rows = len(json.loads(body).get("results", {}).get("bindings", []))
            elif media.startswith("application/sparql-results+xml"):
                rows = body.count(b"<result>") + body.count(b"<result ")
            else:  # CSV/TSV: one line per row after the header (a value with a newline only over-counts)
                rows = body.count(b"\n") - 1
            self._check_row_cap(resp, rows)
        return resp.content, media

    def update(self, update: str) -> None:
        if not self.update_url:
            raise ConfigError(f"{self.query_url}: this store is read-only ([store] update_url is not set)")
        self._send("POST", self.update_url, "running a SPARQL update", syntax_label="SPARQL update",
                   data={"update": update})

    # ---- RDF conversion (pyoxigraph parses and serializes; the server only ever sees N-Triples)
    @staticmethod
    def _ox_format(name: str) -> Any:
        import pyoxigraph as ox

        f = ox.RdfFormat
        table = {"turtle": f.TURTLE, "nt": f.N_TRIPLES, "nquads": f.N_QUADS, "xml": f.RDF_XML,
                 "json-ld": f.JSON_LD, "trig": f.TRIG, "n3": f.N3}
        if name not in table:
            raise ConfigError(f"unknown RDF format '{name}' (expected one of {', '.join(table)})")
        return table[name]

    def _reserialize(self, nt: bytes, format: str) -> bytes:
        import pyoxigraph as ox

        triples = list(ox.parse(nt, format=ox.RdfFormat.N_TRIPLES))
        return ox.serialize(triples, format=self._ox_format(format)) or b""

    def _chunks(self, data: RDFData, format: str, size: int) -> Iterator[tuple[bytes, bool]]:
        """``(N-Triples, has_bnodes)`` chunks of at most ``size`` triples; those with blank nodes come last, whole.

        Streamed N-Triples lines (what Iconoscope's own writers produce) are passed through as they are: parsing
        and re-serializing them cost ~40% of a load into Virtuoso (bench/sparql_load.py). Files, strings and other
        formats go through pyoxigraph's parser, so malformed input fails before the server sees any of it.
        """
        if format == "nt" and not isinstance(data, (str, bytes, Path)):
            yield from self._line_chunks(data, size)
            return
        import pyoxigraph as ox

        inp, path = as_input(data)
        fmt = self._ox_format(format)
        where = str(path) if path is not None else "input"
        parsed = ox.parse(path=str(path), format=fmt) if path is not None else ox.parse(inp, format=fmt)
        plain: list[Any] = []
        with_bnodes: list[Any] = []
        nt = ox.RdfFormat.N_TRIPLES
        try:
            for t in parsed:
                t = t.triple if isinstance(t, ox.Quad) else t
                if isinstance(t.subject, ox.BlankNode) or isinstance(t.object, ox.BlankNode):
                    with_bnodes.append(t)
                    continue
                plain.append(t)
                if len(plain) >= size:
                    yield ox.serialize(plain, format=nt) or b"", False
                    plain = []
        except SyntaxError as e:
            raise IconoscopeError(f"{where}: malformed {format} data: {e}") from e
        if plain:
            yield ox.serialize(plain, format=nt) or b"", False
        if with_bnodes:
            yield ox.serialize(with_bnodes, format=nt) or b"", True

    @staticmethod
    def _line_chunks(lines: Iterable[str], size: int) -> Iterator[tuple[bytes, bool]]:
        """Chunks of N-Triples lines; a line that may hold a blank node (``_:`` anywhere) waits for the last chunk."""
        plain: list[str] = []
        with_bnodes: list[str] = []
        for line in lines:
            if "_:" in line:
                with_bnodes.append(line)
                continue
            plain.append(line)
            if len(plain) >= size:
                yield "".join(plain).encode("utf-8"), False
                plain = []
        if plain:
            yield "".join(plain).encode("utf-8"), False
        if with_bnodes:
            yield "".join(with_bnodes).encode("utf-8"), True

    @property
    def graph_store_url(self) -> str | None:
        setting = self._graph_store_setting
        if setting != "auto":
            return setting
        if self.update_url and self.dialect == "virtuoso":
            parts = urlsplit(self.update_url)
            path = parts.path.rstrip("/")
            if path.endswith("/sparql-auth"):
                return urlunsplit(parts._replace(path=path[: -len("-auth")] + "-graph-crud-auth", query=""))
            if path.endswith("/sparql"):
                return urlunsplit(parts._replace(path=path + "-graph-crud", query=""))
        return None

    def _load(self, graph: str, data: RDFData, format: str) -> int:
        """Append ``data`` to ``graph`` in chunks; returns the number of chunks sent.

        One chunk is in flight while the next is being prepared (a sender thread), so reading and parsing the
        input overlaps with the server's ingestion; an error on either side stops the load.
        """
        if not self.update_url:
            raise ConfigError(f"{self.query_url}: this store is read-only ([store] update_url is not set)")
        gsp = self.graph_store_url

        def send(chunk: bytes, bnodes: bool) -> None:
            if gsp:
                try:
                    self._send("POST", gsp, f"loading triples into <{graph}>", params={"graph": graph},
                               content=chunk, headers={"Content-Type": "application/n-triples; charset=utf-8"})
                except ConfigError:
                    raise
                except IconoscopeError as e:
                    if " HTTP " not in str(e):
                        raise
                    raise IconoscopeError(f"the server refused a chunk of N-Triples (malformed data, or a server "
                                          f"limit): {e}") from None
            else:
                name = "scale_insert_bnodes" if bnodes else "scale_insert_data"
                self.update(queries.load(name, graph=IRI(graph), triples=Raw(chunk.decode("utf-8"))))

        n = 0
        size = self.chunk_triples if gsp else self.insert_chunk_triples
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sparql-load") as pool:
            in_flight: Future[None] | None = None
            try:
                for chunk, bnodes in self._chunks(data, format, size):
                    if in_flight is not None:
                        in_flight.result()
                    in_flight = pool.submit(send, chunk, bnodes)
                    n += 1
            except BaseException:
                if in_flight is not None:
                    in_flight.exception()  # let the request finish; the producer's error is the one raised
                raise
            if in_flight is not None:
                in_flight.result()
        return n

    # ---- graphs
    def replace_graph(self, graph: str, data: RDFData, format: str = "nt") -> int:
        """Replace ``graph`` with ``data`` atomically; returns the new triple count.

        An existing graph: load a staging graph, then one ``MOVE``. A new graph: load it in place (a ``MOVE``
        costs as much as the load itself on Virtuoso: bench/sparql_load.py), under a marker that lets
        ``cleanup_staging`` drop it if this process dies mid-load; a failure we see drops it at once.
        """
        if not self.ask(queries.load("scale_graph_exists", graph=IRI(graph))):
            marker = f"{PENDING_PREFIX}{uuid.uuid4().hex}"
            self.update(queries.load("scale_pending_mark", marker=IRI(marker), creates=IRI(PENDING_PRED),
                                     graph=IRI(graph)))
            try:
                self._load(graph, data, format)
            except BaseException:
                self.drop_graph(graph)
                raise
            finally:
                self.drop_graph(marker)
            return self.count(graph)
        staging = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
        try:
            self._load(staging, data, format)
        except BaseException:
            self.drop_graph(staging)
            raise
        self.update(queries.load("scale_move_graph", staging=IRI(staging), graph=IRI(graph)))
        return self.count(graph)

    def add_to_graph(self, graph: str, data: RDFData, format: str = "nt") -> None:
        self._load(graph, data, format)

    def drop_graph(self, graph: str) -> None:
        self.update(queries.load("scale_drop_graph", graph=IRI(graph)))

    def cleanup_staging(self) -> None:
        """Undo what crashed loads left: graphs half-created in place (their markers say which), staging graphs.

        Call it only when no load is running: on a server another client may be loading right now.
        """
        for marker, target in self.select(queries.load("scale_pending_targets", creates=IRI(PENDING_PRED))).rows:
            if marker is not None and target is not None and marker.value.startswith(PENDING_PREFIX):
                self.drop_graph(target.value)
        for g in self.graphs(include_staging=True):
            if g.startswith(STAGING_PREFIX):
                self.drop_graph(g)

    def graphs(self, include_staging: bool = False) -> list[str]:
        names = [str(v) for v in self.select(queries.load("scale_graphs")).column("g")]
        return sorted(n for n in names if (include_staging or not n.startswith(STAGING_PREFIX))
                      and not self._is_system_graph(n))

    def count(self, graph: str | None = None) -> int:
        if graph is None:
            sizes = self.select(queries.load("scale_graph_sizes")).rows
            return sum(int(n.value) for g, n in sizes if g is not None and n is not None
                       and not g.value.startswith(STAGING_PREFIX) and not self._is_system_graph(g.value))
        row = self.select(queries.load("scale_count_graph", graph=IRI(graph))).rows[0][0]
        return int(row.value) if row is not None else 0

    def _graph_nt(self, graph: str) -> bytes:
        gsp = self.graph_store_url
        if gsp:
            resp = self._send("GET", gsp, f"exporting <{graph}>", params={"graph": graph},
                              headers={"Accept": MEDIA_TYPES["nt"]})
            return resp.content
        return self._post_query(queries.load("scale_graph_triples", graph=IRI(graph)), MEDIA_TYPES["nt"],
                                f"exporting <{graph}>").content

    def export(self, format: str = "nquads", graph: str | None = None) -> bytes:
        import pyoxigraph as ox

        if graph is not None:
            return self._reserialize(self._graph_nt(graph), format)
        if format not in ("nquads", "trig"):
            raise ConfigError("exporting the whole dataset needs a quad format (nquads or trig)")
        quads = []
        for g in self.graphs():
            node = ox.NamedNode(g)
            quads.extend(ox.Quad(t.subject, t.predicate, t.object, node)
                         for t in ox.parse(self._graph_nt(g), format=ox.RdfFormat.N_TRIPLES))
        return ox.serialize(quads, format=self._ox_format(format)) or b""

    def close(self) -> None:
        self._http.close()

    def __repr__(self) -> str:
        return f"SparqlStore({self.query_url!r}, {self.update_url!r})"

