"""Ingest and thesaurus-load throughput, against rdflib and against Oxigraph's own bulk loader.

    nice -n 10 .venv/bin/python bench/ingest.py                      # 300k records, 20k concepts
    nice -n 10 .venv/bin/python bench/ingest.py --records 30000      # a quick run
    nice -n 10 .venv/bin/python bench/ingest.py --iconclass --joconde  # + whole Iconclass, Joconde matching

What is measured, on the synthetic collection of bench/synthetic.py (cached between runs):

* ``ingest``: our whole ``ingest_source`` (CSV parsing, subject matching, N-Triples, atomic graph swap) into a fresh
  on-disk store, in triples per second of wall time (and of process CPU time, all threads: the machine is shared,
  so wall time depends on the load; the CPU rate does not);
* ``re-ingest``: the same source again (the diff swap: nothing changes, nothing is written);
* peers on the very triples our ingest wrote (exported to N-Triples): Oxigraph's ``bulk_load`` alone (the floor
  of what any loader on this store can do) and rdflib ``Graph.parse`` (the common pure-Python choice; on the first
  ``--rdflib-triples`` lines, as it needs ~1 kB of RAM per triple);
* ``--iconclass``: the whole Iconclass base system loaded as a vocabulary (target: well under a minute);
* ``--joconde``: the Joconde sample's REPR strings parsed (Garnier) and matched against Iconclass FR labels.

Prints a table and writes bench/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from synthetic import generate  # noqa: E402

from iconoscope.workspace import Workspace  # noqa: E402


def cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class Timer:
    def __enter__(self) -> Timer:
        self.w0, self.c0 = time.perf_counter(), cpu()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.w0
        self.cpu = cpu() - self.c0


def row(name: str, n: int, t: Timer, note: str = "") -> dict[str, object]:
    return {"step": name, "triples": n, "wall_s": round(t.wall, 2), "cpu_s": round(t.cpu, 2),
            "triples_per_s_wall": round(n / t.wall) if t.wall else None,
            "triples_per_s_cpu": round(n / t.cpu) if t.cpu else None, "note": note}


def bench_synthetic(args: argparse.Namespace, results: list[dict[str, object]]) -> None:
    from iconoscope.ingest import ingest_source
    from iconoscope.thesaurus import load_vocabulary

    paths = generate(args.data, n_records=args.records, n_concepts=args.concepts, seed=0)
    root = Path(paths["root"])
    shutil.rmtree(root / "graph", ignore_errors=True)
    ws = Workspace(root)
    with Timer() as t:
        rep = load_vocabulary(ws, "synth")
    results.append(row("vocab load (synthetic SKOS)", rep.triples, t, f"{rep.concepts} concepts"))
    with Timer() as t:
        ing = ingest_source(ws, "records")
    results.append(row("ingest (ours, first load)", ing.triples, t,
                       f"{ing.records} records, {ing.matched}/{ing.mentions} mentions matched"))
    with Timer() as t:
        again = ingest_source(ws, "records")
    assert again.triples == ing.triples, "re-ingest changed the triple count"
    results.append(row("re-ingest (unchanged data)", again.triples, t, "identical triple count"))

    tmp = Path(tempfile.mkdtemp(prefix="iconoscope-bench-", dir=args.tmp))
    try:
        nt = tmp / "source.nt"
        nt.write_bytes(ws.store.export("nt", ws.iris.source_graph("records")))
        ws.close()
        import pyoxigraph as ox

        st = ox.Store(str(tmp / "ox"))
        with Timer() as t:
            st.bulk_load(path=str(nt), format=ox.RdfFormat.N_TRIPLES, to_graph=ox.NamedNode("urn:g"))
        results.append(row("peer: Oxigraph bulk_load of the same N-Triples", ing.triples, t, "loader alone"))
        del st
        import rdflib

        k = min(args.rdflib_triples, ing.triples)
        part = tmp / "part.nt"
        with open(nt, encoding="utf-8") as src, open(part, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i >= k:
                    break
                dst.write(line)
        g = rdflib.Graph()
        with Timer() as t:
            g.parse(part, format="nt")
        results.append(row("peer: rdflib Graph.parse of the same N-Triples", len(g), t, f"first {k} triples"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_iconclass(args: argparse.Namespace, results: list[dict[str, object]]) -> None:
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.thesaurus import load_vocabulary

    folder = Path(args.shared) / "iconclass"
    tmp = Path(tempfile.mkdtemp(prefix="iconoscope-bench-", dir=args.tmp))
    try:
        init_workspace(tmp / "ws", name="ic")
        ws = Workspace(tmp / "ws")
        with Timer() as t:
            rep = load_vocabulary(ws, "iconclass", folder, "iconclass")
        results.append(row("Iconclass base system (vocab load)", rep.triples, t,
                           f"{rep.concepts} concepts, {sum(rep.pref_labels.values())} prefLabels, "
                           f"{rep.alt_labels} altLabels"))
        if args.joconde:
            bench_joconde(args, ws, results)
        ws.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench_joconde(args: argparse.Namespace, ws: Workspace, results: list[dict[str, object]]) -> None:
    """Garnier strings of the Joconde sample matched against Iconclass (FR labels and keywords)."""
    import csv
    from collections import Counter

    from iconoscope.ingest.garnier import parse_mentions
    from iconoscope.thesaurus import build_label_index

    index = build_label_index(ws, ["iconclass"])
    folder = Path(args.shared) / "joconde_sample"
    counts: Counter[str] = Counter()
    top: dict[str, Counter[str]] = {k: Counter() for k in ("matched", "ambiguous", "none")}
    t = Timer()
    with t:
        for name in ("BaseJoconde-Costumes-19e-20e.csv", "BaseJoconde_Paris_Reconc.csv"):
            with open(folder / name, encoding="utf-8") as f:
                for r in csv.DictReader(f):
                    text = r["Sujet_Represente"].strip()
                    if not text:
                        continue
                    counts["strings"] += 1
                    mentions, problems = parse_mentions(text, lenient=True)
                    counts["malformed strings (repaired)"] += bool(problems)
                    for m in mentions:
                        counts["mentions"] += 1
                        if m.uncertain:
                            counts["uncertain (?)"] += 1
                            continue
                        match = index.lookup(m.text, "fr")
                        key = "matched" if match.matched else match.how
                        counts[f"{key}" if key != "matched" else f"matched ({match.how})"] += 1
                        top["matched" if match.matched else key][m.text] += 1
    summary = {k: v for k, v in sorted(counts.items())}
    summary["top_matched"] = top["matched"].most_common(10)
    summary["top_ambiguous"] = top["ambiguous"].most_common(10)
    summary["top_unmatched"] = top["none"].most_common(10)
    results.append({"step": "Joconde REPR vs Iconclass FR", "triples": 0, "wall_s": round(t.wall, 2),
                    "cpu_s": round(t.cpu, 2), "note": json.dumps({k: v for k, v in counts.items()},
                                                                ensure_ascii=False), "joconde": summary})


def main() -> None:
    ap = argparse.ArgumentParser(description="Ingest throughput vs rdflib and Oxigraph's bulk loader")
    ap.add_argument("--records", type=int, default=300_000)
    ap.add_argument("--concepts", type=int, default=20_000)
    ap.add_argument("--rdflib-triples", type=int, default=1_000_000)
    ap.add_argument("--data", type=Path, default=None, help="where the synthetic collection is cached")
    ap.add_argument("--tmp", default=None, help="scratch folder (default: the system's)")
    ap.add_argument("--shared", type=Path, default=Path(os.environ.get("ICONOSCOPE_DATA", HERE.parent.parent /
                                                                       "shared" / "data")))
    ap.add_argument("--iconclass", action="store_true", help="also time the whole Iconclass load")
    ap.add_argument("--joconde", action="store_true", help="also match the Joconde sample (implies --iconclass)")
    ap.add_argument("--skip-synthetic", action="store_true")
    args = ap.parse_args()
    if args.data is None:
        args.data = Path(tempfile.gettempdir()) / f"iconoscope-synthetic-{args.records}-{args.concepts}"
    results: list[dict[str, object]] = []
    if not args.skip_synthetic:
        bench_synthetic(args, results)
    if args.iconclass or args.joconde:
        bench_iconclass(args, results)

    print(f"{'step':48} {'triples':>10} {'wall s':>8} {'cpu s':>8} {'tr/s wall':>10} {'tr/s cpu':>10}  note")
    for r in results:
        print(f"{r['step']:48} {r['triples']:>10} {r['wall_s']:>8} {r['cpu_s']:>8} "
              f"{r.get('triples_per_s_wall') or '-':>10} {r.get('triples_per_s_cpu') or '-':>10}  {r['note']}")
    by = {r["step"]: r for r in results}
    ours, rdf = by.get("ingest (ours, first load)"), by.get("peer: rdflib Graph.parse of the same N-Triples")
    ox_row = by.get("peer: Oxigraph bulk_load of the same N-Triples")
    ratios = {}
    if ours and rdf:
        for k in ("triples_per_s_wall", "triples_per_s_cpu"):
            ratios[f"ours/rdflib ({k[-4:]})"] = round(ours[k] / rdf[k], 2)  # type: ignore[operator]
    if ours and ox_row:
        for k in ("triples_per_s_wall", "triples_per_s_cpu"):
            ratios[f"ours/oxigraph bulk_load ({k[-4:]})"] = round(ours[k] / ox_row[k], 2)  # type: ignore[operator]
    for k, v in ratios.items():
        print(f"ratio {k}: {v}")
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    info = {"records": args.records, "concepts": args.concepts, "cpus": os.cpu_count(),
            "loadavg": os.getloadavg(), "results": results, "ratios": ratios}
    (out / "ingest.json").write_text(json.dumps(info, ensure_ascii=False, indent=1), encoding="utf-8")
    print(f"wrote {out / 'ingest.json'}")


if __name__ == "__main__":
    main()
