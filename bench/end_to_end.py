"""The Joconde-scale run, end to end, on the embedded store and on Virtuoso: times, memory, same answers.

On the synthetic collection of ``bench/synthetic.py`` (300,000 records, one image each, 1-5 subjects drawn from a
20,000-concept SKOS thesaurus), for each store in its own workspace, through the library functions the CLI calls:

1. ``vocab load`` + ``ingest`` (``load_vocabulary``, ``ingest_all``): CSV -> records, images, matched subjects;
2. the label matrix for 40 mid-level categories (chosen from the graph: the concepts with between 0.5% and 10% of
   records at or below them): the records' subjects and the thesaurus' ``skos:broader`` edges read from the
   store, closed in Python (``--labels`` also times ``derive_labels``, which does it in one SPARQL query);
3. predict write-back with synthetic scores (``write_run_report``): every image x 40 categories from a seeded
   score model (positives ~ sigmoid(N(2.5, 1.5)), negatives ~ sigmoid(N(-7, 1.5)); 1% of curated pairs planted as
   noise, 3,000 uncurated pairs as silence) plus out-of-fold scores for 50,000 records (the audit's thresholds);
4. ranked ``search`` for every category label (p50/p95 after a cold first query);
5. the full noise + silence ``audit`` (``audit_all``).

Memory: the peak resident memory of this process per store (reset between stores) and of the Virtuoso server;
disk: the store's files. The answers (label table, search hits, audit lists) are hashed per store, and the run
says whether Virtuoso's equal the embedded store's.

    python bench/end_to_end.py                          # 300k records, both stores (~2 x 15 min when loaded)
    python bench/end_to_end.py --n 30000 --concepts 5000  # a quick look
    python bench/end_to_end.py --stores virtuoso        # one store (answers compared with a previous run's)

Results: bench/results/end_to_end-n{N}.json (one entry per store; a later run of one store updates its entry).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "bench"))
os.environ.setdefault("ICONOSCOPE_NO_PROGRESS", "1")

NAME = "bench"


def peak_rss_mb(pid: int | str = "self") -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def reset_peak_rss() -> None:
    """Linux: writing 5 to clear_refs resets VmHWM, so each store's peak is its own."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def disk_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) / 2**20


class Clock:
    """Wall and CPU seconds of each step (on a shared machine CPU time is the cost; wall also counts waiting)."""

    def __init__(self) -> None:
        self.steps: dict[str, dict[str, float]] = {}

    def __call__(self, name: str, fn: Any, *args: Any, **kw: Any) -> Any:
        c0, t0 = time.process_time(), time.perf_counter()
        print(f"  {name} ...", flush=True)
        out = fn(*args, **kw)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        self.steps[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "loadavg": round(os.getloadavg()[0], 1)}
        print(f"  {name}: {wall:.1f} s wall, {cpu:.1f} s CPU (load avg {os.getloadavg()[0]:.1f})", flush=True)
        return out


def workspace_config(synth: dict[str, Path], categories: list[str] | None, store_toml: str | None) -> str:
    """The synthetic collection's iconoscope.toml with absolute paths, our classifier and, maybe, a remote store."""
    text = synth["config"].read_text(encoding="utf-8")
    for key in ("thesaurus", "records", "images"):
        name = synth[key].name
        text = re.sub(rf'= "{re.escape(name)}"', f'= "{synth[key]}"', text)
    if store_toml:
        text += "\n" + store_toml
    if categories:
        cats = ", ".join(f'"{c}"' for c in categories)
        text += f'\n[classifiers.{NAME}]\nvocabulary = "synth"\ncategories = [{cats}]\nexpand = "narrower"\n'
    return text


def label_matrix(ws: Any) -> dict[str, Any]:
    """Records, their image and the concepts at or above each curated subject (skos:broader closure), from the graph.

    Three SELECTs through the store's CSV path and a closure in Python: what ``derive_labels`` computes with one
    SPARQL property path, which is too slow at this scale today (``--labels`` times it; see docs/scaling.md).
    """
    from iconoscope.enrich.tables import select_table
    from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, SKOS

    recs = select_table(ws.store, f"SELECT ?r ?id ?img WHERE {{ ?r a <{ICO}Record> ; <{DCTERMS}identifier> ?id ; "
                                  f"<{ICO}image> ?img }}")
    subj = select_table(ws.store, f"SELECT ?r ?s WHERE {{ ?r <{DCTERMS}subject> ?s . ?r <{RDF_TYPE}> <{ICO}Record> }}")
    edges = select_table(ws.store, f"SELECT ?c ?b WHERE {{ ?c <{SKOS}broader> ?b }}")
    parent: dict[str, str] = dict(zip(edges.column("c").to_pylist(), edges.column("b").to_pylist(), strict=True))
    above: dict[str, set[str]] = {}
    for r, s_ in zip(subj.column("r").to_pylist(), subj.column("s").to_pylist(), strict=True):
        c: str | None = s_
        hops = 0
        while c is not None and hops < 16:
            above.setdefault(r, set()).add(c)
            c = parent.get(c)
            hops += 1
    order = sorted(zip(recs.column("r").to_pylist(), recs.column("id").to_pylist(), recs.column("img").to_pylist(),
                       strict=True), key=lambda t: t[1])
    return {"records": [t[0] for t in order], "record_ids": [t[1] for t in order],
            "images": [ws.iris.id_of(t[2], "image") for t in order], "above": above}


def choose_categories(lm: dict[str, Any], n_records: int, k: int) -> list[str]:
    """Mid-level concepts: between 0.5% and 10% of records at or below them (deterministic)."""
    count: dict[str, int] = {}
    for cs in lm["above"].values():
        for c in cs:
            count[c] = count.get(c, 0) + 1
    lo, hi = 0.005 * n_records, 0.10 * n_records
    mid = sorted((c for c, n in count.items() if lo <= n <= hi), key=lambda c: (-count[c], c))
    return sorted(mid[:k])


def pref_labels_fr(ws: Any, iris: list[str]) -> dict[str, str]:
    from iconoscope.graph.queries import values_iris
    from iconoscope.graph.vocab import SKOS

    rows = ws.store.select(f"SELECT ?c ?l WHERE {{ VALUES ?c {{ {values_iris(iris)} }} ?c <{SKOS}prefLabel> ?l "
                           'FILTER(LANG(?l) = "fr") }').rows
    return {c.value: lab.value for c, lab in rows}


def score_model(C: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    truth = C.copy()
    cur = np.flatnonzero(C.reshape(-1))
    noise = rng.choice(cur, max(1, len(cur) // 100), replace=False)
    truth.reshape(-1)[noise] = False
    uncur = np.flatnonzero(~C.reshape(-1))
    silence = rng.choice(uncur, min(3000, len(uncur)), replace=False)
    truth.reshape(-1)[silence] = True
    logit = np.where(truth, rng.normal(2.5, 1.5, C.shape), rng.normal(-7.0, 1.5, C.shape))
    return (1 / (1 + np.exp(-logit))).astype(np.float32), noise, silence


def digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def run_store(kind: str, root: Path, synth: dict[str, Path], args: argparse.Namespace,
              shared: dict[str, Any]) -> dict[str, Any]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iconoscope.enrich.audit import audit_all
    from iconoscope.enrich.search import search
    from iconoscope.enrich.thresholds import class_thresholds
    from iconoscope.enrich.write import write_run_report
    from iconoscope.ingest import ingest_all
    from iconoscope.thesaurus import load_vocabulary
    from iconoscope.workspace import Workspace

    print(f"\n== {kind}: {args.n:,} records", flush=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    server = None
    store_toml = None
    if kind == "virtuoso":
        from iconoscope.scale.virtuoso import LocalVirtuoso

        server = LocalVirtuoso(root / "virtuoso", buffers=args.virtuoso_buffers, max_query_s=3600).start()
        os.environ["ICONOSCOPE_BENCH_VIRTUOSO_PW"] = server.password
        store_toml = (f'[store]\nkind = "sparql"\nquery_url = "{server.query_url}"\n'
                      f'update_url = "{server.update_url}"\nuser = "dba"\n'
                      'password_env = "ICONOSCOPE_BENCH_VIRTUOSO_PW"\ntimeout_s = 3600\n')
    reset_peak_rss()
    clock = Clock()
    out: dict[str, Any] = {"store": kind}
    try:
        (root / "iconoscope.toml").write_text(workspace_config(synth, None, store_toml), encoding="utf-8")
        ws = Workspace(root)
        vrep = clock("vocab load", load_vocabulary, ws, "synth")
        reps = clock("ingest", ingest_all, ws)
        out["graph_after_ingest"] = {"vocab_triples": vrep.triples, "source_triples": sum(r.triples for r in reps),
                                     "records": sum(r.records for r in reps),
                                     "matched_mentions": sum(r.matched for r in reps),
                                     "mentions": sum(r.mentions for r in reps)}
        lm = clock("label matrix", label_matrix, ws)
        if "categories" not in shared:
            shared["categories"] = choose_categories(lm, args.n, args.categories)
        cat_iris: list[str] = shared["categories"]
        if args.labels:
            ws.close()
            (root / "iconoscope.toml").write_text(workspace_config(synth, cat_iris, store_toml), encoding="utf-8")
            ws = Workspace(root)
            from iconoscope.ingest.labels import derive_labels

            table = clock("labels (derive_labels)", derive_labels, ws, NAME)
            out["derive_labels_rows"] = table.num_rows
        names = pref_labels_fr(ws, cat_iris)
        images, records = lm["images"], lm["record_ids"]
        col = {c: j for j, c in enumerate(cat_iris)}
        C = np.zeros((len(images), len(cat_iris)), dtype=bool)
        for i, r in enumerate(lm["records"]):
            for c in lm["above"].get(r, ()):
                if c in col:
                    C[i, col[c]] = True
        label_rows = [(im, [cat_iris[j] for j in np.flatnonzero(C[i])]) for i, im in enumerate(images)]
        out["labels"] = {"images": len(images), "positives": int(C.sum()), "digest": digest(label_rows)}

        rng = np.random.default_rng(args.seed)
        S, noise, silence = score_model(C, rng)
        rows = rng.choice(len(images), min(args.train, len(images)), replace=False)
        S_oof, _, _ = score_model(C[rows], rng)
        k = len(cat_iris)
        pq.write_table(pa.table({
            "record": np.repeat(np.asarray(records, dtype=object)[rows], k).tolist(),
            "image": np.repeat(np.asarray(images, dtype=object)[rows], k).tolist(),
            "concept": np.tile(np.asarray(cat_iris, dtype=object), len(rows)).tolist(),
            "score": S_oof.reshape(-1), "label": C[rows].reshape(-1).astype(np.int8),
            "fold": np.repeat(rows % 5, k).astype(np.int16)}), ws.model_dir(NAME) / "oof_scores.parquet")
        th = class_thresholds(ws, NAME)
        floors = {c: float(th.t_pos[j]) for j, c in enumerate(th.concepts) if not np.isnan(th.t_pos[j])}
        rep = clock("predict write-back", write_run_report, ws, NAME, images, cat_iris, S, 1, {"bench": True},
                    records=records, floor=args.floor, floors=floors, show_progress=False)
        out["write"] = {"predictions": int(S.size), "annotations": rep.annotations, "triples": rep.triples}

        queries = [names[c] for c in cat_iris]
        t0 = time.perf_counter()
        search(ws, queries[0], lang="fr", min_score=0.5, limit=50)
        cold = time.perf_counter() - t0
        times, hits = [], []
        for q in queries:
            t0 = time.perf_counter()
            res = search(ws, q, lang="fr", min_score=0.5, limit=50)
            times.append(time.perf_counter() - t0)
            hits.append([(h.record, h.concept, f"{h.score:.5f}", h.annotated) for h in res])
        clock.steps["search"] = {"queries": len(times), "cold_s": round(cold, 3),
                                 "p50_ms": round(statistics.median(times) * 1000, 1),
                                 "p95_ms": round(float(np.percentile(times, 95)) * 1000, 1)}
        print(f"  search: {clock.steps['search']}", flush=True)
        both = clock("audit (noise + silence)", audit_all, ws, NAME)
        audit_rows = {kind_: [(i.record, i.concept, f"{i.score:.5f}") for i in items]
                      for kind_, items in both.items()}
        cat_idx = {c: j for j, c in enumerate(cat_iris)}
        rec_idx = {r: i for i, r in enumerate(records)}  # one image per record in this collection
        planted_noise = {(int(x // k), int(x % k)) for x in noise.tolist()}
        planted_silence = {(int(x // k), int(x % k)) for x in silence.tolist()}
        found = {(rec_idx.get(i.record, -1), cat_idx[i.concept]) for i in both["noise"]}
        found_s = {(rec_idx.get(i.record, -1), cat_idx[i.concept]) for i in both["silence"]}
        out["answers"] = {"search_hits": sum(len(h) for h in hits), "search_digest": digest(hits),
                          "noise_items": len(both["noise"]), "silence_items": len(both["silence"]),
                          "audit_digest": digest(audit_rows),
                          "planted_noise_found": round(len(found & planted_noise) / max(1, len(planted_noise)), 3),
                          "planted_silence_found": round(len(found_s & planted_silence) / max(1, len(planted_silence)),
                                                         3)}
        out["steps"] = clock.steps
        out["triples"] = ws.store.count()
        if kind == "oxigraph":
            ws.store.flush()  # type: ignore[attr-defined]
            out["disk_mb"] = round(disk_mb(root / "graph"), 1)
        ws.close()
        out["client_peak_rss_mb"] = round(peak_rss_mb())
        if server is not None:
            server.isql("checkpoint")
            out["server_peak_rss_mb"] = round(peak_rss_mb(server.pid or 0))
            out["disk_mb"] = round(sum(p.stat().st_size for p in server.directory.glob("virtuoso*.db")) / 2**20, 1)
            out["virtuoso_buffers"] = args.virtuoso_buffers
    finally:
        if server is not None:
            server.stop()
    return out


def main() -> None:
    from synthetic import generate

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300_000, help="records (one image each)")
    ap.add_argument("--concepts", type=int, default=20_000)
    ap.add_argument("--categories", type=int, default=40)
    ap.add_argument("--train", type=int, default=50_000, help="records with out-of-fold scores")
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--stores", default="oxigraph,virtuoso")
    ap.add_argument("--labels", action="store_true", help="also time derive_labels (slow at this scale)")
    ap.add_argument("--virtuoso-buffers", type=int, default=250_000, help="NumberOfBuffers (8 KiB pages)")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/iconoscope-bench-e2e"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--child-out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    for s in stores:
        if s not in ("oxigraph", "virtuoso"):
            sys.exit(f"--stores: unknown store {s!r} (oxigraph, virtuoso)")
    synth = generate(args.dir / f"synthetic-n{args.n}-c{args.concepts}", n_records=args.n, n_concepts=args.concepts,
                     seed=args.seed)
    out_path = REPO / "bench" / "results" / f"end_to_end-n{args.n}.json"
    params = {k: getattr(args, k) for k in ("n", "concepts", "categories", "train", "floor", "seed")}
    previous = json.loads(out_path.read_text()) if out_path.exists() else {}
    result = previous if previous.get("params") == params else {"params": params, "stores": {}}
    if args.child:  # one store, in this process (its peak memory is then its own)
        shared: dict[str, Any] = {"categories": result["categories"]} if "categories" in result else {}
        res = run_store(args.child, args.dir / f"ws-n{args.n}-{args.child}", synth, args, shared)
        Path(args.child_out).write_text(json.dumps({"result": res, "categories": shared["categories"]}))
        return
    for s in stores:
        child_out = args.dir / f"child-{s}.json"
        cmd = [sys.executable, __file__, "--child", s, "--child-out", str(child_out), "--dir", str(args.dir),
               *[f"--{k}={getattr(args, k)}" for k in ("n", "concepts", "categories", "train", "floor", "seed")],
               f"--virtuoso-buffers={args.virtuoso_buffers}", *(["--labels"] if args.labels else [])]
        subprocess.run(cmd, check=True)
        child = json.loads(child_out.read_text())
        result["stores"][s] = child["result"]
        result["categories"] = child["categories"]
        result.setdefault("machine", {})[s] = {"cpus": os.cpu_count(), "loadavg_end": round(os.getloadavg()[0], 1)}
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=1))
    report(result)
    out_path.write_text(json.dumps(result, indent=1))
    print(f"\nwrote {out_path}")


def report(result: dict[str, Any]) -> None:
    st = result["stores"]
    kinds = [k for k in ("oxigraph", "virtuoso") if k in st]
    print(f"\n| step ({result['params']['n']:,} records) | " + " | ".join(kinds) + " |")
    print("|---|" + "---|" * len(kinds))

    def cell(k: str, step: str) -> str:
        s = st[k]["steps"].get(step)
        return f"{s['wall_s']} s ({s['cpu_s']} s CPU)" if s else "-"

    for step in ("vocab load", "ingest", "label matrix", "predict write-back", "audit (noise + silence)"):
        print(f"| {step} | " + " | ".join(cell(k, step) for k in kinds) + " |")
    print("| search p50 / p95 | " + " | ".join(
        f"{st[k]['steps']['search']['p50_ms']} / {st[k]['steps']['search']['p95_ms']} ms" for k in kinds) + " |")
    print("| triples | " + " | ".join(f"{st[k]['triples']:,}" for k in kinds) + " |")
    print("| client peak RSS | " + " | ".join(f"{st[k]['client_peak_rss_mb']} MiB" for k in kinds) + " |")
    print("| server peak RSS | " + " | ".join(
        f"{st[k]['server_peak_rss_mb']} MiB" if "server_peak_rss_mb" in st[k] else "-" for k in kinds) + " |")
    print("| disk | " + " | ".join(f"{st[k]['disk_mb']} MiB" for k in kinds) + " |")
    print("| noise / silence items | " + " | ".join(
        f"{st[k]['answers']['noise_items']} / {st[k]['answers']['silence_items']}" for k in kinds) + " |")
    if len(kinds) == 2:
        a, b = (st[k] for k in kinds)
        same = {"labels": a["labels"]["digest"] == b["labels"]["digest"],
                "search": a["answers"]["search_digest"] == b["answers"]["search_digest"],
                "audit": a["answers"]["audit_digest"] == b["answers"]["audit_digest"]}
        result["same_answers"] = same
        print(f"\nsame answers on both stores: {same}")


if __name__ == "__main__":
    main()
