"""``iconoscope demo``: the whole pipeline on a generated collection, step by step, with a summary.

Every step calls the same library function the CLI verb calls, so the demo doubles as an end-to-end check of the
pipeline on a fresh machine. Steps are idempotent: running the demo twice in the same folder reuses what is done
(the data, the vectors) and replaces what is derived (graphs, runs) without duplicates.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from iconoscope.demo.generate import THESAURUS, concept_iri, generate
from iconoscope.demo.workspace import write_config


@dataclass
class DemoResult:
    root: Path
    lines: list[tuple[str, str]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def add(self, step: str, text: str) -> None:
        self.lines.append((step, text))


def _step(title: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        def run(*a: Any, **kw: Any) -> Any:
            click.secho(f"\n== {title}", fg="cyan", bold=True, err=True)
            t0 = time.perf_counter()
            out = fn(*a, **kw)
            click.secho(f"   ({time.perf_counter() - t0:.1f} s)", fg="bright_black", err=True)
            return out
        return run
    return deco


def _label(cid_or_iri: str) -> str:
    cid = cid_or_iri.rsplit("/", 1)[-1]
    return THESAURUS[cid][0] if cid in THESAURUS else cid


@_step("1. Generate a collection (procedural images, SKOS thesaurus, planted errors)")
def step_generate(root: Path, n: int, res: DemoResult, quick: bool = False) -> dict[str, Any]:
    data = root / "data"
    if not (data / "truth.json").exists():
        generate(data, n=n)
    if not (root / "iconoscope.toml").exists():
        write_config(root, epochs=15, folds=3) if quick else write_config(root)
    truth = json.loads((data / "truth.json").read_text(encoding="utf-8"))
    res.add("collection", f"{len(truth['subjects'])} records with images; planted: {len(truth['noise'])} swapped "
                          f"subjects, {len(truth['silence'])} missing subjects, {len(truth['duplicates'])} duplicates")
    return truth


@_step("2. Load the thesaurus and ingest the records")
def step_ingest(ws: Any, res: DemoResult) -> None:
    from iconoscope.ingest import ingest_all
    from iconoscope.thesaurus import load_vocabulary

    vr = load_vocabulary(ws, "demo")
    reports = ingest_all(ws)
    rep = reports[0] if isinstance(reports, list) else reports
    click.echo(f"   vocabulary: {vr}", err=True)
    click.echo(f"   ingest: {rep}", err=True)
    vocab, source = ws.iris.vocab_graph("demo"), ws.iris.source_graph("catalogue")
    res.add("graph", f"{ws.store.count(vocab)} thesaurus triples, {ws.store.count(source)} record triples "
                     f"(named graphs {vocab}, {source})")


@_step("3. Derive training labels along skos:broader* (SPARQL)")
def step_labels(ws: Any, res: DemoResult) -> None:
    from iconoscope.ingest.labels import derive_labels, write_labels

    table = derive_labels(ws, "sujets")
    write_labels(ws, "sujets", table)
    counts: dict[str, int] = {}
    for cats in table.column("categories").to_pylist():
        for c in cats:
            counts[c] = counts.get(c, 0) + 1
    res.add("labels", f"{table.num_rows} labelled images; " + ", ".join(
        f"{_label(c)} {n}" for c, n in sorted(counts.items(), key=lambda kv: -kv[1])))


@_step("4. Train the subject classifier: smallcnn from scratch, k-fold cross-validation")
def step_train(ws: Any, res: DemoResult) -> dict[str, Any]:
    from iconoscope.learn.evaluate import evaluate
    from iconoscope.learn.train import train_classifier

    train_classifier(ws, "sujets", show_progress=True)
    m = evaluate(ws, "sujets", report_dir=ws.reports_dir("sujets"))
    mean, std = m.get("cv_mean", {}), m.get("cv_std", {})

    def fmt(key: str) -> str:
        return f"{mean.get(key, float('nan')):.3f} ± {std.get(key, float('nan')):.3f}"

    k = ws.config.classifier("sujets").folds
    res.add("classifier", f"{k}-fold CV (held-out folds only): mAP {fmt('mAP')}, macro-F1 {fmt('macro_f1')}, "
                          f"micro-F1 {fmt('micro_f1')}; report {m.get('report', '')}")
    res.facts.update(mAP=mean.get("mAP"))
    return m


@_step("5. Write predictions into the graph (Web Annotations with provenance)")
def step_predict(ws: Any, res: DemoResult) -> None:
    from iconoscope.learn.predict import predict_collection

    rep = predict_collection(ws, "sujets", show_progress=True)
    res.add("predict", rep.summary())


@_step("6. Ranked search, noise and silence")
def step_enrich(ws: Any, truth: dict[str, Any], res: DemoResult) -> None:
    from iconoscope.enrich.audit import audit
    from iconoscope.enrich.search import search

    hits = search(ws, "bateau", lang="fr", min_score=0.5, limit=10)
    click.echo("   search 'bateau' (fr), top 10:", err=True)
    for h in hits:
        click.echo(f"     {h.record:8} {h.score:.3f}  {'annotated' if h.annotated else 'NEW FIND'}", err=True)
    new = sum(1 for h in hits if not h.annotated)
    res.add("search", f"'bateau': {len(hits)} hits with score >= 0.5, {new} not yet annotated")

    planted_noise = {(n["record"], concept_iri(n["annotated"])) for n in truth["noise"]}
    planted_silence = {(s["record"], concept_iri(s["missing"])) for s in truth["silence"]}
    noise = audit(ws, "sujets", "noise")
    silence = audit(ws, "sujets", "silence")
    found_noise = {(a.record, a.concept) for a in noise} & planted_noise
    found_silence = {(a.record, a.concept) for a in silence} & planted_silence
    for kind, items in (("noise", noise), ("silence", silence)):
        click.echo(f"   {kind}: {len(items)} flagged; worst first:", err=True)
        planted = planted_noise if kind == "noise" else planted_silence
        for a in items[:8]:
            mark = "PLANTED" if (a.record, a.concept) in planted else ""
            score = "  n/a" if a.score is None else f"{a.score:.3f}"  # None: curated after the run was written
            click.echo(f"     {a.record:8} {_label(a.concept):10} score {score} (threshold "
                       f"{a.threshold:.3f}) {mark}", err=True)
    res.add("noise", f"{len(noise)} flagged, {len(found_noise)}/{len(planted_noise)} planted swaps found")
    res.add("silence", f"{len(silence)} flagged, {len(found_silence)}/{len(planted_silence)} planted omissions found")
    res.facts.update(noise_found=len(found_noise), noise_planted=len(planted_noise),
                     silence_found=len(found_silence), silence_planted=len(planted_silence))


@_step("7. Multimodal model: image + technique + date -> creator")
def step_multimodal(ws: Any, res: DemoResult) -> None:
    from iconoscope.learn.embed import embed_images
    from iconoscope.learn.evaluate import evaluate
    from iconoscope.learn.train import train_classifier

    # a creator is recognisable by palette and stroke: random convolutional features keep that signal
    embed_images(ws, ws.config.classifier("auteur").backbone, show_progress=True)
    train_classifier(ws, "auteur", show_progress=True)
    m = evaluate(ws, "auteur", report_dir=ws.reports_dir("auteur"), compare_single_input=True)
    res.add("multimodal", _multimodal_summary(m))


def _multimodal_summary(m: Any) -> str:
    """One line: per task, top-1 of each model on all records, and the paired gain over folds."""
    models = getattr(m, "models", None)
    if not models:
        return str(m)[:200]
    parts = []
    for task in next(iter(models.values())):
        tops = ", ".join(f"{label} {per[task][0]['top1']:.3f}" for label, per in models.items()
                         if per.get(task) and per[task][0].get("top1") is not None)
        gain = next((g for g in getattr(m, "gains", {}).get(task, []) if not g.get("min_count")), None)
        extra = f" (gain {gain['top1']:+.3f} ± {gain['top1_std']:.3f})" if gain else ""
        parts.append(f"{task} top-1: {tops}{extra}")
    return "; ".join(parts)


@_step("8. Explore: similar items, duplicates, clusters and a map")
def step_explore(ws: Any, truth: dict[str, Any], res: DemoResult) -> None:
    from iconoscope.explore.clusters import cluster_collection
    from iconoscope.explore.duplicates import duplicate_groups
    from iconoscope.explore.map import build_map, render_map_png
    from iconoscope.explore.similar import similar
    from iconoscope.learn.classifier import load_classifier

    # the embeddings of the network trained in step 4: what the collection's subjects look like to it
    spec = load_classifier(ws, "sujets").backbone
    query = sorted(truth["subjects"])[0]
    hits = similar(ws, query, k=5, spec=spec)
    click.echo(f"   similar to {query} ({', '.join(truth['subjects'][query])}):", err=True)
    for h in hits:
        click.echo(f"     {h.record:8} {h.score:.3f}  {', '.join(truth['subjects'].get(h.record, []))}", err=True)
    shared = sum(1 for h in hits if set(truth["subjects"].get(h.record, [])) & set(truth["subjects"][query]))
    res.add("similar", f"{query}: {', '.join(h.record for h in hits)} ({shared}/{len(hits)} share a subject)")

    # Copies by perceptual hash and thumbnail only: the demo's CNN was trained to tell subjects apart, so it puts
    # every moon-over-the-sea drawing close together, and its cosine is no evidence of copying (with it: 110 other
    # records grouped). Crops move every pixel and need an embedding made for it (README "Exploration").
    groups = duplicate_groups(ws, spec=spec, use_embeddings=False)
    planted = {frozenset((d["record"], d["copy_of"])) for d in truth["duplicates"]}
    found: set[frozenset[str]] = set()
    for g in groups:  # a planted copy counts when the pass paired it with its original directly, not via a chain
        rec = dict(zip(g["images"], g["records"], strict=True))
        found |= planted & {frozenset((rec.get(q["a"]), rec.get(q["b"]))) for q in g["pairs"]}
    extra = sum(len(g["records"]) for g in groups) - 2 * len(found)
    missed = sorted(d["transform"] for d in truth["duplicates"]
                    if frozenset((d["record"], d["copy_of"])) not in found)
    res.add("duplicates", f"{len(groups)} groups (hashes); {len(found)}/{len(planted)} planted copies found"
                          + (f" (missed: {', '.join(missed)})" if missed else "")
                          + f", {max(0, extra)} other records grouped")
    res.facts.update(duplicates_found=len(found), duplicates_planted=len(planted), duplicate_groups=len(groups),
                     duplicates_missed=missed)

    rep = cluster_collection(ws, spec=spec)
    build_map(ws, spec=spec)
    png = render_map_png(ws, spec=spec)
    best = rep.chosen
    sil = "n/a" if best.silhouette is None else f"{best.silhouette:.2f}"
    res.add("clusters", f"{len(rep.settings)} settings tried (k-means, HDBSCAN); best {best.name}: "
                        f"{best.n_clusters} clusters, silhouette {sil}")
    res.add("map", str(png))


def run_demo(root: Path, n: int = 300, serve: bool = False, host: str = "127.0.0.1", port: int = 8000,
             quick: bool = False) -> DemoResult:
    """Run every step in ``root``; prints progress to stderr and returns the summary.

    ``quick`` (3 folds, 15 epochs) is the smoke-test setting: every step runs, the figures are not meant to be good.
    """
    from iconoscope.workspace import Workspace

    root = Path(root).resolve()
    root.mkdir(parents=True, exist_ok=True)
    res = DemoResult(root)
    truth = step_generate(root, n, res, quick)
    ws = Workspace(root)
    try:
        step_ingest(ws, res)
        step_labels(ws, res)
        step_train(ws, res)
        step_predict(ws, res)
        step_enrich(ws, truth, res)
        step_multimodal(ws, res)
        step_explore(ws, truth, res)
    finally:
        ws.close()
    print_summary(res)
    if serve:
        from iconoscope.serve.server import run_server

        ws = Workspace(root)
        click.echo(f"\nServing the demo collection at http://{host}:{port}/  (Ctrl-C to stop)", err=True)
        run_server(ws, host=host, port=port)
    return res


def print_summary(res: DemoResult) -> None:
    out = sys.stdout
    out.write(f"\nIconoscope demo: summary ({res.root})\n")
    width = max(len(s) for s, _ in res.lines)
    for step, text in res.lines:
        out.write(f"  {step.ljust(width)}  {text}\n")
    out.write(f"\nNext: iconoscope -w {res.root} serve   # browse, search and review in the web app\n")
