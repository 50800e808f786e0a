"""``builtin:NAME``: backbones that need no downloaded weights.

* ``smallcnn`` - a compact CNN (:mod:`iconoscope.learn.backbones.smallcnn`);
* ``colorhist`` - joint HSV colour histograms over the whole image and a spatial grid (``bins=H,S,V``,
  ``grid=N``), square-rooted (Hellinger) so that a large uniform ground does not drown the subject's colours.
  Colour is what an ImageNet network trained for object shape keeps least of, and in still-life and botanical
  imagery it is often the subject's most telling trait; as a ``concat:`` part it is nearly free (pure numpy).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import PRESETS, Backbone, Preprocess
from iconoscope.learn.backbones.spec import Spec

BUILTINS = ("smallcnn", "colorhist")


def rgb_to_hsv(x: np.ndarray) -> np.ndarray:
    """``[B, 3, H, W]`` RGB in [0, 1] -> HSV in [0, 1] (vectorised)."""
    r, g, b = x[:, 0], x[:, 1], x[:, 2]
    mx = np.maximum(np.maximum(r, g), b)
    mn = np.minimum(np.minimum(r, g), b)
    d = mx - mn
    s = np.where(mx > 0, d / np.maximum(mx, 1e-12), 0.0)
    safe = np.maximum(d, 1e-12)
    h = np.where(mx == r, ((g - b) / safe) % 6, np.where(mx == g, (b - r) / safe + 2, (r - g) / safe + 4)) / 6.0
    h = np.where(d > 0, h, 0.0)
    return np.stack([h, s, mx], axis=1)


class ColorHistBackbone(Backbone):
    def __init__(self, spec: Spec):
        spec.check_options({"bins", "grid"})
        try:
            bins = tuple(int(b) for b in (spec.get("bins") or "8,4,4").split(","))
        except ValueError:
            bins = ()
        if len(bins) != 3 or min(bins) < 1:
            raise ConfigError(f"backbone {spec.text!r}: bins: expected three positive integers H,S,V")
        self.bins = bins
        self.grid = spec.int("grid", 2)
        pre = spec.preprocess(Preprocess(size=(96, 96), resize="squash", **PRESETS["unit"]))
        if pre.channels != "RGB" or pre.mean != (0.0, 0.0, 0.0) or pre.std != (1.0, 1.0, 1.0):
            raise ConfigError(f"backbone {spec.text!r}: colour histograms need unnormalised RGB (preset=unit)")
        cells = 1 + (self.grid * self.grid if self.grid > 1 else 0)
        super().__init__(spec=spec.text, preprocess=pre, views=spec.views(), kind="builtin",
                         layer=f"HSV histogram {bins[0]}x{bins[1]}x{bins[2]} over the image"
                         + (f" and a {self.grid}x{self.grid} grid" if self.grid > 1 else "") + ", square-rooted",
                         feature_dim=int(np.prod(bins)) * cells, notes="hand-crafted, weight-free")

    def _hist(self, idx: np.ndarray) -> np.ndarray:
        n = int(np.prod(self.bins))
        out = np.zeros((idx.shape[0], n), np.float32)
        for i in range(idx.shape[0]):
            out[i] = np.bincount(idx[i].ravel(), minlength=n)
        return np.sqrt(out / np.maximum(out.sum(axis=1, keepdims=True), 1))

    def forward(self, batch: np.ndarray) -> np.ndarray:
        hsv = rgb_to_hsv(np.clip(batch, 0.0, 1.0))  # preset=unit: RGB in [0, 1]
        hb, sb, vb = self.bins
        q = [np.minimum((hsv[:, c] * nb).astype(np.int64), nb - 1) for c, nb in enumerate((hb, sb, vb))]
        idx = (q[0] * sb + q[1]) * vb + q[2]  # [B, H, W]
        parts = [self._hist(idx)]
        if self.grid > 1:
            h, w = idx.shape[1:]
            for gy in range(self.grid):
                for gx in range(self.grid):
                    cell = idx[:, gy * h // self.grid:(gy + 1) * h // self.grid,
                               gx * w // self.grid:(gx + 1) * w // self.grid]
                    parts.append(self._hist(cell))
        return np.concatenate(parts, axis=1)


def from_spec(spec: Spec, target: str) -> Any:
    name = spec.target.strip()
    if name == "smallcnn":
        from iconoscope.learn.backbones.smallcnn import SmallCNNBackbone

        return SmallCNNBackbone(spec, spec.get("weights"))
    if name == "colorhist":
        return ColorHistBackbone(spec)
    raise ConfigError(f"backbone {spec.text!r}: unknown builtin {name!r}; known: {', '.join(BUILTINS)}")
