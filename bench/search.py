"""Ranked search and noise/silence audit at Joconde scale: the derived score index against plain SPARQL on Oxigraph.

A synthetic collection (300,000 records, one image each, 1-5 curated subjects drawn from a 20,000-concept SKOS
hierarchy) gets 40 categories of scores for every record (12M predictions) written by ``write_run`` as a real run
graph, with out-of-fold scores for a 50,000-record "training set" (the audit's thresholds). Then, in the same
process and on the same store:

* ranked search: ``iconoscope.enrich.search.search`` (p50/p95 over category labels and top concepts) vs the shipped
  ``queries/monalia_ranked.rq`` in plain SPARQL (LIMIT 50), with the rankings compared;
* the full noise + silence audit over the 40 categories (``audit_all``) vs the plain-SPARQL audit
  (``enrich_plain_noise.rq`` / ``enrich_plain_silence.rq``) timed per category on ``--plain-categories`` of them,
  with the answers compared on those categories.

Score model (documented because the floor's cost depends on it): logits ~ N(2.5, 1.5) for what a record shows,
N(-7, 1.5) otherwise; 1% of curated pairs are planted as wrong (negative scores: noise), 3,000 uncurated pairs as
missing (positive scores: silence).

    python bench/search.py                       # the full 300k run (~15-25 min on a loaded 2-core machine)
    python bench/search.py --n 30000 --concepts 5000 --plain-categories 2     # a quick look
    python bench/search.py --tradeoff            # floor trade-off: triples, load time, disk for 1M predictions

The loaded workspace is cached in --dir (reused when the parameters match). Results: bench/results/search*.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from iconoscope.cli.workspace_cmds import init_workspace  # noqa: E402
from iconoscope.enrich.audit import audit_all, plain_sparql_audit  # noqa: E402
from iconoscope.enrich.runs import latest_run  # noqa: E402
from iconoscope.enrich.search import search  # noqa: E402
from iconoscope.enrich.thresholds import class_thresholds  # noqa: E402
from iconoscope.enrich.write import write_run_report  # noqa: E402
from iconoscope.graph.terms import nt_iri, nt_literal  # noqa: E402
from iconoscope.graph.vocab import DCTERMS, ICO, RDF_TYPE, SKOS  # noqa: E402
from iconoscope.workspace import Workspace  # noqa: E402

NAME = "bench"


def disk_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# ---- the synthetic collection --------------------------------------------------------------------------------------

def hierarchy(n_concepts: int, rng: np.random.Generator) -> np.ndarray:
    """parent index per concept (-1 for the 10 top concepts): 10 / 100 / 1,000 / the rest."""
    parent = np.full(n_concepts, -1)
    l1, l2 = min(110, n_concepts), min(1110, n_concepts)
    parent[10:l1] = rng.integers(0, 10, l1 - 10)
    parent[l1:l2] = rng.integers(10, l1, l2 - l1)
    parent[l2:] = rng.integers(110, l2, n_concepts - l2)
    return parent


def build(ws: Workspace, n: int, n_concepts: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    iris = ws.iris
    parent = hierarchy(n_concepts, rng)
    t = nt_iri(RDF_TYPE)
    cpt = [nt_iri(iris.concept("t", str(c))) for c in range(n_concepts)]
    lines = []
    for c in range(n_concepts):
        label = f"concept {c}"
        lines.append(f"{cpt[c]} {t} <{SKOS}Concept> .\n{cpt[c]} <{SKOS}prefLabel> {nt_literal(label, 'fr')} .\n"
                     f"{cpt[c]} <{SKOS}prefLabel> {nt_literal(label, 'en')} .\n")
        if parent[c] >= 0:
            lines.append(f"{cpt[c]} <{SKOS}broader> {cpt[parent[c]]} .\n{cpt[parent[c]]} <{SKOS}narrower> {cpt[c]} .\n")
    t0 = time.perf_counter()
    ws.store.replace_graph(iris.vocab_graph("t"), lines)
    k = rng.integers(1, 6, n)
    subj = rng.integers(0, n_concepts, int(k.sum()))
    starts = np.concatenate([[0], np.cumsum(k)])

    def records():
        for r in range(n):
            rec, img = nt_iri(iris.record(str(r))), nt_iri(iris.image(str(r)))
            s = subj[starts[r]:starts[r + 1]]
            yield (f"{rec} {t} <{ICO}Record> .\n{rec} <{DCTERMS}identifier> \"{r}\" .\n"
                   f"{rec} <{ICO}subjectText> \"{' ; '.join(f'concept {c}' for c in s)}\"@fr .\n"
                   + "".join(f"{rec} <{DCTERMS}subject> {cpt[c]} .\n" for c in s)
                   + f"{rec} <{ICO}image> {img} .\n{img} {t} <{ICO}Image> .\n{img} <{ICO}record> {rec} .\n"
                   f"{img} <{ICO}location> \"/nonexistent/{r}.jpg\" .\n")

    triples = ws.store.replace_graph(iris.source_graph("synthetic"), records())
    return {"load_s": time.perf_counter() - t0, "source_triples": triples, "parent": parent.tolist(),
            "subjects": subj.tolist(), "starts": starts.tolist()}


def categories_and_truth(meta: dict[str, Any], n: int, n_cats: int, rng: np.random.Generator
                         ) -> tuple[list[int], np.ndarray]:
    """40 level-1 concepts as categories, and the curated matrix [records, categories] (subject at or below)."""
    parent = np.asarray(meta["parent"])
    cats = sorted(rng.choice(np.arange(10, 110), n_cats, replace=False).tolist())
    # ancestor at level 1 of every concept
    anc = np.arange(len(parent))
    top1 = np.full(len(parent), -1)
    for _ in range(5):
        is_l1 = (anc >= 10) & (anc < 110)
        top1[is_l1 & (top1 < 0)] = anc[is_l1 & (top1 < 0)]
        anc = np.where(parent[anc] >= 0, parent[anc], anc)
    col = {c: j for j, c in enumerate(cats)}
    subj = np.asarray(meta["subjects"])
    starts = np.asarray(meta["starts"])
    rec_of = np.repeat(np.arange(n), np.diff(starts))
    C = np.zeros((n, n_cats), dtype=bool)
    j = np.array([col.get(int(a), -1) for a in top1[subj]])
    ok = j >= 0
    C[rec_of[ok], j[ok]] = True
    return cats, C


def model_scores(C: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scores for every record and category, with planted noise (curated but absent) and silence (the reverse)."""
    truth = C.copy()
    cur = np.flatnonzero(C.reshape(-1))
    noise = rng.choice(cur, max(1, len(cur) // 100), replace=False)
    truth.reshape(-1)[noise] = False
    uncur = np.flatnonzero(~C.reshape(-1))
    silence = rng.choice(uncur, 3000, replace=False)
    truth.reshape(-1)[silence] = True
    logit = np.where(truth, rng.normal(2.5, 1.5, C.shape), rng.normal(-7.0, 1.5, C.shape))
    return (1 / (1 + np.exp(-logit))).astype(np.float32), noise, silence


def write_oof(ws: Workspace, C: np.ndarray, cat_iris: list[str], rng: np.random.Generator, n_train: int) -> None:
    """Out-of-fold scores for a labelled subset (drawn afresh from the same score model, as CV fold models would)."""
    rows = rng.choice(C.shape[0], min(n_train, C.shape[0]), replace=False)
    S, _, _ = model_scores(C[rows], rng)
    n, k = S.shape
    table = pa.table({"record": np.repeat(rows.astype(str), k), "image": np.repeat(rows.astype(str), k),
                      "concept": pa.array(np.tile(np.asarray(cat_iris, dtype=object), n).tolist(), pa.string()),
                      "score": S.reshape(-1), "label": C[rows].reshape(-1).astype(np.int8),
                      "fold": np.repeat(rows % 5, k).astype(np.int16)})
    pq.write_table(table, ws.model_dir(NAME) / "oof_scores.parquet")


# ---- plain SPARQL --------------------------------------------------------------------------------------------------

def monalia_query(label: str, min_score: float, limit: int) -> str:
    text = (REPO / "queries" / "monalia_ranked.rq").read_text(encoding="utf-8")
    line = f'VALUES (?label ?classifier ?minScore) {{ ("{label}"@fr "{NAME}" "{min_score!r}"^^xsd:float) }}'
    text = re.sub(r"VALUES \(\?label \?classifier \?minScore\) \{[^\n]*\}", line, text)
    return text + f"LIMIT {limit}\n"


def timed(fn: Any, *args: Any, **kw: Any) -> tuple[float, Any]:
    """Wall seconds; ``timed.last_cpu`` holds this process's CPU seconds (on a machine shared with other jobs the
    CPU time is what the work costs; the wall time also counts waiting for a core)."""
    c0, t0 = time.process_time(), time.perf_counter()
    out = fn(*args, **kw)
    wall = time.perf_counter() - t0
    timed.last_cpu = time.process_time() - c0  # type: ignore[attr-defined]
    return wall, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=300_000, help="records (one image each)")
    ap.add_argument("--concepts", type=int, default=20_000)
    ap.add_argument("--categories", type=int, default=40)
    ap.add_argument("--floor", type=float, default=0.05)
    ap.add_argument("--train", type=int, default=50_000, help="records with out-of-fold scores")
    ap.add_argument("--queries", type=int, default=50, help="ranked searches timed")
    ap.add_argument("--plain-queries", type=int, default=3, help="of them, also run as plain SPARQL")
    ap.add_argument("--plain-categories", type=int, default=3, help="categories audited in plain SPARQL too")
    ap.add_argument("--dir", type=Path, default=Path("/tmp/iconoscope-bench-search"))
    ap.add_argument("--fresh", action="store_true", help="rebuild the cached workspace")
    ap.add_argument("--tradeoff", action="store_true", help="measure the floor trade-off instead")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.tradeoff:
        return tradeoff(args)
    os.environ.setdefault("ICONOSCOPE_NO_PROGRESS", "1")
    params = {k: getattr(args, k) for k in ("n", "concepts", "categories", "floor", "train", "seed")}
    root = args.dir / f"n{args.n}"
    stamp = root / "bench-params.json"
    fresh = args.fresh or not stamp.exists() or json.loads(stamp.read_text()) != params
    if fresh and root.exists():
        shutil.rmtree(root)
    if fresh:
        init_workspace(root, name="bench")
    ws = Workspace(root)
    rng = np.random.default_rng(args.seed)
    result: dict[str, Any] = {"params": params, "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                                           "loadavg_start": os.getloadavg()[0]}}
    if fresh:
        print(f"building {args.n} records / {args.concepts} concepts ...", flush=True)
        meta = build(ws, args.n, args.concepts, args.seed)
        (root / "synthetic.json").write_text(json.dumps(meta))
        result["build"] = {"load_s": round(meta["load_s"], 1), "source_triples": meta["source_triples"]}
    meta = json.loads((root / "synthetic.json").read_text())
    cats, C = categories_and_truth(meta, args.n, args.categories, rng)
    cat_iris = [ws.iris.concept("t", str(c)) for c in cats]
    S, noise, silence = model_scores(C, rng)
    if fresh:
        write_oof(ws, C, cat_iris, rng, args.train)
        th = class_thresholds(ws, NAME)
        floors = {c: float(th.t_pos[j]) for j, c in enumerate(th.concepts)}
        disk0 = disk_bytes(root / "graph")
        print(f"writing the run: {args.n} x {args.categories} = {S.size} predictions, floor {args.floor} ...",
              flush=True)
        rep = write_run_report(ws, NAME, [str(i) for i in range(args.n)], cat_iris, S, 1, {"bench": True},
                               records=[str(i) for i in range(args.n)], floor=args.floor, floors=floors,
                               show_progress=True)
        ws.store.flush()
        result["write"] = {"predictions": int(S.size), "annotations": rep.annotations,
                           "curated_kept": rep.curated_kept, "triples": rep.triples, "seconds": round(rep.seconds, 1),
                           "triples_per_s": round(rep.triples / rep.seconds), "graph_disk_mb_added":
                           round((disk_bytes(root / "graph") - disk0) / 1e6), "index_disk_mb":
                           round(disk_bytes(root / "runs") / 1e6, 1)}
        stamp.write_text(json.dumps(params))
        (root / "write.json").write_text(json.dumps(result["write"]))
    else:
        result["write"] = json.loads((root / "write.json").read_text())
    print(json.dumps(result["write"]), flush=True)
    run = latest_run(ws, NAME)
    assert run is not None

    # ---- ranked search
    labels = [f"concept {c}" for c in cats] + [f"concept {c}" for c in range(10)]
    qrng = np.random.default_rng(1)
    qs = [labels[i] for i in qrng.permutation(len(labels))[: args.queries]]
    cold, _ = timed(search, ws, qs[0], lang="fr", min_score=0.5, limit=50)
    times, cpu = [], []
    for q in qs:
        dt, _ = timed(search, ws, q, lang="fr", min_score=0.5, limit=50)
        times.append(dt)
        cpu.append(timed.last_cpu)  # type: ignore[attr-defined]
    plain_t, plain_cpu, same = [], [], []
    for q in qs[: args.plain_queries]:
        dt, res = timed(ws.store.select, monalia_query(q, 0.5, 50))
        plain_t.append(dt)
        plain_cpu.append(timed.last_cpu)  # type: ignore[attr-defined]
        mine = [(h.record, np.float32(h.score)) for h in search(ws, q, lang="fr", min_score=0.5, limit=50)]
        theirs = [(ws.iris.id_of(r["record"], "record"), np.float32(r["best"])) for r in res.dicts()]
        same.append(mine == theirs)
    p50 = statistics.median(times)
    result["search"] = {"queries": len(times), "cold_s": round(cold, 4), "p50_ms": round(p50 * 1000, 1),
                        "p95_ms": round(float(np.percentile(times, 95)) * 1000, 1),
                        "p50_cpu_ms": round(statistics.median(cpu) * 1000, 1),
                        "plain_sparql_s": [round(t, 2) for t in plain_t],
                        "plain_sparql_cpu_s": [round(t, 2) for t in plain_cpu],
                        "ratio_plain_over_index": round(statistics.median(plain_t) / p50) if plain_t else None,
                        "same_ranking": all(same) if same else None}
    print(json.dumps(result["search"]), flush=True)

    # ---- audit
    cold_a, both = timed(audit_all, ws, NAME)
    cold_cpu = timed.last_cpu  # type: ignore[attr-defined]
    warm_a, both2 = timed(audit_all, ws, NAME)
    warm_cpu = timed.last_cpu  # type: ignore[attr-defined]
    assert both == both2
    noise_found = {(int(i.record), i.concept) for i in both["noise"]}
    planted_noise = {(int(x // args.categories), cat_iris[x % args.categories]) for x in noise.tolist()}
    planted_sil = {(int(x // args.categories), cat_iris[x % args.categories]) for x in silence.tolist()}
    sil_found = {(int(i.record), i.concept) for i in both["silence"]}
    plain: dict[str, list[float]] = {"noise": [], "silence": []}
    plain_c: dict[str, list[float]] = {"noise": [], "silence": []}
    agree = []
    for c in cat_iris[: args.plain_categories]:
        for kind in ("noise", "silence"):
            dt, ref = timed(plain_sparql_audit, ws, NAME, kind, category=c)
            plain[kind].append(dt)
            plain_c[kind].append(timed.last_cpu)  # type: ignore[attr-defined]
            mine = [(ws.iris.record(i.record), i.concept, i.score or 0.0) for i in both[kind] if i.concept == c]
            agree.append(mine == ref)
    per_cat_plain = (statistics.mean(plain["noise"]) + statistics.mean(plain["silence"])) if plain["noise"] else None
    result["audit"] = {"categories": len(cat_iris), "noise_items": len(both["noise"]),
                       "silence_items": len(both["silence"]), "cold_s": round(cold_a, 2), "warm_s": round(warm_a, 2),
                       "cold_cpu_s": round(cold_cpu, 2), "warm_cpu_s": round(warm_cpu, 2),
                       "plain_noise_cpu_s_per_category": [round(t, 1) for t in plain_c["noise"]],
                       "plain_silence_cpu_s_per_category": [round(t, 1) for t in plain_c["silence"]],
                       "planted_noise_found": round(len(noise_found & planted_noise) / len(planted_noise), 3),
                       "planted_silence_found": round(len(sil_found & planted_sil) / len(planted_sil), 3),
                       "plain_noise_s_per_category": [round(t, 1) for t in plain["noise"]],
                       "plain_silence_s_per_category": [round(t, 1) for t in plain["silence"]],
                       "plain_full_audit_s_estimate": round(per_cat_plain * len(cat_iris), 1) if per_cat_plain
                       else None,
                       "ratio_plain_over_index": round(per_cat_plain * len(cat_iris) / warm_a) if per_cat_plain
                       else None,
                       "same_answers": all(agree) if agree else None}
    result["machine"]["loadavg_end"] = os.getloadavg()[0]
    result["machine"]["max_rss_mb"] = round(rss_mb())
    print(json.dumps(result["audit"]), flush=True)
    table(result)
    out = REPO / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"search-n{args.n}.json").write_text(json.dumps(result, indent=1))
    ws.close()


def table(r: dict[str, Any]) -> None:
    s, a, w = r["search"], r["audit"], r["write"]
    rows = [
        ("write run", f"{w['predictions']:,} predictions -> {w['annotations']:,} annotations, {w['triples']:,} "
                      f"triples in {w['seconds']} s ({w['triples_per_s']:,}/s), +{w['graph_disk_mb_added']} MB"),
        ("ranked search p50 / p95", f"{s['p50_ms']} ms / {s['p95_ms']} ms wall, p50 {s['p50_cpu_ms']} ms CPU (index)"),
        ("ranked search, plain SPARQL", f"{s['plain_sparql_s']} s ({s['plain_sparql_cpu_s']} s CPU), ratio "
                                        f"x{s['ratio_plain_over_index']}, "
                                        f"same ranking: {s['same_ranking']}"),
        ("full audit, 40 categories", f"{a['warm_s']} s warm ({a['warm_cpu_s']} s CPU), {a['cold_s']} s cold "
                                      f"({a['cold_cpu_s']} s CPU) (index)"),
        ("audit, plain SPARQL", f"noise {a['plain_noise_s_per_category']} s, silence "
                                f"{a['plain_silence_s_per_category']} s per category; all 40 ~"
                                f"{a['plain_full_audit_s_estimate']} s; ratio x{a['ratio_plain_over_index']}, "
                                f"same answers: {a['same_answers']}"),
        ("planted errors found", f"noise {a['planted_noise_found']}, silence {a['planted_silence_found']}"),
        ("machine", f"load avg {r['machine']['loadavg_start']:.1f} -> {r['machine']['loadavg_end']:.1f}, "
                    f"max RSS {r['machine']['max_rss_mb']} MB"),
    ]
    width = max(len(k) for k, _ in rows)
    for k, v in rows:
        print(f"{k.ljust(width)}  {v}")


def tradeoff(args: argparse.Namespace) -> None:
    """Triples, load time and disk of one run of 1M predictions (25,000 images x 40) at several floors."""
    n = 25_000 if args.n == 300_000 else args.n
    rng = np.random.default_rng(args.seed)
    out_rows = []
    for floor in (0.0, 0.01, 0.05, 0.1):
        root = args.dir / f"tradeoff-{floor}"
        shutil.rmtree(root, ignore_errors=True)
        init_workspace(root, name="bench")
        with Workspace(root) as ws:
            meta = build(ws, n, 2000, args.seed)
            cats, C = categories_and_truth(meta, n, args.categories, np.random.default_rng(args.seed))
            S, _, _ = model_scores(C, rng)
            cat_iris = [ws.iris.concept("t", str(c)) for c in cats]
            ws.store.flush()
            d0 = disk_bytes(root / "graph")
            rep = write_run_report(ws, NAME, [str(i) for i in range(n)], cat_iris, S, 1, records=[str(i) for i in
                                   range(n)], floor=floor, show_progress=False)
            ws.store.flush()
            out_rows.append({"floor": floor, "predictions": int(S.size), "annotations": rep.annotations,
                             "share_stored": round(rep.annotations / S.size, 4), "triples": rep.triples,
                             "write_s": round(rep.seconds, 1), "disk_mb": round((disk_bytes(root / "graph") - d0) / 1e6,
                                                                                1)})
            print(json.dumps(out_rows[-1]), flush=True)
        shutil.rmtree(root, ignore_errors=True)
    res = REPO / "bench" / "results"
    res.mkdir(parents=True, exist_ok=True)
    (res / "search-tradeoff.json").write_text(json.dumps(out_rows, indent=1))
    print(f"{'floor':>6} {'stored':>8} {'triples':>10} {'write s':>8} {'disk MB':>8}   (x300k/25k for Joconde scale)")
    for r in out_rows:
        print(f"{r['floor']:>6} {r['share_stored']:>8.2%} {r['triples']:>10,} {r['write_s']:>8} {r['disk_mb']:>8}")


if __name__ == "__main__":
    main()
