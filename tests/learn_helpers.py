"""Helpers for the learning tests: tiny drawn images with known subjects, tiny models, label tables."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLOURS = {"circle": (200, 40, 40), "square": (40, 60, 200), "triangle": (40, 160, 60)}
CONCEPT = "https://example.org/test/concept/shapes/{}"


def draw(shape: str, size: int = 48, seed: int = 0) -> Image.Image:
    """A shape in its colour, jittered in position/size, on a noisy paper-coloured ground."""
    rng = np.random.default_rng(seed)
    ground = (rng.normal(235, 12, (size, size, 3))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(ground)
    d = ImageDraw.Draw(img)
    r = int(size * rng.uniform(0.2, 0.32))
    cx, cy = (int(size / 2 + rng.integers(-size // 8, size // 8 + 1)) for _ in range(2))
    col = tuple(int(np.clip(c + rng.integers(-30, 31), 0, 255)) for c in COLOURS[shape])
    if shape == "circle":
        d.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
    elif shape == "square":
        d.rectangle((cx - r, cy - r, cx + r, cy + r), fill=col)
    else:
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=col)
    return img


def make_images(folder: Path, per_class: int = 12, size: int = 48, start: int = 0) -> list[tuple[str, str, Path]]:
    """Write JPEGs; returns (image id, shape, path). Ids are unique across calls with different ``start``."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for k, shape in enumerate(SHAPES):
        for i in range(per_class):
            n = start + k * per_class + i
            p = folder / f"{shape}-{n}.jpg"
            draw(shape, size, seed=n).save(p, quality=92)
            out.append((f"img{n}", shape, p))
    return out


def write_labels(path: Path, items: list[tuple[str, str, Path]], records_per_image: int = 1) -> list[str]:
    """A label table in the documented schema; ``records_per_image=2`` groups two images per record."""
    cats = [CONCEPT.format(s) for s in SHAPES]
    rows = {"record": [], "record_iri": [], "image": [], "image_iri": [], "location": [], "categories": []}
    for n, (image, shape, p) in enumerate(items):
        rec = f"rec{n // records_per_image}"
        rows["record"].append(rec)
        rows["record_iri"].append(f"https://example.org/test/record/{rec}")
        rows["image"].append(image)
        rows["image_iri"].append(f"https://example.org/test/image/{image}")
        rows["location"].append(str(p))
        rows["categories"].append([CONCEPT.format(shape)])
    table = pa.table(rows, schema=pa.schema([("record", pa.string()), ("record_iri", pa.string()),
                                              ("image", pa.string()), ("image_iri", pa.string()),
                                              ("location", pa.string()), ("categories", pa.list_(pa.string()))]))
    meta = {"categories": cats, "labels": {c: c.rsplit("/", 1)[-1] for c in cats}, "query_sha256": "q",
            "graph_sha256": "g"}
    table = table.replace_schema_metadata({"iconoscope": json.dumps(meta)})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)
    return cats


def add_classifier(ws_root: Path, name: str, backbone: str, head: str = "linear", extra: str = "") -> None:
    """Append a [classifiers.NAME] table to the workspace config."""
    cats = ", ".join(f'"{CONCEPT.format(s)}"' for s in SHAPES)
    with open(ws_root / "iconoscope.toml", "a", encoding="utf-8") as f:
        f.write(f'\n[classifiers.{name}]\ncategories = [{cats}]\nbackbone = "{backbone}"\nhead = "{head}"\n'
                f"folds = 3\n{extra}\n")


def tiny_convnet(num_classes: int = 5, width: int = 8):
    """A small torch CNN with a global pooling and a linear classifier (what real ImageNet nets look like)."""
    import torch
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(nn.Conv2d(3, width, 3, stride=2, padding=1), nn.ReLU(),
                                          nn.Conv2d(width, 2 * width, 3, stride=2, padding=1), nn.ReLU())
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(2 * width, num_classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(torch.flatten(self.pool(self.features(x)), 1))

    return Net().eval()


def tiny_quantized_net(path: Path, size: int = 32) -> Path:
    """An int8 TorchScript CNN built as torchvision's quantized MobileNetV2 is (eager-mode quantization: fused
    conv+ReLU, an inverted-residual block with a quantized skip add, a 1x1 head conv, global pooling, a quantized
    linear classifier), calibrated on noise and traced; saved at ``path``. Its graph values ``x.1``... are found with
    :func:`quantized_block_output`."""
    import warnings

    import torch
    import torch.ao.quantization as tq
    from torch import nn

    torch.manual_seed(0)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.quant, self.dequant = tq.QuantStub(), tq.DeQuantStub()
            self.stem, self.stem_relu = nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU()
            self.b1, self.b1_relu = nn.Conv2d(8, 16, 1), nn.ReLU()
            self.b2, self.b2_relu = nn.Conv2d(16, 16, 3, 1, 1, groups=16), nn.ReLU()
            self.b3 = nn.Conv2d(16, 8, 1)
            self.skip = nn.quantized.FloatFunctional()
            self.last, self.last_relu = nn.Conv2d(8, 32, 1), nn.ReLU()
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = self.stem_relu(self.stem(self.quant(x)))
            x = self.skip.add(x, self.b3(self.b2_relu(self.b2(self.b1_relu(self.b1(x))))))
            x = self.last_relu(self.last(x))
            return self.dequant(self.fc(torch.flatten(self.pool(x), 1)))

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = tq.fuse_modules(Net().eval(), [["stem", "stem_relu"], ["b1", "b1_relu"], ["b2", "b2_relu"],
                                           ["last", "last_relu"]])
        m.qconfig = tq.get_default_qconfig("x86")
        tq.prepare(m, inplace=True)
        for _ in range(4):
            m(torch.rand(8, 3, size, size))
        tq.convert(m, inplace=True)
        torch.jit.trace(m, torch.rand(2, 3, size, size)).save(str(path))
    return path


def quantized_block_output(path: Path) -> str:
    """The debug name of the skip add's output in a :func:`tiny_quantized_net` graph (the block boundary)."""
    from iconoscope.learn.backbones.torchscript import load_inlined

    graph = load_inlined(str(path), "test").forward.graph
    return next(n.output().debugName() for n in graph.nodes() if n.kind() == "quantized::add")


def save_tiny_hf(tmp_path: Path, kind: str) -> Path:
    """A randomly initialised tiny transformers model (``vit``, ``resnet`` or a two-tower ``clip``) with its image
    processor config, saved in ``tmp_path/kind`` as a hub download would be."""
    import transformers as T

    folder = tmp_path / kind
    if kind == "vit":
        cfg = T.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                          image_size=32, patch_size=8)
        T.ViTModel(cfg).save_pretrained(folder)
        proc = {"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 32, "width": 32},
                "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "do_normalize": True,
                "do_rescale": True, "rescale_factor": 1 / 255, "resample": 2}
    elif kind == "resnet":
        cfg = T.ResNetConfig(embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic")
        T.ResNetModel(cfg).save_pretrained(folder)
        proc = {"image_processor_type": "ConvNextImageProcessor", "size": {"shortest_edge": 40}, "crop_pct": 0.875,
                "do_normalize": True, "do_rescale": True, "rescale_factor": 1 / 255, "resample": 3,
                "image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}
    else:
        vision = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64,
                  "image_size": 32, "patch_size": 8}
        text = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 64,
                "vocab_size": 100, "max_position_embeddings": 16}
        cfg = T.CLIPConfig(vision_config=vision, text_config=text, projection_dim=12)
        T.CLIPModel(cfg).save_pretrained(folder)
        proc = {"image_processor_type": "CLIPImageProcessor", "size": {"shortest_edge": 32},
                "crop_size": {"height": 32, "width": 32}, "do_center_crop": True, "do_normalize": True,
                "do_rescale": True, "rescale_factor": 1 / 255, "resample": 3,
                "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_std": [0.26862954, 0.26130258, 0.27577711]}
    (folder / "preprocessor_config.json").write_text(json.dumps(proc))
    return folder
