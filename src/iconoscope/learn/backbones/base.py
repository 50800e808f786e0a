"""The ``Backbone`` base class, its preprocessing and the image *views* (crops) it embeds.

A backbone turns PIL images into float32 vectors. The work is split in two so that decoding and resizing can run
in worker processes while the network runs in the main one:

* :meth:`Backbone.prepare` (pure numpy/Pillow, picklable state only): image -> ``[V, C, H, W]`` arrays, one per view;
* :meth:`Backbone.forward`: a batch of prepared arrays -> ``[B, d]`` features.

:meth:`Backbone.embed` chains both and concatenates the views of one image into one vector (``D = V * d``).

Views exist because collection images are rarely framed like ImageNet photos: a pomological sheet shows the fruit in
its upper part and a handwritten caption below on a large paper margin, so a square crop of the upper part tells a
network far more than the whole sheet squashed to 224 px. Views are named so the choice is recorded with the vectors.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
from PIL import Image

from iconoscope.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

#: Named preprocessing conventions (what a model was trained with); ``preset=NAME`` in a spec selects one.
PRESETS: dict[str, dict[str, Any]] = {
    "imagenet": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD, "scale": 1 / 255, "channels": "RGB"},
    # Caffe-era models (the ONNX-zoo SqueezeNet): BGR pixels in 0..255, no normalisation.
    "caffe": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "scale": 1.0, "channels": "BGR"},
    "clip": {"mean": CLIP_MEAN, "std": CLIP_STD, "scale": 1 / 255, "channels": "RGB"},
    "unit": {"mean": (0.0, 0.0, 0.0), "std": (1.0, 1.0, 1.0), "scale": 1 / 255, "channels": "RGB"},
    "half": {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "scale": 1 / 255, "channels": "RGB"},
}

_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
             "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


@dataclass(frozen=True)
class Preprocess:
    """How an image becomes a network input: resize, crop, channel order and normalisation.

    ``resize``: ``"squash"`` resizes to exactly ``size`` (keeps all content, distorts the aspect), ``"crop"`` resizes
    the shorter side to ``size / crop_pct`` then centre-crops (the usual ImageNet evaluation transform), ``"pad"``
    letterboxes on a ``fill`` ground. Pixels are multiplied by ``scale`` then normalised by ``mean``/``std``.
    """

    size: tuple[int, int] = (224, 224)  # (height, width)
    resize: str = "squash"
    crop_pct: float = 0.875
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    scale: float = 1 / 255
    channels: str = "RGB"
    resample: str = "bilinear"
    fill: tuple[int, int, int] = (255, 255, 255)

    def __post_init__(self) -> None:
        if self.resize not in ("squash", "crop", "pad"):
            raise ConfigError(f"preprocess: resize = {self.resize!r}: expected squash, crop or pad")
        if self.channels not in ("RGB", "BGR"):
            raise ConfigError(f"preprocess: channels = {self.channels!r}: expected RGB or BGR")
        if self.resample not in _RESAMPLE:
            raise ConfigError(f"preprocess: resample = {self.resample!r}: expected one of {', '.join(_RESAMPLE)}")

    def with_options(self, **opts: Any) -> Preprocess:
        return replace(self, **opts)

    def resized(self, img: Image.Image) -> Image.Image:
        h, w = self.size
        rs = _RESAMPLE[self.resample]
        if self.resize == "squash":
            return img.resize((w, h), rs)
        iw, ih = img.size
        if self.resize == "pad":
            s = min(w / iw, h / ih)
            nw, nh = max(1, round(iw * s)), max(1, round(ih * s))
            canvas = Image.new("RGB", (w, h), self.fill)
            canvas.paste(img.resize((nw, nh), rs), ((w - nw) // 2, (h - nh) // 2))
            return canvas
        s = max(w, h) / self.crop_pct / min(iw, ih)
        nw, nh = max(w, round(iw * s)), max(h, round(ih * s))
        img = img.resize((nw, nh), rs)
        left, top = (nw - w) // 2, (nh - h) // 2
        return img.crop((left, top, left + w, top + h))

    def to_array(self, img: Image.Image, out: np.ndarray | None = None) -> np.ndarray:
        """One RGB image -> float32 ``[3, H, W]``, normalised (into ``out`` when given).

        ``(pixel * scale - mean) / std`` is one multiply-add per channel, ``pixel * (scale / std) - mean / std``.
        Pillow splits the resized image into three contiguous uint8 planes, so each channel is written into its
        contiguous plane of the channel-first array: no float copy, no transpose, no strided writes. This runs in the
        decoding worker once per view, and on two cores every millisecond it spends is taken from the network
        (``bench/embed.py``): 0.11 ms per 224-px view against 0.39 ms for the same arithmetic written through a
        transposed view of the array (session 5's version), with the same values to the bit."""
        im = self.resized(img.convert("RGB") if img.mode != "RGB" else img)
        planes = im.split()
        if self.channels == "BGR":
            planes = planes[::-1]
        if out is None:
            out = np.empty((3, im.size[1], im.size[0]), np.float32)
        for c, plane in enumerate(planes):
            k = np.float32(self.scale) / np.float32(self.std[c])
            np.multiply(np.asarray(plane), k, out=out[c], casting="unsafe")
            out[c] -= np.float32(self.mean[c]) / np.float32(self.std[c])
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Preprocess:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items() if k in known})


# ---- views: named crops of the original image (before resizing) ----------------------------------------------

def _square(img: Image.Image, where: str) -> Image.Image:
    w, h = img.size
    s = min(w, h)
    if where == "top":
        left, top = (w - s) // 2, 0
    elif where == "bottom":
        left, top = (w - s) // 2, h - s
    else:
        left, top = (w - s) // 2, (h - s) // 2
    return img.crop((left, top, left + s, top + s))


def _inner(img: Image.Image, frac: float) -> Image.Image:
    w, h = img.size
    dx, dy = round(w * (1 - frac) / 2), round(h * (1 - frac) / 2)
    return img.crop((dx, dy, w - dx, h - dy))


def _upper(img: Image.Image, frac: float) -> Image.Image:
    """The upper ``frac`` of the image, margins trimmed: where a sheet's subject usually sits above its caption."""
    w, h = img.size
    dx = round(w * 0.06)
    return img.crop((dx, round(h * 0.04), w - dx, round(h * frac)))


VIEWS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "full": lambda im: im,
    "center": lambda im: _square(im, "center"),
    "top": lambda im: _square(im, "top"),
    "bottom": lambda im: _square(im, "bottom"),
    "inner": lambda im: _inner(im, 0.8),
    "upper": lambda im: _upper(im, 0.7),
    "flip": lambda im: im.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
}


def check_views(views: Sequence[str], where: str) -> tuple[str, ...]:
    views = tuple(views)
    if not views:
        raise ConfigError(f"{where}: views: expected at least one of {', '.join(VIEWS)}")
    for v in views:
        if v not in VIEWS:
            raise ConfigError(f"{where}: unknown view {v!r}; known: {', '.join(VIEWS)}")
    return views


@dataclass(frozen=True)
class Preparer:
    """The picklable half of a backbone: image -> ``[V, C, H, W]`` (runs in decoding worker processes).

    ``layout`` tells the embedding pipeline the shape and dtype of that array before any image is decoded, so
    workers can write it straight into shared memory (:func:`iconoscope.learn.embed.prepared_stream`) instead of
    pickling 0.6 MB per 224-px view through a pipe."""

    preprocess: Preprocess
    views: tuple[str, ...] = ("full",)
    dtype: str = "float32"

    def __call__(self, img: Image.Image) -> np.ndarray:
        (shape, dtype), = self.layout
        out = np.empty(shape, dtype)
        self.into(img, (out,))
        return out

    @property
    def layout(self) -> tuple[tuple[tuple[int, ...], str], ...]:
        """``((shape, dtype),)``: the one array :meth:`into` fills."""
        h, w = self.preprocess.size
        return (((len(self.views), 3, h, w), self.dtype),)

    def into(self, img: Image.Image, outs: Sequence[np.ndarray]) -> None:
        """Prepare ``img`` into ``outs[0]`` (shape and dtype of :attr:`layout`), each view in place."""
        out, = outs
        direct = out.dtype == np.float32
        for i, v in enumerate(self.views):
            a = self.preprocess.to_array(VIEWS[v](img), out=out[i] if direct else None)
            if not direct:
                out[i] = a

    def wrap(self, arrays: Sequence[np.ndarray]) -> np.ndarray:
        """The layout's arrays -> what :meth:`__call__` returns (one array)."""
        return arrays[0]

    def unwrap(self, prepared: np.ndarray) -> tuple[np.ndarray, ...]:
        return (prepared,)

    @property
    def min_side(self) -> int:
        """The smallest source side worth decoding (lets Pillow decode JPEGs at reduced size)."""
        return max(self.preprocess.size)


@dataclass
class Backbone(ABC):
    """Image -> float32 vector. Subclasses set ``layer``/``dim`` and implement :meth:`forward`.

    ``spec`` is the registry string that recreates this backbone; ``preprocess`` comes from the model's own config
    (the image processor of a transformers model, metadata of an exported ONNX file) or from a preset in the spec.
    """

    spec: str
    preprocess: Preprocess = field(default_factory=Preprocess)
    views: tuple[str, ...] = ("full",)
    layer: str = ""
    feature_dim: int = 0
    max_batch: int | None = None  # models traced at a fixed batch size say so here
    kind: str = ""
    notes: str = ""

    @property
    def dim(self) -> int:
        """Dimension of one embedding (all views concatenated)."""
        return self.feature_dim * len(self.views)

    @property
    def preparer(self) -> Preparer:
        return Preparer(self.preprocess, self.views)

    def prepare(self, img: Image.Image) -> np.ndarray:
        return self.preparer(img)

    def probe_dim(self) -> None:
        """Set ``feature_dim`` by running a zero batch of two; a graph traced at batch size 1 (the quantized
        MobileNetV2, the fp16 SqueezeNet) fails on two, and is then fed one image at a time (``max_batch = 1``)."""
        probe = np.zeros((2, 3, *self.preprocess.size), np.float32)
        try:
            self.feature_dim = self.forward(probe).shape[1]
        except Exception:
            self.max_batch = 1
            self.feature_dim = self.forward(probe[:1]).shape[1]

    @abstractmethod
    def forward(self, batch: np.ndarray) -> np.ndarray:
        """``[B, C, H, W]`` float32 -> ``[B, feature_dim]`` float32 features."""

    def forward_prepared(self, prepared: Sequence[np.ndarray]) -> np.ndarray:
        """Prepared images (each ``[V, C, H, W]``) -> ``[N, dim]``: one forward over all views, then regroup."""
        if not prepared:
            return np.zeros((0, self.dim), np.float32)
        return self.forward_batch(np.stack(prepared))

    def forward_batch(self, batch: np.ndarray) -> np.ndarray:
        """An already stacked batch ``[N, V, C, H, W]`` -> ``[N, dim]`` (the embedding pipeline fills one in place)."""
        n = len(batch)
        if not n:
            return np.zeros((0, self.dim), np.float32)
        out = self._forward_chunked(batch.reshape(n * batch.shape[1], *batch.shape[2:]))
        return np.ascontiguousarray(out.reshape(n, -1), dtype=np.float32)

    def _forward_chunked(self, batch: np.ndarray) -> np.ndarray:
        step = self.max_batch or len(batch)
        outs = [np.asarray(self.forward(batch[i:i + step]), dtype=np.float32) for i in range(0, len(batch), step)]
        out = np.concatenate(outs, axis=0)
        if out.ndim != 2 or out.shape[1] != self.feature_dim:
            raise RuntimeError(f"{self.spec}: forward gave shape {out.shape}, expected [B, {self.feature_dim}]")
        return out

    def embed(self, images: Sequence[Image.Image]) -> np.ndarray:
        """PIL images -> float32 ``[N, dim]``."""
        return self.forward_prepared([self.prepare(im) for im in images])

    def describe(self) -> dict[str, Any]:
        """What this backbone gives: which layer the features come from, their size, the preprocessing and views."""
        return {"spec": self.spec, "kind": self.kind, "layer": self.layer, "dim": self.dim,
                "feature_dim": self.feature_dim, "views": list(self.views), "preprocess": self.preprocess.to_dict(),
                "notes": self.notes}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({json.dumps(self.describe(), default=str)})"


def global_pool(a: np.ndarray, how: str = "avg") -> np.ndarray:
    """``[B, C, H, W]`` (or ``[B, T, C]`` tokens) -> ``[B, C]``; 2-D input passes through. ``none`` keeps the whole
    map, flattened (``[B, C*H*W]``): the input of a fine-tuned top (see :mod:`iconoscope.learn.finetune`)."""
    if a.ndim == 2:
        return a
    if how == "none":
        return a.reshape(a.shape[0], -1)
    if a.ndim == 4:
        flat = a.reshape(a.shape[0], a.shape[1], -1)
        axis = 2
    elif a.ndim == 3:
        flat, axis = a, 1
    else:
        raise ValueError(f"cannot pool an array of shape {a.shape}")
    if how == "avg":
        return flat.mean(axis=axis)
    if how == "max":
        return flat.max(axis=axis)
    if how == "avgmax":
        return np.concatenate([flat.mean(axis=axis), flat.max(axis=axis)], axis=1)
    raise ConfigError(f"pool = {how!r}: expected avg, max, avgmax or none")
