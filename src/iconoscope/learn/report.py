"""The evaluation report: one self-contained folder with index.html, PR curves and a confusion matrix (PNG).

Plots are drawn with matplotlib's Agg backend (no display needed) and saved next to the page, so the folder can be
zipped, served by the web app or opened from disk.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.learn.metrics import pr_curve


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_pr_curves(path: Path, Y: np.ndarray, S: np.ndarray, names: list[str], aps: list[float | None]) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    cmap = plt.get_cmap("tab20")
    for j, name in enumerate(names):
        if not Y[:, j].any():
            continue
        p, r, _ = pr_curve(Y[:, j], S[:, j])
        ap = aps[j]
        ax.plot(np.r_[0.0, r], np.r_[1.0, p], lw=1.4, color=cmap(j % 20),
                label=f"{name} (AP {ap:.3f})" if ap is not None else name)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.set_title("Precision-recall (out-of-fold scores)")
    ax.legend(fontsize=7, loc="lower left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_confusion(path: Path, matrix: np.ndarray, names: list[str]) -> None:
    plt = _plt()
    m = np.asarray(matrix, dtype=np.float64)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    n = len(names)
    fig, ax = plt.subplots(figsize=(1.2 + 0.55 * n, 1.0 + 0.5 * n), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), names, fontsize=8)
    ax.set_xlabel("predicted (highest score)")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if m[i, j]:
                ax.text(j, i, str(int(m[i, j])), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    ax.set_title("Confusion (single-label rows, out-of-fold)")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def _f(v: Any) -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.3f}"


def write_report(folder: Path, result: dict[str, Any], Y: np.ndarray, S: np.ndarray, names: list[str]) -> Path:
    """Write index.html, pr_curves.png, confusion.png (single-label sets) and metrics.json; returns index.html."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    aps = [pc["ap"] for pc in result["per_class"]]
    plot_pr_curves(folder / "pr_curves.png", Y, S, names, aps)
    if "confusion" in result:
        plot_confusion(folder / "confusion.png", np.asarray(result["confusion"]["matrix"]), names)
    (folder / "metrics.json").write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(pc['label'])}</td><td><code>{e(pc['concept'])}</code></td><td>{pc['support']}</td>"
        f"<td>{_f(pc['ap'])}</td><td>{_f(pc['precision'])}</td><td>{_f(pc['recall'])}</td><td>{_f(pc['f1'])}</td>"
        f"<td>{_f(pc['threshold'])}</td></tr>" for pc in result["per_class"])
    cv = "".join(f"<tr><td>{e(k)}</td><td>{_f(v)}</td><td>{_f(result['cv_std'].get(k))}</td></tr>"
                 for k, v in result["cv_mean"].items())
    pooled = "".join(f"<tr><td>{e(k)}</td><td>{_f(v)}</td></tr>" for k, v in result["pooled"].items())
    conf = ('<h2>Confusion matrix</h2><img src="confusion.png" alt="confusion matrix">'
            f"<p>{result['confusion']['rows']} single-label images; predicted = highest score.</p>"
            if "confusion" in result else "")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Evaluation: {e(result['name'])}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}}
table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}
td:first-child,th:first-child{{text-align:left}}img{{max-width:100%}}code{{font-size:85%}}</style></head><body>
<h1>Evaluation: {e(result['name'])} (version {result['version']})</h1>
<p>Head <b>{e(str(result['head']))}</b> on backbone <code>{e(str(result['backbone']))}</code>; {result['n']} images.</p>
<p><i>{e(str(result['protocol']))}.</i> Every figure below comes from out-of-fold scores: no image is scored by a
model that trained on it.</p>
<h2>Cross-validation (mean and standard deviation over folds)</h2>
<table><tr><th>metric</th><th>mean</th><th>std</th></tr>{cv}</table>
<h2>Pooled out-of-fold (each fold's own thresholds)</h2>
<table><tr><th>metric</th><th>value</th></tr>{pooled}</table>
<h2>Per class</h2>
<table><tr><th>label</th><th>concept</th><th>support</th><th>AP</th><th>precision</th><th>recall</th><th>F1</th>
<th>threshold</th></tr>{rows}</table>
<h2>Precision-recall curves</h2><img src="pr_curves.png" alt="precision-recall curves">
{conf}
</body></html>
"""
    out = folder / "index.html"
    out.write_text(page, encoding="utf-8")
    return out
