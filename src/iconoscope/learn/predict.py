"""``predict``: score loose image files (``--images DIR --out FILE.csv``) or the whole collection (run graph).

Loose files never touch the workspace: they are decoded in worker processes, embedded with the classifier's own
backbone spec and scored in memory; unreadable files are reported and skipped, never fatal.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp", ".gif", ".jp2"}
CSV_COLUMNS = ("image", "concept", "label", "score")


@dataclass
class FilePredictions:
    """Scores of loose files: ``names`` (as written in the CSV), ``scores`` [N, C], and the files that failed."""

    names: list[str]
    scores: np.ndarray
    categories: list[str]
    labels: dict[str, str]
    failures: list[tuple[str, str]] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, str, float]]:
        """One row per image and category: (image, concept, label, score)."""
        return [(n, c, self.labels.get(c, c), float(self.scores[i, j]))
                for i, n in enumerate(self.names) for j, c in enumerate(self.categories)]

    def write_csv(self, out: Path | str) -> Path:
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            for image, concept, label, score in self.rows():
                w.writerow([image, concept, label, f"{score:.6f}"])
        tmp.replace(out)
        return out


def list_images(folder: Path | str) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted, by suffix."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder of images")
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def predict_files(ws: Any, name: str, paths: Sequence[Path | str], *, root: Path | str | None = None,
                  batch_size: int = 64, workers: int | None = None, show_progress: bool = True) -> FilePredictions:
    """Score image files with classifier ``name``. Names in the result are relative to ``root`` (else file names)."""
    from tqdm import tqdm

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.embed import run_backbone

    clf = load_classifier(ws, name)
    backbone = get_backbone(clf.backbone, ws=ws)
    paths = [Path(p) for p in paths]
    names = [p.relative_to(root).as_posix() if root else p.name for p in paths]
    X = np.zeros((len(paths), backbone.dim), np.float32)
    ok = np.zeros(len(paths), bool)
    failures: list[tuple[str, str]] = []

    def on_batch(idx: list[int], vecs: np.ndarray) -> None:
        X[idx] = vecs
        ok[idx] = True

    def on_failure(i: int, reason: str) -> None:
        failures.append((names[i], reason))

    with tqdm(total=len(paths), desc=f"predict {name}", unit="img", disable=not show_progress) as bar:
        run_backbone(backbone, [str(p) for p in paths], batch_size, workers, progress=bar, on_batch=on_batch,
                     on_failure=on_failure)
    scores = clf.predict_proba(X[ok])
    return FilePredictions(names=[n for n, k in zip(names, ok, strict=True) if k], scores=scores,
                           categories=clf.categories, labels={c: clf.label(c) for c in clf.categories},
                           failures=failures)


def predict_folder(ws: Any, name: str, folder: Path | str, out: Path | str, **kw: Any) -> FilePredictions:
    """``predict NAME --images DIR --out FILE.csv``."""
    files = list_images(folder)
    if not files:
        raise ConfigError(f"{folder}: no image files ({', '.join(sorted(IMAGE_SUFFIXES))})")
    res = predict_files(ws, name, files, root=folder, **kw)
    res.write_csv(out)
    return res


def predict_collection(ws: Any, name: str, source: str | None = None, engine: str = "local",
                       show_progress: bool = True, floor: float | None = None) -> Any:
    """``predict NAME [--source S]``: embed what is missing, then write a prediction run into the graph."""
    from iconoscope.learn.classifier import load_classifier
    from iconoscope.learn.embed import embed_images

    if floor is not None and not 0.0 <= floor < 1.0:
        raise ConfigError(f"predict {name}: floor {floor}: expected a score from 0 (keep every score) to below 1")
    clf = load_classifier(ws, name)
    if source is not None:
        ws.config.source(source)  # a clear error for an unknown source
    embed_images(ws, clf.backbone, engine=engine, sources=[source] if source else None, show_progress=show_progress)
    try:
        from iconoscope.enrich.write import DEFAULT_FLOOR, predict_run
    except ImportError as e:
        raise ConfigError(f"writing predictions into the graph needs iconoscope.enrich.write ({e})") from None
    return predict_run(ws, name, source=source, engine=engine, floor=DEFAULT_FLOOR if floor is None else floor)
