"""Latency of the web app on the whole pomological collection (6,082 records and images).

Usage::

    nice -n 10 python bench/serve_latency.py [--data ../shared/data] [--work /tmp/iconoscope-serve-bench] [--n 20]

Builds a workspace with every record and image of ``pomological/`` (a genus > species SKOS tree, species as the
curated subject) and one prediction run. The run's scores are *synthetic load*, not a model's output: for each
image, 10 genera with seeded random scores (the true genus drawn higher), ~61,000 annotations, so that the search,
item and review queries work on a graph of realistic size. Then times, in one process through the ASGI app
(``TestClient``, no network), the median and 95th percentile of ``--n`` requests per endpoint.

Peers, in the same run, as ratios:
* the SPARQL endpoint (worker process, snapshot, JSON written by us) against the store answering the same query
  in-process with its native JSON writer (``OxigraphStore.raw_query``): the endpoint's overhead;
* a IIIF thumbnail served from the disk cache against the first (decode + resize + encode) request.

Writes ``bench/results/serve_latency.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.graph.terms import XSD, nt_float, nt_iri, nt_literal, triple  # noqa: E402
from iconoscope.graph.vocab import DCTERMS, ICO, OA, PROV, RDF_TYPE, SKOS  # noqa: E402

BASE = "https://example.org/pomo/"


def concept(kind: str, name: str) -> str:
    return f"{BASE}concept/pomo/{kind}-{quote(name.replace(' ', '_'), safe='')}"


def build(work: Path, data: Path) -> tuple[object, list[dict[str, str]]]:
    from iconoscope.workspace import Workspace

    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "iconoscope.toml").write_text(f'[collection]\nname = "pomo"\nbase_iri = "{BASE}"\n'
                                          '[serve]\nquery_timeout_s = 30\n', encoding="utf-8")
    folder = data / "pomological"
    with open(folder / "records.csv", newline="", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["genus"] and r["scientific_name"]]
    ws = Workspace(work)

    def t(s: str, p: str, o: str) -> str:
        return triple(nt_iri(s), nt_iri(p), o)

    genera = sorted({r["genus"] for r in rows})
    vocab, recs, run = [], [], []
    for g in genera:
        vocab += [t(concept("genus", g), RDF_TYPE, nt_iri(SKOS + "Concept")),
                  t(concept("genus", g), SKOS + "prefLabel", nt_literal(g, lang="la"))]
    for sp, g in sorted({(r["scientific_name"], r["genus"]) for r in rows}):
        c = concept("species", sp)
        vocab += [t(c, RDF_TYPE, nt_iri(SKOS + "Concept")), t(c, SKOS + "broader", nt_iri(concept("genus", g))),
                  t(c, SKOS + "prefLabel", nt_literal(sp, lang="la"))]
    rng = random.Random(0)
    run_iri = ws.iris.run("bench")
    run += [t(run_iri, RDF_TYPE, nt_iri(PROV + "Activity")), t(run_iri, ICO + "classifier", nt_literal("genus")),
            t(run_iri, PROV + "endedAtTime", nt_literal("2024-01-01T00:00:00Z", datatype=XSD + "dateTime"))]
    top = [g for g, _ in sorted(((g, sum(r["genus"] == g for r in rows)) for g in genera), key=lambda x: -x[1])][:10]
    for r in rows:
        rid = r["naldc_id"]
        rec, img = ws.iris.record(rid), ws.iris.image(rid)
        recs += [t(rec, RDF_TYPE, nt_iri(ICO + "Record")), t(rec, DCTERMS + "identifier", nt_literal(rid)),
                 t(rec, DCTERMS + "title", nt_literal(r["variety"] or r["scientific_name"], lang="en")),
                 t(rec, ICO + "source", nt_literal("usda")),
                 t(rec, DCTERMS + "subject", nt_iri(concept("species", r["scientific_name"]))),
                 t(rec, ICO + "image", nt_iri(img)), t(img, RDF_TYPE, nt_iri(ICO + "Image")),
                 t(img, ICO + "location", nt_literal(str(folder / "images" / r["image"]))),
                 t(img, ICO + "record", nt_iri(rec))]
        if r["artist"]:
            recs.append(t(rec, DCTERMS + "creator", nt_literal(r["artist"])))
        if r["year"].isdigit():
            recs += [t(rec, DCTERMS + "created", nt_literal(r["year"])),
                     t(rec, ICO + "year", nt_literal(r["year"], datatype=XSD + "integer"))]
        for g in top:
            a = ws.iris.annotation("bench", f"{rid}|{g}")
            score = rng.uniform(0.5, 0.99) if g == r["genus"] else rng.uniform(0.0, 0.6)
            run += [t(a, RDF_TYPE, nt_iri(OA + "Annotation")), t(a, OA + "hasTarget", nt_iri(img)),
                    t(a, OA + "hasBody", nt_iri(concept("genus", g))), t(a, ICO + "score", nt_float(score)),
                    t(a, PROV + "wasGeneratedBy", nt_iri(run_iri))]
    ws.store.replace_graph(ws.iris.vocab_graph("pomo"), vocab)
    ws.store.replace_graph(ws.iris.source_graph("usda"), recs)
    ws.store.replace_graph(ws.iris.run_graph("bench"), run)
    return ws, rows


def timed(fn, n: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return {"p50_ms": 1000 * statistics.median(times), "p95_ms": 1000 * times[max(0, int(0.95 * len(times)) - 1)],
            "n": n}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-serve-bench"))
    ap.add_argument("--n", type=int, default=20)
    args = ap.parse_args()

    from fastapi.testclient import TestClient

    from iconoscope.serve import create_app

    t0 = time.perf_counter()
    ws, rows = build(args.work, args.data)
    build_s = time.perf_counter() - t0
    print(f"built the workspace in {build_s:.0f} s", file=sys.stderr, flush=True)
    triples = ws.store.count()  # type: ignore[attr-defined]
    client = TestClient(create_app(ws, token="t"))
    rid = rows[100]["naldc_id"]
    malus = concept("genus", "Malus")

    def ok(path: str, **params: object) -> None:
        r = client.get(path, params=params)
        assert r.status_code == 200, (path, r.status_code, r.text[:300])

    cases = {
        "search: browse all (API)": lambda: ok("/api/search"),
        "search: text 'deane' (API)": lambda: ok("/api/search", q="deane"),
        "search: concept Malus + narrower, >=0.5 (API)": lambda: ok("/api/search", concept=malus, min_score=0.5),
        "search page (HTML)": lambda: ok("/", q="malus"),
        "record (API)": lambda: ok(f"/api/records/{rid}"),
        "record page (HTML)": lambda: ok(f"/record/{rid}"),
        "review queue: silence (API)": lambda: ok("/api/review", kind="silence"),
        "IIIF manifest": lambda: ok(f"/iiif/{rid}/manifest"),
    }
    results: dict[str, dict[str, float]] = {}
    for name, fn in cases.items():
        fn()                                                  # warm-up (imports, first snapshot)
        results[name] = timed(fn, args.n)
        print(f"{name}: p50 {results[name]['p50_ms']:.0f} ms", file=sys.stderr, flush=True)

    q = ("SELECT ?r ?t WHERE { ?r a <https://w3id.org/iconoscope/ns#Record> ; "
         "<http://purl.org/dc/terms/title> ?t } LIMIT 5000")
    ok("/sparql", query=q)
    results["SPARQL 5,000 rows JSON: endpoint"] = timed(lambda: ok("/sparql", query=q), args.n)
    results["SPARQL 5,000 rows JSON: store.raw_query (peer)"] = timed(
        lambda: ws.store.raw_query(q, "json"), args.n)  # type: ignore[attr-defined]

    thumbs = [r["naldc_id"] for r in rows[200:200 + args.n]]
    it = iter(thumbs)
    results["IIIF thumbnail, first request"] = timed(lambda: ok(f"/iiif/image/{next(it)}/full/!150,150/0/default.jpg"),
                                                     len(thumbs))
    it = iter(thumbs)
    results["IIIF thumbnail, cached (peer)"] = timed(lambda: ok(f"/iiif/image/{next(it)}/full/!150,150/0/default.jpg"),
                                                     len(thumbs))
    ratios = {
        "endpoint / raw_query": results["SPARQL 5,000 rows JSON: endpoint"]["p50_ms"]
        / results["SPARQL 5,000 rows JSON: store.raw_query (peer)"]["p50_ms"],
        "first thumbnail / cached": results["IIIF thumbnail, first request"]["p50_ms"]
        / results["IIIF thumbnail, cached (peer)"]["p50_ms"],
    }
    client.app.state.iconoscope.runner.close()
    ws.close()  # type: ignore[attr-defined]

    width = max(len(k) for k in results)
    print(f"\nweb app latency: {len(rows)} records, {triples} triples (built in {build_s:.0f} s)\n")
    print(f"{'request'.ljust(width)}  {'p50 ms':>8}  {'p95 ms':>8}")
    for k, v in results.items():
        print(f"{k.ljust(width)}  {v['p50_ms']:8.1f}  {v['p95_ms']:8.1f}")
    for k, v in ratios.items():
        print(f"ratio {k}: {v:.2f}")
    out = ROOT / "bench" / "results" / "serve_latency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"records": len(rows), "triples": triples, "build_s": build_s, "results": results,
                               "ratios": ratios}, indent=1), encoding="utf-8")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
