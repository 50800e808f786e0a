"""``builtin:smallcnn``: a compact CNN that needs no downloaded weights.

It is the weight-free path. With no ``weights=`` option it embeds with a fixed, seeded random initialisation (random
convolutional features with a linear probe are a usable baseline on simple imagery, and cost nothing); the
``finetune`` head trains it from scratch end to end, and ``builtin:smallcnn?weights=models/NAME/model.pt`` then
embeds with the trained network. Features are the global-average-pooled output of the last block (penultimate
layer, 256-d by default), at 128 px: about 0.15 GFLOP per image, so it runs at hundreds of images/s on 2 cores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocess, global_pool
from iconoscope.learn.backbones.spec import Spec

DEFAULT_WIDTHS = (32, 64, 128, 256)


class SmallCNN(nn.Module):
    """Per stage conv3x3(stride 2)-BN-ReLU + conv3x3-BN-ReLU, then global average pooling.

    ``num_classes > 0`` adds a dropout + linear classifier (the fine-tune head); :meth:`features` always gives the
    pooled penultimate vector.
    """

    def __init__(self, widths: tuple[int, ...] = DEFAULT_WIDTHS, num_classes: int = 0, dropout: float = 0.5):
        super().__init__()
        layers: list[nn.Module] = []
        cin = 3
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True),
                       nn.Conv2d(w, w, 3, padding=1, bias=False), nn.BatchNorm2d(w), nn.ReLU(True)]
            cin = w
        self.widths = tuple(widths)
        self.body = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.dim = cin
        self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(cin, num_classes)) if num_classes else nn.Identity()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.body(x)), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class FeatureOutput(nn.Module):
    """Calling it gives a model's ``features(x)``: the module exported to ONNX Runtime for embedding."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def build_smallcnn(widths: tuple[int, ...] = DEFAULT_WIDTHS, num_classes: int = 0, dropout: float = 0.5,
                   seed: int = 0) -> SmallCNN:
    """A SmallCNN with a seeded He initialisation (reproducible random features when untrained)."""
    g = torch.Generator().manual_seed(seed)
    model = SmallCNN(widths, num_classes, dropout)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (2.0 / fan_in) ** 0.5)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(torch.randn(m.weight.shape, generator=g) * (1.0 / m.in_features) ** 0.5)
                m.bias.zero_()
    return model


class SmallCNNBackbone(Backbone):
    def __init__(self, spec: Spec, weights: str | None):
        from iconoscope.learn.backbones.runtime import TorchRunner

        spec.check_options({"weights", "widths", "engine", "seed"})
        widths = DEFAULT_WIDTHS
        meta: dict[str, Any] = {}
        state = None
        if weights:
            p = Path(weights)
            if not p.is_file():
                raise ConfigError(f"backbone {spec.text!r}: weights file {weights} not found")
            ckpt = torch.load(p, map_location="cpu", weights_only=False)
            state = ckpt.get("state_dict", ckpt)
            meta = ckpt.get("meta", {})
            widths = tuple(meta.get("widths", widths))
        if "widths" in spec.options:
            try:
                widths = tuple(int(w) for w in spec.options["widths"].split(","))
            except ValueError:
                raise ConfigError(f"backbone {spec.text!r}: widths: expected comma-separated integers") from None
        model = build_smallcnn(widths, seed=spec.int("seed", 0))
        if state is not None:
            body = {k[len("body."):]: v for k, v in state.items() if k.startswith("body.")}
            model.body.load_state_dict(body)
        base = Preprocess.from_dict(meta["preprocess"]) if "preprocess" in meta else Preprocess(
            size=(128, 128), resize="squash", mean=IMAGENET_MEAN, std=IMAGENET_STD)
        pre = spec.preprocess(base)
        views = spec.views()
        runner = TorchRunner(FeatureOutput(model), (3, *pre.size), engine=spec.get("engine", "auto") or "auto",
                             threads=spec.int("threads", 0) or None)
        super().__init__(spec=spec.text, preprocess=pre, views=views, kind="builtin",
                         layer="global average pool of the last block (penultimate)", feature_dim=model.dim,
                         notes=(f"trained weights {weights}" if weights else "random weights (seed "
                                f"{spec.int('seed', 0)}): a weight-free baseline; train with head=finetune")
                         + f"; engine {runner.engine}" + (f" ({runner.note})" if runner.note else ""))
        self.model = model
        self.runner = runner

    def forward(self, batch: Any) -> Any:
        return global_pool(self.runner(batch))
