"""Model cards (JSON for programs, Markdown for people): what a classifier learned from and how well it does.

A card names the label query and hashes of the graph and of the dataset, so a figure can always be traced to the
exact data behind it; it records the parameters, every fold's metrics and their mean and standard deviation, and
which images were left out and why.
"""

from __future__ import annotations

import contextlib
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.learn.datasets import LabelSet


def _versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in ("iconoscope", "torch", "onnxruntime", "transformers", "numpy", "scikit-learn"):
        with contextlib.suppress(md.PackageNotFoundError):
            out[pkg] = md.version(pkg)
    return out


def _fmt(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def write_card(ws: Any, model_dir: Path, report: Any, labels: LabelSet, *, backbone: dict[str, Any],
               grid: list[dict[str, Any]], inner_folds: int, seed: int, left_out: list[tuple[str, str]],
               pooled: dict[str, Any], thresholds: np.ndarray, created: str, protocol: str | None = None,
               extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write model_card.json and model_card.md; returns the card."""
    cfg = ws.config.classifier(report.name)
    support = labels.Y.sum(axis=0).astype(int).tolist()
    card: dict[str, Any] = {
        "name": report.name, "version": report.version, "created": created,
        "head": report.head, "params": report.params, "grid": grid,
        "backbone": backbone,
        "categories": [{"iri": c, "label": labels.label(c), "support": s, "threshold": float(t)}
                       for c, s, t in zip(labels.categories, support, thresholds, strict=True)],
        "data": {
            "vocabulary": cfg.vocabulary, "expand": cfg.expand, "sources": list(cfg.sources),
            "label_query": labels.meta.get("query"), "label_query_sha256": labels.meta.get("query_sha256"),
            "graph_sha256": labels.meta.get("graph_sha256"), "dataset_sha256": labels.sha256(),
            "images": report.n_images, "records": report.n_records,
            "negatives": int((~labels.Y.any(axis=1)).sum()),
            "left_out": len(left_out), "left_out_examples": [list(x) for x in left_out[:20]],
        },
        "evaluation": {
            "protocol": protocol or (
                f"{report.folds}-fold cross-validation, folds grouped by record and iteratively stratified (seed "
                f"{seed}); hyper-parameters and thresholds chosen by {inner_folds}-fold inner cross-validation on "
                "each outer training part; metrics on the outer test folds only"),
            "folds": report.folds, "inner_folds": inner_folds, "seed": seed,
            "mean": report.mean, "std": report.std,
            "per_fold": [{k: v for k, v in f.items() if k != "inner"} for f in report.per_fold],
            "pooled_out_of_fold": {k: pooled[k] for k in ("mAP", "top1", "top5", "per_class_ap")},
        },
        "thresholds": "per class, best F1 on the pooled out-of-fold scores",
        "software": _versions(),
        "seconds": round(report.seconds, 1),
        **(extra or {}),
    }
    tmp = model_dir / "model_card.json.tmp"
    tmp.write_text(json.dumps(card, indent=1, default=str), encoding="utf-8")
    tmp.replace(model_dir / "model_card.json")
    (model_dir / "model_card.md").write_text(card_markdown(card), encoding="utf-8")
    return card


def card_markdown(card: dict[str, Any]) -> str:
    ev = card["evaluation"]
    lines = [f"# Model card: {card['name']} (version {card['version']})", "",
             f"Created {card['created']}. Head: **{card['head']}** with parameters `{json.dumps(card['params'])}`.",
             f"Backbone: `{card['backbone'].get('spec')}` - {card['backbone'].get('layer')} "
             f"({card['backbone'].get('dim')}-d, views {', '.join(card['backbone'].get('views', []))}).", "",
             "## Data", ""]
    if card.get("members"):  # an ensemble: which trained models it averages, exactly
        lines[-2:-2] = ["Members (the mean of their probabilities, weighted):", "",
                        "| member | version | head | weight | model sha256 |", "|---|---|---|---|---|",
                        *(f"| {m['name']} | {m['version']} | {m['head']} | {m['weight']:g} | "
                          f"`{m['model_sha256'][:16]}` |" for m in card["members"]), ""]
    d = card["data"]
    lines += [f"- {d['images']} images of {d['records']} records ({d['negatives']} negative for every category); "
              f"{d['left_out']} left out (no vector)",
              f"- vocabulary `{d['vocabulary']}`, expansion `{d['expand']}`",
              f"- label query sha256 `{d['label_query_sha256']}`, graph sha256 `{d['graph_sha256']}`",
              f"- dataset sha256 `{d['dataset_sha256']}`", "", "## Evaluation", "", ev["protocol"] + ".", "",
              "| metric | mean | std |", "|---|---|---|"]
    for k, v in ev["mean"].items():
        lines.append(f"| {k} | {_fmt(v)} | {_fmt(ev['std'].get(k))} |")
    lines += ["", "Per fold:", "", "| fold | n test | mAP | top-1 | macro-F1 | params |", "|---|---|---|---|---|---|"]
    for f in ev["per_fold"]:
        lines.append(f"| {f['fold']} | {f['n_test']} | {_fmt(f.get('mAP'))} | {_fmt(f.get('top1'))} | "
                     f"{_fmt(f.get('macro_f1'))} | `{json.dumps(f.get('params', {}))}` |")
    lines += ["", "## Categories", "", "| concept | label | support | out-of-fold AP | threshold |",
              "|---|---|---|---|---|"]
    aps = ev["pooled_out_of_fold"]["per_class_ap"]
    for c, ap in zip(card["categories"], aps, strict=True):
        lines.append(f"| {c['iri']} | {c['label']} | {c['support']} | {_fmt(ap)} | {c['threshold']:.3f} |")
    sw = ", ".join(f"{k} {v}" for k, v in card["software"].items())
    lines += ["", f"Software: {sw}.", ""]
    return "\n".join(lines)
