"""A trained classifier project on disk (``models/{name}/``) and the object other stages use to score vectors.

``load_classifier(ws, name)`` gives ``.categories`` (concept IRIs, ordered), ``.labels``, ``.backbone`` (the spec
whose vectors it reads), ``.version``, ``.card`` (the model card dict), ``.thresholds`` (per class, calibrated on
validation folds) and ``.predict_proba(X) -> [N, C]``. The head is stored with joblib; nothing in it depends on the
code path that trained it, so the enrichment and the web app can load it without importing training code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError

MODEL_FILE = "model.joblib"


def save_model(model_dir: Path, head: Any, *, kind: str, categories: list[str], labels: dict[str, str],
               backbone: str, version: int, extra: dict[str, Any] | None = None) -> Path:
    """Write the fitted head with what is needed to use it (atomic: a crash leaves the previous model)."""
    import joblib

    path = model_dir / MODEL_FILE
    tmp = path.with_suffix(".joblib.tmp")
    joblib.dump({"head": head, "kind": kind, "categories": list(categories), "labels": dict(labels),
                 "backbone": backbone, "version": version, **(extra or {})}, tmp)
    tmp.replace(path)
    return path


@dataclass
class Classifier:
    name: str
    head: Any
    kind: str
    categories: list[str]
    labels: dict[str, str]
    backbone: str
    version: int
    card: dict[str, Any] = field(default_factory=dict)
    thresholds: np.ndarray | None = None
    model_dir: Path | None = None

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Scores in [0, 1], ``[N, C]`` in the order of ``categories``."""
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2:
            raise IconoscopeError(f"classifier {self.name}: expected vectors [N, D], got shape {X.shape}")
        dim = self.card.get("backbone", {}).get("dim")
        if dim and X.shape[1] != dim:
            raise IconoscopeError(f"classifier {self.name}: vectors have {X.shape[1]} dimensions but the model "
                                  f"expects {dim} ({self.backbone})")
        if len(X) == 0:
            return np.zeros((0, len(self.categories)), np.float32)
        return np.asarray(self.head.predict_proba(X), dtype=np.float32)

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Binary decisions at the calibrated per-class thresholds."""
        th = self.thresholds if self.thresholds is not None else np.full(len(self.categories), 0.5)
        return self.predict_proba(X) >= th[None, :]

    def label(self, iri: str) -> str:
        return self.labels.get(iri) or iri.rstrip("/").rsplit("/", 1)[-1]


def load_classifier(ws: Any, name: str) -> Classifier:
    """The trained classifier ``name``; a clear error when it has not been trained."""
    import joblib

    model_dir = ws.model_dir(name)
    path = model_dir / MODEL_FILE
    if not path.exists():
        raise ConfigError(f"{path}: classifier '{name}' is not trained; run 'iconoscope train {name}'")
    try:
        blob = joblib.load(path)
    except Exception as e:
        raise IconoscopeError(f"{path}: cannot load the model: {e}") from None
    card_path = model_dir / "model_card.json"
    card = json.loads(card_path.read_text(encoding="utf-8")) if card_path.exists() else {}
    th_path = model_dir / "thresholds.json"
    thresholds = None
    if th_path.exists():
        thresholds = np.asarray(json.loads(th_path.read_text(encoding="utf-8"))["thresholds"], dtype=np.float64)
    return Classifier(name=name, head=blob["head"], kind=blob["kind"], categories=list(blob["categories"]),
                      labels=dict(blob["labels"]), backbone=blob["backbone"], version=int(blob["version"]),
                      card=card, thresholds=thresholds, model_dir=model_dir)
