"""Why fine-tuning starts at a stored map: training rates of the shipped MobileNetV2, end to end vs from a layer.

Usage (README "Fine-tuning an ImageNet network" quotes the figures)::

    python bench/finetune_speed.py [--data ../shared/data] [--layers input38.1,input41.1,input47.1] [--batch 64]

For the int8 MobileNetV2 of ``../shared/data/weights``, rebuilt in float
(:class:`iconoscope.learn.backbones.dequantize.DequantizedNet`), it times training steps (forward, BCE on 10 classes,
backward, Adam) on random inputs of the right shape: end to end from 224 px images, and from each ``--layers`` value
(the map that ``embed`` stores with ``pool=none``), plus the int8 network's forward rate up to that value (what
storing the maps costs once). The peer is end-to-end training in the same run: ratios are printed beside the rates.
Threads: ``ICONOSCOPE_THREADS`` (default: all cores). Writes ``bench/results/finetune_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
MODEL = "weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"


def rate(step: Any, n: int, warmup: int = 2, repeat: int = 8) -> float:
    """Images per second of ``step()`` (one batch of ``n``), median of ``repeat`` timed calls after ``warmup``."""
    for _ in range(warmup):
        step()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    return n / sorted(times)[len(times) // 2]


def train_step(net: Any, x: Any, n_classes: int = 10) -> Any:
    import torch

    head = torch.nn.LazyLinear(n_classes)
    head(torch.nn.functional.adaptive_avg_pool2d(net(x[:1]), 1).flatten(1))
    params = [p for p in [*net.parameters(), *head.parameters()] if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-4)
    y = (torch.rand(len(x), n_classes) < 0.2).float()

    def step() -> None:
        opt.zero_grad()
        logits = head(torch.nn.functional.adaptive_avg_pool2d(net(x), 1).flatten(1))
        torch.nn.functional.binary_cross_entropy_with_logits(logits, y).backward()
        opt.step()

    return step


def main() -> None:
    import torch

    from iconoscope.learn.backbones.dequantize import DequantizedNet
    from iconoscope.learn.backbones.runtime import env_threads
    from iconoscope.learn.backbones.torchscript import _pool_input, cut_graph, load_inlined

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--layers", default="input38.1,input41.1,input47.1")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "finetune_speed.json")
    args = ap.parse_args()
    path = args.data / MODEL
    if not path.exists():
        raise SystemExit(f"{path} not found (--data)")
    torch.set_num_threads(env_threads() or os.cpu_count() or 1)
    torch.manual_seed(0)
    module = load_inlined(str(path), "bench")
    end = _pool_input(module.forward.graph, "bench").debugName()
    b = args.batch
    images = torch.rand(b, 3, 224, 224)
    rows: list[dict[str, Any]] = []
    whole = DequantizedNet(load_inlined(str(path), "bench"), outputs=(end,))
    e2e = rate(train_step(whole, images), b, warmup=1, repeat=2)
    rows.append({"start": "image (end to end)", "map": "3 x 224 x 224", "trained_weights":
                 sum(p.numel() for p in whole.parameters()), "train_img_s": e2e, "store_img_s": None})
    for layer in args.layers.split(","):
        prefix = load_inlined(str(path), "bench")
        cut_graph(prefix, layer, "bench")
        with torch.inference_mode():
            maps = prefix(images).dequantize()
        store = rate(lambda p=prefix: p(images), b)  # int8 forward up to the layer: storing the maps, once
        top = DequantizedNet(load_inlined(str(path), "bench"), outputs=(end,), start=layer)
        rows.append({"start": layer, "map": " x ".join(map(str, maps.shape[1:])),
                     "trained_weights": sum(p.numel() for p in top.parameters() if p.requires_grad),
                     "train_img_s": rate(train_step(top, maps.clone()), b), "store_img_s": store})
    print(f"threads {torch.get_num_threads()}, batch {b}; peer: end-to-end training in this run\n")
    print(f"{'start':<20} {'map':>14} {'trained weights':>16} {'train img/s':>12} {'x end to end':>13} "
          f"{'store img/s':>12}")
    for r in rows:
        store = f"{r['store_img_s']:.0f}" if r["store_img_s"] else "-"
        print(f"{r['start']:<20} {r['map']:>14} {r['trained_weights']:>16,} {r['train_img_s']:>12.1f} "
              f"{r['train_img_s'] / e2e:>13.1f} {store:>12}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"threads": torch.get_num_threads(), "batch": b, "rows": rows}, indent=1),
                        encoding="utf-8")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
