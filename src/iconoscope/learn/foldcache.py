"""Finished outer folds of a ``train`` run, kept until the run ends, so that an interrupted run resumes.

Cross-validating a fine-tuned network of the pomological genera takes 43 minutes on two cores; a crash, a reboot or
Ctrl-C in fold 4 should not cost the first four. Each finished fold is written (atomically) under
``models/NAME/.cv-partial/KEY/``; ``KEY`` is a hash of everything that decides the fold's result (head, parameters,
backbone, folds, seed, the label table's digest, the Iconoscope version), so a changed configuration or label table
never reuses stale folds. A finished run deletes the folder: re-running ``train`` then trains again (a new version),
as before.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

PARTIAL = ".cv-partial"


class FoldCache:
    def __init__(self, model_dir: Path, key: dict[str, Any]):
        from iconoscope import __version__

        text = json.dumps({**key, "iconoscope": __version__}, sort_keys=True, default=str)
        self.root = Path(model_dir) / PARTIAL
        self.dir = self.root / hashlib.sha256(text.encode()).hexdigest()[:16]
        self.resumed: list[int] = []

    def _path(self, fold: int) -> Path:
        return self.dir / f"fold-{fold}.joblib"

    def load(self, fold: int) -> dict[str, Any] | None:
        """The fold's saved results, or None when it has to be run (never saved, or unreadable)."""
        import joblib

        path = self._path(fold)
        if not path.exists():
            return None
        try:
            payload: dict[str, Any] = joblib.load(path)
        except Exception:  # a half-written or foreign file: run the fold again
            return None
        self.resumed.append(fold)
        return payload

    def save(self, fold: int, payload: dict[str, Any]) -> None:
        import joblib

        self.dir.mkdir(parents=True, exist_ok=True)
        tmp = self._path(fold).with_suffix(".tmp")
        joblib.dump(payload, tmp)
        os.replace(tmp, self._path(fold))

    def clear(self) -> None:
        """Forget every partial run of this classifier (called once the run's model is saved)."""
        shutil.rmtree(self.root, ignore_errors=True)
