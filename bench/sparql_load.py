"""How fast each way of loading a graph into Virtuoso is, against the embedded Oxigraph store (the peer).

SparqlStore must pick a load path; this measures them on record-shaped N-Triples (the graph model's records and
images, ~12 triples per record) so the choice and docs/scaling.md rest on numbers:

* ``gsp``: SPARQL 1.1 Graph Store Protocol POSTs of N-Triples chunks (SparqlStore's default on Virtuoso);
* ``insert``: chunked ``INSERT DATA`` updates (SparqlStore's path on servers without a graph-store URL);
* ``bulk``: Virtuoso's own bulk loader (``ld_dir`` + ``rdf_loader_run`` through isql; server-side files only);
* ``move``: the ``MOVE`` that makes ``replace_graph`` atomic, timed on its own;
* ``oxigraph``: ``OxigraphStore.replace_graph`` on disk (the peer), first load and a re-load of the same data.

Usage: python bench/sparql_load.py [--records 50000] [--insert-records 5000]
Prints a table and writes bench/results/sparql_load.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.graph.store import OxigraphStore  # noqa: E402
from iconoscope.graph.terms import XSD, nt_iri, nt_literal, triple  # noqa: E402
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, IRIs  # noqa: E402
from iconoscope.scale.virtuoso import LocalVirtuoso, find_virtuoso  # noqa: E402

GRAPH = "https://example.org/bench/graph/source/joconde"


def record_lines(n: int, offset: int = 0) -> list[str]:
    """Record-shaped triples: a record with title, creator, date, year, medium, subjects; its image."""
    iris = IRIs("https://example.org/bench/")
    t, p = triple, nt_iri
    out = []
    for k in range(offset, offset + n):
        r, im = p(iris.record(f"R{k:07d}")), p(iris.image(f"R{k:07d}"))
        out += [t(r, p(RDF_TYPE), p(ICO + "Record")), t(r, p(DCTERMS + "identifier"), nt_literal(f"R{k:07d}")),
                t(r, p(DCTERMS + "title"), nt_literal(f"Scène de genre n°{k}", lang="fr")),
                t(r, p(DCTERMS + "creator"), nt_literal(f"Peintre {k % 5000}")),
                t(r, p(DCTERMS + "created"), nt_literal(str(1600 + k % 300))),
                t(r, p(ICO + "year"), nt_literal(1600 + k % 300, datatype=XSD + "integer")),
                t(r, p(DCTERMS + "medium"), nt_literal("huile sur toile")),
                t(r, p(DCTERMS + "subject"), p(f"https://example.org/bench/concept/j/{k % 20000}")),
                t(r, p(DCTERMS + "subject"), p(f"https://example.org/bench/concept/j/{(k * 7 + 1) % 20000}")),
                t(r, p(ICO + "image"), im), t(im, p(RDF_TYPE), p(ICO + "Image")),
                t(im, p(ICO + "location"), nt_literal(f"/data/joconde/R{k:07d}.jpg"))]
    return out


def timed(fn) -> tuple[float, object]:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--records", type=int, default=50_000)
    ap.add_argument("--insert-records", type=int, default=5_000, help="records for the (slow) INSERT DATA path")
    ap.add_argument("--buffers", type=int, default=100_000, help="Virtuoso NumberOfBuffers (8 KiB pages)")
    args = ap.parse_args()
    if find_virtuoso() is None:
        sys.exit("virtuoso-t not found (install virtuoso-opensource)")

    lines = record_lines(args.records)
    n = len(lines)
    rows: list[dict[str, object]] = []

    def add(method: str, triples: int, seconds: float, **extra: object) -> None:
        rows.append({"method": method, "triples": triples, "seconds": round(seconds, 3),
                     "triples_per_s": round(triples / seconds) if seconds > 0 else None, **extra})
        print(f"  {method:<34} {triples:>9,} triples {seconds:8.2f} s {triples / seconds:>10,.0f} /s", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-oxi-") as d:
        ox = OxigraphStore(Path(d) / "g")
        s, _ = timed(lambda: ox.replace_graph(GRAPH, iter(lines)))
        add("oxigraph replace_graph (new graph)", n, s)
        s, _ = timed(lambda: ox.replace_graph(GRAPH, iter(lines)))
        add("oxigraph replace_graph (same data)", n, s)
        ox.close()

    with LocalVirtuoso(buffers=args.buffers, max_query_s=3600) as v:
        st = v.store(timeout_s=3600)
        for chunk in (20_000, 100_000):
            st.chunk_triples = chunk
            s, _ = timed(lambda: st.add_to_graph(GRAPH + "/gsp", iter(lines)))
            add(f"virtuoso gsp chunks of {chunk:,}", n, s)
            st.drop_graph(GRAPH + "/gsp")

        few = record_lines(args.insert_records)
        ins = v.store(graph_store_url=None, timeout_s=3600)
        s, _ = timed(lambda: ins.add_to_graph(GRAPH + "/insert", iter(few)))
        add(f"virtuoso INSERT DATA chunks of {ins.insert_chunk_triples:,}", len(few), s)
        ins.drop_graph(GRAPH + "/insert")

        nt = v.directory / "bulk.nt"
        nt.write_text("".join(lines), encoding="utf-8")

        def bulk() -> None:
            v.isql(f"ld_dir('{v.directory}', 'bulk.nt', '{GRAPH}/bulk')")
            v.isql("rdf_loader_run()", timeout_s=3600)
            v.isql("checkpoint")
        s, _ = timed(bulk)
        add("virtuoso bulk loader (server file)", n, s)
        assert st.count(GRAPH + "/bulk") == n, st.count(GRAPH + "/bulk")
        st.drop_graph(GRAPH + "/bulk")

        st.chunk_triples = 20_000
        s, count = timed(lambda: st.replace_graph(GRAPH, iter(lines)))
        assert count == n, count
        add("virtuoso replace_graph (new graph)", n, s)
        s, _ = timed(lambda: st.replace_graph(GRAPH, iter(lines)))
        add("virtuoso replace_graph (replace)", n, s)
        st.add_to_graph(GRAPH + "/staged", iter(lines))
        s, _ = timed(lambda: st.update(f"MOVE SILENT GRAPH <{GRAPH}/staged> TO GRAPH <{GRAPH}>"))
        add("virtuoso MOVE alone (replacing)", n, s)
        s, _ = timed(lambda: st.count())
        add("virtuoso count() over the store", n, s)
        rss = v.rss_bytes()
        st.close()

    print(f"\nVirtuoso resident memory at the end: {rss / 2**20:.0f} MiB (NumberOfBuffers={args.buffers})")
    out = ROOT / "bench" / "results" / "sparql_load.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"records": args.records, "rows": rows, "virtuoso_rss_bytes": rss,
                               "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()}},
                              indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
