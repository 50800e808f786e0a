"""The multimodal multitask model: image features + record metadata -> the record's missing fields.

Entry points for the learning verbs (``train``/``eval``/``predict`` dispatch here when a classifier's
``head = "multimodal"``): :func:`train_multimodal`, :func:`eval_multimodal`, :func:`predict_multimodal`.
They are imported lazily so that importing this package does not import torch.

Modules: ``specs`` (the inputs/targets syntax), ``dates`` (catalogue dates -> year bins), ``records`` (fields from
the graph), ``features`` (encoders), ``data`` (project config, raw inputs, feature pipeline), ``model`` (the network),
``train`` / ``evaluate`` / ``predict`` (the verbs), ``annotate`` (run graphs), ``fill`` (ranked suggestions for
records missing a field), ``concepts`` (text -> concept retrieval).
"""

from __future__ import annotations

from typing import Any


def train_multimodal(ws: Any, name: str, folds: int | None = None, **kw: Any) -> dict[str, Any]:
    from iconoscope.learn.multimodal.train import train_multimodal as f

    return f(ws, name, folds, **kw)


def eval_multimodal(ws: Any, name: str, report_dir: Any = None, compare_single_input: bool = False,
                    **kw: Any) -> Any:
    from iconoscope.learn.multimodal.evaluate import eval_multimodal as f

    return f(ws, name, report_dir, compare_single_input, **kw)


def predict_multimodal(ws: Any, name: str, *args: Any, **kw: Any) -> Any:
    from iconoscope.learn.multimodal.predict import predict_multimodal as f

    return f(ws, name, *args, **kw)


__all__ = ["eval_multimodal", "predict_multimodal", "train_multimodal"]
