"""``device`` for fine-tuning: resolved and checked before any image is decoded, ``auto`` falls back to the CPU,
and a run on the CPU gives the same network whether it was asked for by name or by ``auto``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import add_classifier, make_images, write_labels

from iconoscope.errors import ConfigError
from iconoscope.learn.finetune import resolve_device
from iconoscope.workspace import Workspace


def test_device_values(monkeypatch) -> None:
    import torch

    assert resolve_device("cpu", "c") == "cpu"
    assert resolve_device(" CPU ", "c") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto", "c") == "cpu"
    with pytest.raises(ConfigError, match=r"classifier 'c': device = 'cuda', but this torch sees no CUDA GPU"):
        resolve_device("cuda", "c")
    for bad in ("tpu", "cuda:x", "cpu:0", "", "gpu"):
        with pytest.raises(ConfigError, match="expected cpu, cuda, cuda:N, mps or auto"):
            resolve_device(bad, "c")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto", "c") == "cuda"
    assert resolve_device("cuda:1", "c") == "cuda:1"
    with pytest.raises(ConfigError, match="torch sees 2 CUDA GPU"):
        resolve_device("cuda:2", "c")


def _train(root: Path, name: str, device: str) -> tuple[np.ndarray, dict]:
    from iconoscope.learn.train import train_classifier

    add_classifier(root, name, "builtin:smallcnn?size=32&widths=8,16", "finetune",
                   f'epochs = 3\nbatch_size = 16\ndevice = "{device}"')
    ws = Workspace(root)
    try:
        train_classifier(ws, name, folds=2, show_progress=False)
        import pyarrow.parquet as pq

        oof = pq.read_table(ws.model_dir(name) / "oof_scores.parquet").to_pandas()
        card = json.loads((ws.model_dir(name) / "model_card.json").read_text())
        return oof.drop(columns=[c for c in oof.columns if not c.startswith("score")], errors="ignore").to_numpy(), card
    finally:
        ws.close()


def test_auto_on_a_machine_without_gpu_trains_the_cpu_network(workspace, tmp_path: Path, monkeypatch) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    items = make_images(tmp_path / "img", per_class=8, size=32)
    for name in ("on_cpu", "on_auto"):
        write_labels(workspace.labels_path(name), items)
    S_cpu, card_cpu = _train(workspace.root, "on_cpu", "cpu")
    S_auto, card_auto = _train(workspace.root, "on_auto", "auto")
    assert S_cpu.size and np.array_equal(S_cpu, S_auto)  # same seed, same device: the same network
    for card in (card_cpu, card_auto):  # the card records where it trained: "auto" is resolved, not copied
        assert '"device": "cpu"' in json.dumps(card) and '"auto"' not in json.dumps(card)


def test_cuda_without_gpu_is_refused_before_decoding(workspace, tmp_path: Path, monkeypatch) -> None:
    import torch

    from iconoscope.learn.train import train_classifier

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    write_labels(workspace.labels_path("gpu"), make_images(tmp_path / "img", per_class=4, size=32))
    add_classifier(workspace.root, "gpu", "builtin:smallcnn?size=32&widths=8,16", "finetune", 'device = "cuda"')
    ws = Workspace(workspace.root)
    with pytest.raises(ConfigError, match="classifier 'gpu': device = 'cuda'"):
        train_classifier(ws, "gpu", show_progress=False)
    ws.close()
