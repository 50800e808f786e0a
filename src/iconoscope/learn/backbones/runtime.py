"""Running networks on the CPU: ONNX Runtime sessions, and torch modules exported to ONNX Runtime when that is faster.

On this kind of machine ONNX Runtime runs convolutional nets 2-4x faster than eager torch (EfficientNet-B0: 136 vs 31
img/s on 2 cores), so a torch backbone is exported once at load time (in memory, no file), checked to agree with the
torch outputs on a random batch, and run by ONNX Runtime; when export fails or the outputs disagree it stays in torch
and says so in ``notes``.
"""

from __future__ import annotations

import io
import logging
import os
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ENGINES = ("auto", "torch", "onnx")


def busy_threads() -> int | None:
    """1 when other processes already hold every core (1-minute load average >= cores), else None (the default).

    Intra-op threads spin-wait for each other; when the cores are taken by other jobs they wait far longer than
    they compute. Measured on a 2-core machine at load 8: smallcnn training (64 px, batch 16) took 78 s of CPU and
    317 s of wall time with two torch threads against 4.6 s and 27 s with one, for the same 10 epochs.
    """
    try:
        load = os.getloadavg()[0]
    except OSError:  # pragma: no cover - not on every platform
        return None
    return 1 if load >= (os.cpu_count() or 1) else None


def env_threads() -> int:
    """``ICONOSCOPE_THREADS`` as a number (0 when unset)."""
    return int(os.environ.get("ICONOSCOPE_THREADS", "0") or 0)


def thread_count(n: int | None = None) -> int | None:
    """Threads for a network: ``n``, else ``ICONOSCOPE_THREADS``, else 1 on a busy machine, else None (all cores)."""
    return n or env_threads() or busy_threads()


def training_threads() -> int:
    """Threads for training: ``ICONOSCOPE_THREADS``, else 1, never the load-dependent choice of :func:`thread_count`.

    Floating-point sums split over a different number of threads round differently, so a network trained with one
    thread and with two ends up different (the demo's CV mAP: 0.837 with one, 0.821 with two). A seeded training
    run must give the same model whatever else the machine is doing; inference may adapt, its outputs agree to
    rounding. The multimodal model trains with one thread for the same reason (``learn/text.py``)."""
    return env_threads() or 1


def torch_threads(n: int | None = None) -> None:
    """Set torch's intra-op threads from :func:`thread_count` (None: torch's default, all cores).

    On a machine shared with other jobs, one thread per process wastes far less than several that wait on
    each other; on a machine of one's own the default is faster.
    """
    n = thread_count(n)
    if n:
        import torch

        torch.set_num_threads(n)


def ort_session(model: bytes | str, threads: int | None = None) -> Any:
    """An ONNX Runtime CPU session with all graph optimisations and quiet logging."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    n = thread_count(threads)
    if n:
        so.intra_op_num_threads = n
    so.inter_op_num_threads = 1
    return ort.InferenceSession(model, so, providers=["CPUExecutionProvider"])


def export_to_onnx(module: Any, example: Any, opset: int = 17) -> bytes:
    """A torch module -> ONNX bytes with a dynamic batch axis (TorchScript-based exporter: no onnxscript needed)."""
    import warnings

    import torch

    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(module, (example,), buf, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    return buf.getvalue()


class TorchRunner:
    """Runs a torch module ``[B, C, H, W] -> [B, ...]`` in torch or, when ``engine`` allows, in ONNX Runtime."""

    def __init__(self, module: Any, input_shape: tuple[int, int, int], engine: str = "auto",
                 threads: int | None = None, atol: float = 1e-3):
        import torch

        if engine not in ENGINES:
            from iconoscope.errors import ConfigError

            raise ConfigError(f"engine = {engine!r}: expected one of {', '.join(ENGINES)}")
        self.module = module.eval()
        self.engine = "torch"
        self.note = ""
        self._session: Any = None
        torch_threads(threads)
        if engine == "torch":
            return
        example = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
        try:
            session = ort_session(export_to_onnx(self.module, example), threads)
            with torch.no_grad():
                ref = self.module(example).float().numpy()
            got = session.run(None, {session.get_inputs()[0].name: example.numpy()})[0]
            err = float(np.max(np.abs(ref - got)) / (np.max(np.abs(ref)) + 1e-6))
            if got.shape != ref.shape or err > atol:
                raise RuntimeError(f"ONNX Runtime and torch disagree (relative error {err:.2e})")
        except Exception as e:  # export is an optimisation: any failure falls back to torch, loudly
            if engine == "onnx":
                raise
            self.note = f"ONNX export failed, running in torch: {e}"
            log.info(self.note)
            return
        self._session = session
        self._input = session.get_inputs()[0].name
        self.engine = "onnx"

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        if self._session is not None:
            return self._session.run(None, {self._input: np.ascontiguousarray(batch, dtype=np.float32)})[0]
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))).float().numpy()
