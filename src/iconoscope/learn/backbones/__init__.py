"""Backbones behind one registry: a spec string -> a :class:`Backbone` (image -> float32 vector).

Built-in kinds (each module is imported only when its kind is used, so ``iconoscope sparql`` never imports torch):

===============  ===========================================================================================
``builtin:``     ``smallcnn``: a compact CNN (random init or ``weights=`` a checkpoint trained by ``train``);
                 ``colorhist``: HSV colour histograms (whole image + spatial grid)
``torchscript:`` a TorchScript archive; ``layer=pool`` cuts the graph at its last global pooling (pre-logits)
``onnx:``        an ONNX file run by ONNX Runtime; ``layer=pool`` adds a graph output before the classifier
``hf:``          a transformers model (id or folder) with its own image processor; CLIP/SigLIP image towers
``concat:``      ``SPEC_A|SPEC_B``: several backbones side by side (vectors concatenated)
===============  ===========================================================================================

Other stages add kinds with :func:`register_backbone` (the multimodal stage registers ``text:`` encoders).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import PRESETS, VIEWS, Backbone, Preparer, Preprocess, global_pool
from iconoscope.learn.backbones.spec import Spec, parse_spec, resolve_target

#: factory(spec, resolved_target) -> backbone
Factory = Callable[[Spec, str], Any]

_FACTORIES: dict[str, Factory | str] = {
    "builtin": "iconoscope.learn.backbones.builtin:from_spec",
    "torchscript": "iconoscope.learn.backbones.torchscript:from_spec",
    "onnx": "iconoscope.learn.backbones.onnx:from_spec",
    "hf": "iconoscope.learn.backbones.hf:from_spec",
}
_CACHE: dict[tuple[str, str], Any] = {}
_LOCK = threading.Lock()


def register_backbone(prefix: str, factory: Factory | str) -> None:
    """Add (or replace) a spec kind. ``factory`` is a callable or a lazy ``"module:function"`` string."""
    if not prefix or ":" in prefix:
        raise ValueError(f"backbone prefix {prefix!r}: expected a non-empty name without ':'")
    _FACTORIES[prefix] = factory
    for key in [k for k in _CACHE if k[0].startswith(prefix + ":")]:
        del _CACHE[key]


def backbone_kinds() -> list[str]:
    return sorted([*_FACTORIES, "concat"])


def _factory(kind: str, spec: str) -> Factory:
    f = _FACTORIES.get(kind)
    if f is None:
        raise ConfigError(f"backbone {spec!r}: unknown kind {kind!r}; known: {', '.join(backbone_kinds())}")
    if isinstance(f, str):
        module, attr = f.split(":")
        f = getattr(importlib.import_module(module), attr)
        _FACTORIES[kind] = f
    return f


def workspace_paths(ws: Any) -> tuple[Path, dict[str, str]]:
    """(root, [paths]) of a workspace: what ``${name}`` placeholders and relative targets resolve against."""
    return ws.root, {k: str(v) for k, v in (ws.config.raw.get("paths") or {}).items()}


def absolute_paths(root: Path | None, paths: dict[str, str] | None) -> dict[str, str] | None:
    """[paths] values are relative to the workspace folder, as in iconoscope.toml."""
    if not paths:
        return paths
    return {k: str((root / v).resolve()) if root and not Path(v).is_absolute() else v for k, v in paths.items()}


def workspace_target(spec: Spec, ws: Any = None) -> str:
    """``spec``'s target with ``${name}`` placeholders and relative paths resolved against ``ws`` (when given), as
    :func:`get_backbone` resolves it: for code that needs the file itself (``layers``, fine-tuning, zero-shot)."""
    root, paths = workspace_paths(ws) if ws is not None else (None, None)
    return resolve_target(spec.target, root, absolute_paths(root, paths), spec.text)


def get_backbone(spec: str, *, root: Path | str | None = None, paths: dict[str, str] | None = None,
                 ws: Any = None, cache: bool = True) -> Any:
    """The backbone for ``spec`` (cached per process: loading a model costs far more than using it).

    ``ws`` (a Workspace) or ``root``/``paths`` resolve relative paths and ``${name}`` placeholders in the target.
    """
    if ws is not None:
        root, paths = workspace_paths(ws)
    if spec.startswith("concat:"):
        from iconoscope.learn.backbones.concat import ConcatBackbone, split_concat

        return ConcatBackbone(spec, [get_backbone(p, root=root, paths=paths, cache=cache)
                                     for p in split_concat(spec)])
    parsed = parse_spec(spec)
    root_path = Path(root) if root is not None else None
    paths = absolute_paths(root_path, paths)
    target = resolve_target(parsed.target, root_path, paths, spec)
    if "weights" in parsed.options:  # a checkpoint path option resolves like the target
        parsed = replace(parsed, options={**parsed.options,
                                          "weights": resolve_target(parsed.options["weights"], root_path, paths, spec)})
    key = (spec, target)
    with _LOCK:
        if cache and key in _CACHE:
            return _CACHE[key]
    bb = _factory(parsed.kind, spec)(parsed, target)
    if cache:
        with _LOCK:
            if len(_CACHE) >= 6:
                _CACHE.pop(next(iter(_CACHE)))
            _CACHE[key] = bb
    return bb


__all__ = ["PRESETS", "VIEWS", "Backbone", "Preparer", "Preprocess", "Spec", "backbone_kinds", "get_backbone",
           "global_pool", "parse_spec", "register_backbone", "resolve_target"]
