"""``hf:ID_OR_PATH``: a transformers vision model (CLIP/SigLIP image towers, DINOv2, ViT, ConvNeXt, ResNet, ...).

Preprocessing is read from the model's own ``preprocessor_config.json`` (size, crop, mean/std, resampling), then
applied by our numpy pipeline so that it runs in decoding workers. Layers (``layer=``):

* ``embeds`` - CLIP/SigLIP: the image embedding in the joint image-text space (default for those; what zero-shot
  search needs);
* ``pooler`` - the model's pooled output (ResNet/ConvNeXt: global-pooled last stage; default for convnets);
* ``cls`` - the class token of the last hidden state (default for ViT/DINOv2: the pooler of a ViT is an untrained
  tanh layer in many checkpoints);
* ``mean`` - the mean of the last hidden state's tokens (or spatial positions);
* ``clsmean`` - both concatenated (the DINOv2 linear-probe recipe).

Weights are never downloaded here (``HF_HUB_OFFLINE=1``); a hub id must already be in the local cache.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import nn

from iconoscope.errors import ConfigError
from iconoscope.learn.backbones.base import IMAGENET_MEAN, IMAGENET_STD, Backbone, Preprocess
from iconoscope.learn.backbones.spec import Spec

LAYERS = ("embeds", "pooler", "cls", "mean", "clsmean")
_RESAMPLE_CODES = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic"}


def processor_config(target: str) -> dict[str, Any]:
    """The model's image processor config (``preprocessor_config.json``), or {} when it has none."""
    try:
        from transformers.image_processing_utils import ImageProcessingMixin

        d, _ = ImageProcessingMixin.get_image_processor_dict(target)
    except Exception:
        d = {}
    return dict(d)


def processor_preprocess(target: str, d: dict[str, Any] | None = None) -> Preprocess:
    """Our Preprocess from a transformers image processor config (ImageNet defaults when there is none)."""
    d = processor_config(target) if d is None else d
    size = d.get("size") or {}
    crop = d.get("crop_size") or {}
    if isinstance(size, int):
        size = {"shortest_edge": size}
    if isinstance(crop, int):
        crop = {"height": crop, "width": crop}
    if d.get("do_center_crop") and crop:
        hw = (int(crop["height"]), int(crop["width"]))
        edge = size.get("shortest_edge", hw[0])
        resize, crop_pct = "crop", min(1.0, hw[0] / float(edge))
    elif "height" in size:
        hw, resize, crop_pct = (int(size["height"]), int(size["width"])), "squash", 1.0
    elif "shortest_edge" in size:
        e = int(size["shortest_edge"])
        hw, resize, crop_pct = (e, e), "crop", 1.0
    else:
        hw, resize, crop_pct = (224, 224), "squash", 1.0
    mean = tuple(d.get("image_mean") or IMAGENET_MEAN) if d.get("do_normalize", True) else (0.0, 0.0, 0.0)
    std = tuple(d.get("image_std") or IMAGENET_STD) if d.get("do_normalize", True) else (1.0, 1.0, 1.0)
    resample = d.get("resample", 2)
    return Preprocess(size=hw, resize=resize, crop_pct=crop_pct, mean=mean, std=std,  # type: ignore[arg-type]
                      scale=float(d.get("rescale_factor", 1 / 255)) if d.get("do_rescale", True) else 1.0,
                      resample=_RESAMPLE_CODES.get(int(resample), "bilinear") if not isinstance(resample, str)
                      else resample)


def _load_model(target: str, model_type: str) -> tuple[Any, str]:
    import transformers as T

    T.logging.set_verbosity_error()  # loading one tower of a two-tower checkpoint lists every unused weight
    T.logging.disable_progress_bar()
    if model_type == "clip":
        # the image tower of a full CLIP checkpoint: its vision config plus the joint space's projection size
        full = T.CLIPConfig.from_pretrained(target)
        vision = full.vision_config
        vision.projection_dim = full.projection_dim
        return T.CLIPVisionModelWithProjection.from_pretrained(target, config=vision), "embeds"
    if model_type == "clip_vision_model":
        config = T.CLIPVisionConfig.from_pretrained(target)
        if "CLIPVisionModelWithProjection" in (config.architectures or []):  # e.g. a fine-tuned image tower
            return T.CLIPVisionModelWithProjection.from_pretrained(target), "embeds"
        return T.CLIPVisionModel.from_pretrained(target), "pooler"
    if model_type in ("siglip", "siglip2"):
        cls = T.SiglipVisionModel if model_type == "siglip" else T.Siglip2VisionModel
        return cls.from_pretrained(target), "embeds"
    model = T.AutoModel.from_pretrained(target)
    if model_type in ("vit", "dinov2", "dinov2_with_registers", "deit", "beit", "dinov3_vit"):
        return model, "cls"
    return model, "pooler"


class LayerOutput(nn.Module):
    """A transformers model giving the chosen layer as ``[B, D]`` (the module exported to ONNX Runtime)."""

    def __init__(self, model: nn.Module, layer: str):
        super().__init__()
        self.model = model
        self.layer = layer

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        out = self.model(pixel_values=pixel_values)
        if self.layer == "embeds":
            emb = getattr(out, "image_embeds", None)
            return emb if emb is not None else out.pooler_output
        if self.layer == "pooler":
            return torch.flatten(out.pooler_output, 1)
        h = out.last_hidden_state
        if h.dim() == 4:  # convnets: [B, C, H, W]
            return h.mean(dim=(2, 3))
        if self.layer == "cls":
            return h[:, 0]
        if self.layer == "mean":
            return h[:, 1:].mean(dim=1) if h.shape[1] > 1 else h[:, 0]
        return torch.cat([h[:, 0], h[:, 1:].mean(dim=1)], dim=1)


class HFBackbone(Backbone):
    def __init__(self, spec: Spec, target: str):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import transformers as T

        from iconoscope.learn.backbones.runtime import TorchRunner

        spec.check_options({"layer", "engine"})
        try:
            config = T.AutoConfig.from_pretrained(target)
        except Exception as e:
            raise ConfigError(f"backbone {spec.text!r}: cannot load a transformers config from {target!r} "
                              f"(a local folder, or a model id already in the cache; nothing is downloaded): "
                              f"{str(e).splitlines()[0]}") from None
        model_type = getattr(config, "model_type", "")
        model, default_layer = _load_model(target, model_type)
        model.eval()
        layer = spec.get("layer", default_layer) or default_layer
        if layer not in LAYERS:
            raise ConfigError(f"backbone {spec.text!r}: layer={layer!r}: expected one of {', '.join(LAYERS)}")
        if layer == "embeds" and model_type not in ("clip", "siglip", "siglip2") and not hasattr(model,
                                                                                          "visual_projection"):
            raise ConfigError(f"backbone {spec.text!r}: layer=embeds needs a CLIP/SigLIP model (this is "
                              f"{model_type!r})")
        self.processor_config = processor_config(target)
        pre = spec.preprocess(processor_preprocess(target, self.processor_config))
        runner = TorchRunner(LayerOutput(model, layer), (3, *pre.size), engine=spec.get("engine", "auto") or "auto")
        super().__init__(spec=spec.text, preprocess=pre, views=spec.views(), kind="hf",
                         layer=f"{model_type} {layer}", notes=f"engine {runner.engine}"
                         + (f" ({runner.note})" if runner.note else ""))
        self.model = model
        self.model_type = model_type
        self.layer_name = layer
        self.runner = runner
        self.feature_dim = int(self.forward(np.zeros((1, 3, *pre.size), np.float32)).shape[1])

    def forward(self, batch: np.ndarray) -> np.ndarray:
        return np.asarray(self.runner(batch), dtype=np.float32)


def from_spec(spec: Spec, target: str) -> HFBackbone:
    return HFBackbone(spec, target)
