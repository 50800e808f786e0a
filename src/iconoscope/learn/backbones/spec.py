"""Backbone spec strings: ``KIND:TARGET[?key=value&key=value]``.

One string names a backbone completely (which weights, which layer, which preprocessing and views), so it can sit in
``iconoscope.toml``, name the folder its vectors live in, and be recorded in a model card. Examples::

    builtin:smallcnn
    torchscript:${data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt?layer=pool&views=full,top
    onnx:${data}/weights/squeezenet1.1_fp16_onnx/SqueezeNet_fp16.onnx?preset=caffe
    hf:/models/dinov2-small?layer=cls

``${name}`` in a target is replaced from ``ICONOSCOPE_{NAME}`` or the workspace's ``[paths]`` table; relative paths
are resolved against the workspace folder. The spec as written (not the resolved path) names the vectors folder, so a
workspace stays portable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import PRESETS, Preprocess, check_views

_PLACEHOLDER = re.compile(r"\$\{(\w+)\}")

#: options every backbone understands (preprocessing and views); each kind adds its own (layer, pool, ...)
COMMON_OPTIONS = {"views", "size", "resize", "crop_pct", "preset", "channels", "mean", "std", "scale", "resample",
                  "batch", "threads"}


@dataclass(frozen=True)
class Spec:
    """A parsed spec: ``kind``, ``target`` (as written) and ``options``."""

    text: str
    kind: str
    target: str
    options: dict[str, str] = field(default_factory=dict)

    def get(self, key: str, default: str | None = None) -> str | None:
        return self.options.get(key, default)

    def int(self, key: str, default: int) -> int:
        v = self.options.get(key)
        if v is None:
            return default
        try:
            return int(v)
        except ValueError:
            raise ConfigError(f"backbone {self.text!r}: option {key}={v!r}: expected an integer") from None

    def float(self, key: str, default: float) -> float:
        v = self.options.get(key)
        if v is None:
            return default
        try:
            return float(eval_number(v))
        except ValueError:
            raise ConfigError(f"backbone {self.text!r}: option {key}={v!r}: expected a number") from None

    def floats(self, key: str, n: int) -> tuple[float, ...] | None:
        v = self.options.get(key)
        if v is None:
            return None
        try:
            out = tuple(float(x) for x in v.split(","))
        except ValueError:
            out = ()
        if len(out) != n:
            raise ConfigError(f"backbone {self.text!r}: option {key}={v!r}: expected {n} comma-separated numbers")
        return out

    def check_options(self, extra: set[str]) -> None:
        allowed = COMMON_OPTIONS | extra
        unknown = sorted(set(self.options) - allowed)
        if unknown:
            raise ConfigError(f"backbone {self.text!r}: unknown option(s) {', '.join(unknown)}; "
                              f"allowed for {self.kind}: {', '.join(sorted(allowed))}")

    def views(self, default: tuple[str, ...] = ("full",)) -> tuple[str, ...]:
        v = self.options.get("views")
        return check_views(v.split(",") if v else default, f"backbone {self.text!r}")

    def preprocess(self, base: Preprocess) -> Preprocess:
        """The model's own preprocessing, overridden by a preset and by explicit options in the spec."""
        opts: dict[str, Any] = {}
        preset = self.options.get("preset")
        if preset is not None:
            if preset not in PRESETS:
                raise ConfigError(f"backbone {self.text!r}: preset={preset!r}: expected one of {', '.join(PRESETS)}")
            opts.update(PRESETS[preset])
        if "size" in self.options:
            s = self.options["size"].lower().split("x")
            try:
                hw = (int(s[0]), int(s[-1]))
            except ValueError:
                raise ConfigError(f"backbone {self.text!r}: size={self.options['size']!r}: expected N or HxW") from None
            opts["size"] = hw
        for key in ("resize", "channels", "resample"):
            if key in self.options:
                opts[key] = self.options[key]
        for key in ("crop_pct", "scale"):
            if key in self.options:
                opts[key] = self.float(key, 0.0)
        for key in ("mean", "std"):
            val = self.floats(key, 3)
            if val is not None:
                opts[key] = val
        return replace(base, **opts) if opts else base


def eval_number(text: str) -> float:
    """``"255"``, ``"0.5"`` or a fraction like ``"1/255"``."""
    if "/" in text:
        a, b = text.split("/", 1)
        return float(a) / float(b)
    return float(text)


def parse_spec(text: str) -> Spec:
    """Split ``KIND:TARGET?opts``; the kind must be a registered prefix (checked by the registry)."""
    if not isinstance(text, str) or ":" not in text:
        raise ConfigError(f"backbone {text!r}: expected KIND:TARGET (e.g. builtin:smallcnn, onnx:PATH, hf:ID)")
    kind, rest = text.split(":", 1)
    target, _, query = rest.partition("?")
    options: dict[str, str] = {}
    if query:
        for part in query.split("&"):
            if not part:
                continue
            key, eq, value = part.partition("=")
            if not eq or not key:
                raise ConfigError(f"backbone {text!r}: option {part!r}: expected key=value")
            options[key.strip()] = value.strip()
    return Spec(text=text, kind=kind.strip(), target=target.strip(), options=options)


def format_spec(kind: str, target: str, options: dict[str, str]) -> str:
    """The spec text of ``kind``, ``target`` and ``options`` (the inverse of :func:`parse_spec`)."""
    query = "&".join(f"{k}={v}" for k, v in options.items())
    return f"{kind}:{target}" + (f"?{query}" if query else "")


def resolve_target(target: str, root: Path | None = None, paths: dict[str, str] | None = None,
                   spec: str | None = None) -> str:
    """Fill ``${name}`` placeholders and make a relative path absolute (against ``root``)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        env = os.environ.get(f"ICONOSCOPE_{name.upper()}")
        if env:
            return env
        if paths and name in paths:
            return str(paths[name])
        raise ConfigError(f"backbone {spec or target!r}: unknown placeholder ${{{name}}} "
                          f"(define it in [paths] or set ICONOSCOPE_{name.upper()})")

    text = _PLACEHOLDER.sub(sub, target)
    p = Path(os.path.expanduser(text))
    if p.is_absolute():
        return str(p)
    if root is not None and (root / p).exists():
        return str((root / p).resolve())
    if p.exists():
        return str(p.resolve())
    return text  # not a local path: a hub id for hf:, or a missing file the backbone will report
