"""A query worker process for the public SPARQL endpoint (see ``sparql_exec``).

It opens a read-only snapshot of the workspace's Oxigraph store and answers queries sent over a pipe. Because it
is a separate process, the server can kill it the moment a query passes the time limit: Oxigraph cannot cancel
a query from inside, but the operating system can. Kept free of heavy imports so that it starts quickly.
"""

from __future__ import annotations

from typing import Any

from iconoscope.graph.terms import from_oxigraph


class TooManyRows(Exception):
    pass


def evaluate(store: Any, text: str, max_rows: int) -> tuple[str, Any]:
    """Run one query: ('bindings', (vars, rows)) | ('boolean', bool) | ('graph', N-Triples bytes)."""
    import pyoxigraph as ox

    res = store.query(text, use_default_graph_as_union=True)
    if isinstance(res, ox.QueryBoolean):
        return "boolean", bool(res)
    if isinstance(res, ox.QueryTriples):
        triples = []
        for i, t in enumerate(res):
            if i >= max_rows:
                raise TooManyRows(f"the result has more than {max_rows} triples; narrow the query")
            triples.append(t)
        return "graph", ox.serialize(triples, format=ox.RdfFormat.N_TRIPLES) or b""
    names = [v.value for v in res.variables]
    n = len(names)
    rows = []
    for i, sol in enumerate(res):
        if i >= max_rows:
            raise TooManyRows(f"the result has more than {max_rows} rows; add a LIMIT (and OFFSET to page)")
        rows.append(tuple(from_oxigraph(sol[j]) for j in range(n)))
    return "bindings", (names, rows)


def main(conn: Any) -> None:
    """Serve requests ``(snapshot_path, query, max_rows)`` until the pipe closes.

    Replies ``('ok', kind, payload)``, ``('bad', message)`` for the client's mistakes, ``('error', message)``."""
    import pyoxigraph as ox

    store = None
    opened = None
    conn.send(("ready",))
    while True:
        try:
            snapshot, text, max_rows = conn.recv()
        except (EOFError, OSError):
            return
        try:
            if snapshot != opened:
                store = ox.Store.read_only(snapshot)
                opened = snapshot
            kind, payload = evaluate(store, text, max_rows)
            reply: tuple[Any, ...] = ("ok", kind, payload)
        except SyntaxError as e:
            reply = ("bad", f"SPARQL syntax error: {e}")
        except TooManyRows as e:
            reply = ("bad", str(e))
        except (OSError, ValueError) as e:
            reply = ("bad", f"SPARQL query failed: {e}")
        except Exception as e:  # reported to the server, which logs it
            reply = ("error", f"{type(e).__name__}: {e}")
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return
