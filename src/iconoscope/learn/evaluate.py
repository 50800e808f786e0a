"""``eval NAME``: metrics of a trained classifier from its out-of-fold scores only, and an HTML report.

Evaluation never re-scores training rows: it reads ``oof_scores.parquet`` (each image scored by the fold model that
did not see it) and applies each fold's own thresholds (calibrated on that fold's inner validation scores), so
precision, recall and F1 are as honest as the AP figures.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from iconoscope.errors import ConfigError
from iconoscope.learn.metrics import confusion, evaluate_scores, is_single_label


def read_oof(model_dir: Path, categories: list[str]) -> tuple[list[str], list[str], np.ndarray, np.ndarray,
                                                               np.ndarray]:
    """(images, records, Y [N, C] bool, S [N, C], fold [N]) from the long out-of-fold table."""
    path = model_dir / "oof_scores.parquet"
    if not path.exists():
        raise ConfigError(f"{path}: no out-of-fold scores; run 'iconoscope train' first")
    t = pq.read_table(path).to_pandas()
    col = {c: j for j, c in enumerate(categories)}
    images = list(dict.fromkeys(t["image"].tolist()))
    row = {i: k for k, i in enumerate(images)}
    r = t["image"].map(row).to_numpy()
    c = t["concept"].map(col).to_numpy()
    S = np.zeros((len(images), len(categories)), np.float32)
    Y = np.zeros((len(images), len(categories)), bool)
    S[r, c] = t["score"].to_numpy()
    Y[r, c] = t["label"].to_numpy().astype(bool)
    folds = np.zeros(len(images), np.int64)
    folds[r] = t["fold"].to_numpy()
    records = [""] * len(images)
    for img, rec in zip(t["image"].tolist(), t["record"].tolist(), strict=True):
        records[row[img]] = rec
    return images, records, Y, S, folds


def evaluate(ws: Any, name: str, report_dir: Path | str | None = None,
             compare_single_input: bool = False) -> dict[str, Any]:
    """Metrics of classifier ``name`` (cross-validated); writes an HTML report when ``report_dir`` is given."""
    cfg = ws.config.classifier(name)
    if cfg.head == "multimodal":
        from iconoscope.learn.multimodal import eval_multimodal

        return eval_multimodal(ws, name, report_dir, compare_single_input)  # type: ignore[no-any-return]
    from iconoscope.learn.classifier import load_classifier

    clf = load_classifier(ws, name)
    _images, _records, Y, S, folds = read_oof(clf.model_dir, clf.categories)  # type: ignore[arg-type]
    th_file = json.loads((clf.model_dir / "thresholds.json").read_text(encoding="utf-8"))  # type: ignore[operator]
    fold_th = np.asarray(th_file.get("fold_thresholds") or [th_file["thresholds"]] * (folds.max() + 1))
    row_th = fold_th[folds]  # each row judged by the thresholds of the fold that scored it
    metrics = evaluate_scores(Y, S, None)
    from iconoscope.learn.metrics import prf

    metrics.update(prf(Y, row_th <= S))
    ev = clf.card.get("evaluation", {})
    out: dict[str, Any] = {
        "name": name, "version": clf.version, "backbone": clf.backbone, "head": clf.kind,
        "protocol": ev.get("protocol", "out-of-fold scores"), "n": metrics["n"],
        "cv_mean": ev.get("mean", {}), "cv_std": ev.get("std", {}),
        "pooled": {k: metrics[k] for k in ("mAP", "top1", "top5", "micro_precision", "micro_recall", "micro_f1",
                                           "macro_precision", "macro_recall", "macro_f1")},
        "per_class": [{"concept": c, "label": clf.label(c), "support": int(Y[:, j].sum()),
                       "ap": metrics["per_class_ap"][j], "precision": metrics["per_class_precision"][j],
                       "recall": metrics["per_class_recall"][j], "f1": metrics["per_class_f1"][j],
                       "threshold": float(clf.thresholds[j]) if clf.thresholds is not None else 0.5}
                      for j, c in enumerate(clf.categories)],
    }
    if is_single_label(Y):
        m, used = confusion(Y, S)
        out["confusion"] = {"labels": [clf.label(c) for c in clf.categories], "matrix": m.tolist(),
                            "rows": int(used.sum())}
    if report_dir is not None:
        from iconoscope.learn.report import write_report

        out["report"] = str(write_report(Path(report_dir), out, Y, S, [clf.label(c) for c in clf.categories]))
    return out
