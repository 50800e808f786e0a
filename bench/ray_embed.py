"""Images/s of ``embed --engine ray`` with 1 and 2 workers on a real local Ray cluster, against the local engine.

A head node and one worker node (1 CPU each) are started with ``ray start``; the Ray engine embeds the same real
images (Pomological Watercolors thumbnails) with an actor pool of 1, then 2 actors. The local engine (one process,
the network on one core; the peer) embeds them too, so every figure is also a ratio to it, measured in the same run.

Two rates per run: ``total`` (wall clock of the whole job, actor start and model load included) and ``steady``
(from the moment the first actor starts its first batch to the moment the last batch ends, timed by the actors:
what a long job converges to, the figure cluster sizing needs; for the local engine, a second pass with the model
loaded).

Usage: python bench/ray_embed.py [--n 600] [--backbone SPEC] [--batch 16]
Prints a table and writes bench/results/ray_embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

DATA = Path(os.environ.get("ICONOSCOPE_DATA", ROOT.parent / "shared" / "data"))
MOBILENET = DATA / "weights" / "mobilenet_v2_quantized_torchscript" / "mobilenet_quantized.pt"


def load_avg() -> float:
    return os.getloadavg()[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=600, help="images to embed per run")
    ap.add_argument("--backbone", default=f"torchscript:{MOBILENET}" if MOBILENET.exists() else "builtin:smallcnn")
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()

    images_dir = DATA / "pomological" / "images"
    if not images_dir.is_dir():
        sys.exit(f"no images at {images_dir} (set ICONOSCOPE_DATA)")

    import numpy as np

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.embed import EmbeddingStore, PendingImage, embed_pending
    from iconoscope.scale import ray_engine
    from iconoscope.scale.ray_cluster import LocalRayCluster

    files = sorted(images_dir.glob("*.jpg"), key=lambda p: int(p.stem.split("-")[1]))[: args.n]
    pending = [PendingImage(p.stem, p.stem, str(p)) for p in files]
    make = partial(get_backbone, args.backbone)
    rows: list[dict[str, object]] = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))

    def record(engine: str, workers: int, n: int, total_s: float, steady_n: int, steady_s: float) -> None:
        rows.append({"engine": engine, "workers": workers, "images": n, "total_s": round(total_s, 2),
                     "total_img_s": round(n / total_s, 1), "steady_img_s": round(steady_n / steady_s, 1),
                     "load_avg": round(load_avg(), 1)})
        r = rows[-1]
        print(f"  {engine:<6} workers={workers}  {n} img  total {total_s:6.1f} s = {r['total_img_s']:6.1f} img/s   "
              f"steady {r['steady_img_s']:6.1f} img/s   (load avg {r['load_avg']})", flush=True)

    print(f"backbone {args.backbone}, {len(pending)} images, batch {args.batch}, {os.cpu_count()} cores, "
          f"load average {load_avg():.1f}")
    # the peer: the local engine in one process (the network on one core, decoding inline)
    store = EmbeddingStore(tmp / "local", args.backbone)
    t0 = time.perf_counter()
    rep = embed_pending(None, args.backbone, pending, store, make, batch_size=args.batch, workers=0,
                        show_progress=False)
    total = time.perf_counter() - t0
    import torch

    from iconoscope.images import load_image

    bb = make()
    threads = torch.get_num_threads()
    for n_threads in (threads, 1):  # steady: the same work with the model loaded; then on exactly one core
        torch.set_num_threads(n_threads)
        t1 = time.perf_counter()
        for i in range(0, len(pending), args.batch):
            bb.embed([load_image(p.location, min_side=bb.preparer.min_side) for p in pending[i:i + args.batch]])
        record("local", 1, rep.embedded, total, len(pending), time.perf_counter() - t1)
        rows[-1]["torch_threads"] = n_threads
    torch.set_num_threads(threads)
    _, X_local = store.load([p.image for p in pending])

    with LocalRayCluster(workers=1, cpus_per_node=1) as cluster:
        import logging

        import ray

        ray.init(address=cluster.address, logging_level=logging.WARNING, log_to_driver=False)
        for workers in (1, 2):
            t0 = time.perf_counter()
            first, last, done, nodes = float("inf"), 0.0, 0, set()
            idx_all, X_all = [], []
            for batch in ray_engine.map_images([p.location for p in pending], make, batch_size=args.batch,
                                               workers=workers):
                done += len(batch.idx)
                nodes.update(batch.nodes)
                idx_all.append(batch.idx)
                X_all.append(batch.vectors)
                first, last = min(first, batch.span[0]), max(last, batch.span[1])
                assert not any(batch.reasons), batch.reasons
            end = time.perf_counter()
            record("ray", workers, done, end - t0, done, last - first)
            rows[-1]["nodes"] = len(nodes)
            order = np.argsort(np.concatenate(idx_all))
            X_ray = np.concatenate(X_all)[order]
            rows[-1]["max_abs_diff_vs_local"] = float(np.abs(X_ray - X_local).max())
        ray.shutdown()

    local = rows[1]  # the local engine on one core: the per-core peer
    one, two = rows[2], rows[3]
    print()
    print("| engine | workers | torch threads | total img/s | steady img/s | steady vs local 1 core | nodes used |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        ratio = float(r["steady_img_s"]) / float(local["steady_img_s"])
        print(f"| {r['engine']} | {r['workers']} | {r.get('torch_threads', 1)} | {r['total_img_s']} | "
              f"{r['steady_img_s']} | {ratio:.2f}x | {r.get('nodes', 1)} |")
    scaling = float(two["steady_img_s"]) / float(one["steady_img_s"])
    print(f"\n2 workers / 1 worker (steady): {scaling:.2f}x   (goal >= 1.8x; {os.cpu_count()} cores on this machine, "
          f"load average {load_avg():.1f} from other work)")
    out = ROOT / "bench" / "results" / "ray_embed.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"backbone": args.backbone, "batch": args.batch, "rows": rows,
                               "scaling_2_over_1": round(scaling, 3), "cpus": os.cpu_count()}, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
