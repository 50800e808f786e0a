"""Benchmark: end-to-end embedding rate (files on disk -> stored vectors) vs the backbone's raw forward rate.

The raw rate runs the network alone on already-prepared batches of the same size, stacked before the clock starts;
the end-to-end rate includes decoding (in worker processes, which hand their arrays over in shared memory), views
and preprocessing, stacking, the network, and writing shards. Their ratio says how much
the pipeline costs on top of the model (goal: >= 0.90). A second table compares ONNX Runtime with eager torch for a
torch backbone (the reason torch backbones are exported).

    .venv/bin/python bench/embed.py [--n 512] [--batch-size 64] [--workers N] [--spec SPEC ...]

Each backbone is measured in ``--repeat`` rounds of (raw, end-to-end), back to back; the table gives the round
with the median ratio and every round's ratio. Prints a table and writes bench/results/embed.json. Uses
../shared/data/pomological images when present (else generated ones).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("ICONOSCOPE_DATA", REPO.parent / "shared" / "data"))
WEIGHTS = DATA / "weights"
DEFAULT_SPECS = [
    "builtin:smallcnn",
    f"onnx:{WEIGHTS}/squeezenet1.1_fp16_onnx/SqueezeNet_fp16.onnx?preset=caffe",
    f"torchscript:{WEIGHTS}/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt",
]


def image_files(n: int, tmp: Path) -> list[Path]:
    folder = DATA / "pomological" / "images"
    if folder.is_dir():
        files = sorted(folder.glob("*.jpg"))[:n]
        if len(files) >= n:
            return files
    from PIL import Image

    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        p = tmp / f"gen-{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (192, 128, 3), dtype=np.uint8)).save(p, quality=90)
        out.append(p)
    return out


def raw_rate(backbone, prepared: list[np.ndarray], n: int, batch_size: int) -> float:
    """Images/s of the network alone, on batches of ``batch_size`` stacked before the clock starts (the pipeline
    pays for stacking: it copies each prepared image into its batch)."""
    pre = backbone.preparer
    rows = [pre.unwrap(p) for p in prepared[:batch_size]]
    stacked = [np.stack(x) for x in zip(*rows, strict=True)]
    backbone.forward_batch(pre.wrap(stacked))  # warm-up (allocations, JIT, thread pools)
    t = time.perf_counter()
    done = 0
    while done < n:
        k = min(batch_size, n - done, len(rows))
        backbone.forward_batch(pre.wrap([b[:k] for b in stacked]))
        done += k
    return n / (time.perf_counter() - t)


def end_to_end(spec: str, files: list[Path], batch_size: int, workers: int | None) -> tuple[float, int]:
    from iconoscope.cli.workspace_cmds import init_workspace
    from iconoscope.learn.embed import PendingImage, embed_images
    from iconoscope.workspace import Workspace

    root = Path(tempfile.mkdtemp(prefix="bench-embed-"))
    try:
        init_workspace(root / "ws", name="bench")
        ws = Workspace(root / "ws")
        items = [PendingImage(p.stem, p.stem, str(p)) for p in files]
        t = time.perf_counter()
        rep = embed_images(ws, spec, images=items, batch_size=batch_size, workers=workers, show_progress=False)
        return len(files) / (time.perf_counter() - t), rep.embedded
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--spec", action="append", help="backbone spec (repeatable); default: the shipped ones")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds of (raw, end-to-end) per backbone, interleaved; the ratio is the median of the "
                         "rounds' ratios (a shared machine's speed drifts between two measurements)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "embed.json")
    a = ap.parse_args(argv)

    from PIL import Image

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.embed import default_workers

    specs = a.spec or [s for s in DEFAULT_SPECS if s.startswith("builtin") or Path(
        s.split(":", 1)[1].split("?")[0]).exists()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-img-"))
    files = image_files(a.n, tmp)
    rows = []
    for spec in specs:
        bb = get_backbone(spec)
        t0 = time.perf_counter()
        prepared = [bb.prepare(Image.open(p).convert("RGB")) for p in files[: min(len(files), 256)]]
        prepare_ms = (time.perf_counter() - t0) / len(prepared) * 1000  # what a decoding worker spends per image
        rounds = []
        for _ in range(max(1, a.repeat)):  # each round measures both, back to back: its ratio is a fair pair
            raw = raw_rate(bb, prepared, a.n, a.batch_size)
            e2e, n = end_to_end(spec, files, a.batch_size, a.workers)
            rounds.append((raw, e2e, e2e / raw))
        med = sorted(rounds, key=lambda r: r[2])[len(rounds) // 2]
        rows.append({"spec": spec, "dim": bb.dim, "batch_size": a.batch_size,
                     "workers": a.workers if a.workers is not None else default_workers(), "images": n,
                     "raw_img_s": med[0], "end_to_end_img_s": med[1], "ratio": med[2],
                     "prepare_ms_per_image": prepare_ms,
                     "rounds": [{"raw_img_s": r[0], "end_to_end_img_s": r[1], "ratio": r[2]} for r in rounds],
                     "notes": bb.notes})

    engines = []
    for eng in ("torch", "onnx"):
        bb = get_backbone(f"builtin:smallcnn?engine={eng}", cache=False)
        prepared = [bb.prepare(Image.open(p).convert("RGB")) for p in files[:256]]
        engines.append({"engine": eng, "raw_img_s": raw_rate(bb, prepared, a.n, a.batch_size)})
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"{'backbone':<60} {'dim':>5} {'prep ms':>7} {'raw img/s':>10} {'e2e img/s':>10} {'ratio':>6}  "
          "rounds' ratios")
    for r in rows:
        print(f"{r['spec'][-60:]:<60} {r['dim']:>5} {r['prepare_ms_per_image']:>7.2f} {r['raw_img_s']:>10.1f} "
              f"{r['end_to_end_img_s']:>10.1f} "
              f"{r['ratio']:>6.2f}  " + ", ".join(f"{x['ratio']:.2f}" for x in r["rounds"]))
    t, o = engines[0]["raw_img_s"], engines[1]["raw_img_s"]
    print(f"\nbuiltin:smallcnn raw forward: torch {t:.1f} img/s, ONNX Runtime {o:.1f} img/s (x{o / t:.2f})")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps({"n": a.n, "cpu_count": os.cpu_count(), "results": rows, "engines": engines,
                                 "onnx_over_torch": o / t}, indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
