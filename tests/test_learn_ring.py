"""Prepared images through shared memory (learn/ring.py): same arrays as in-process, in order, slots never
overwritten while lent, failures reported, an abandoned stream shuts its workers down."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
from learn_helpers import make_images
from PIL import Image

from iconoscope.learn import ring
from iconoscope.learn.backbones import get_backbone
from iconoscope.learn.backbones.base import Preparer, Preprocess
from iconoscope.learn.backbones.concat import ConcatPreparer
from iconoscope.learn.embed import prepared_stream, run_backbone

pytestmark = pytest.mark.skipif(not ring.supports_ring(Preparer(Preprocess())), reason="needs the fork start method")


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    return [str(p) for _, _, p in make_images(tmp_path / "img", per_class=20, size=48)]  # 60 JPEGs


def _expected(preparer, paths: list[str]) -> list[np.ndarray]:
    from iconoscope.images import load_image

    return [preparer(load_image(p, min_side=preparer.min_side)) for p in paths]


def test_ring_gives_the_in_process_arrays_in_order(files: list[str]) -> None:
    prep = Preparer(Preprocess(size=(32, 24)), views=("full", "top", "flip"))
    got = [(i, a.copy(), r) for i, a, r in ring.ring_stream(prep, files, workers=2, chunksize=4)]
    assert [i for i, _, _ in got] == list(range(len(files)))
    assert all(r is None for _, _, r in got)
    for (_, a, _), want in zip(got, _expected(prep, files), strict=True):
        assert a.shape == (3, 3, 32, 24) and a.dtype == np.float32
        np.testing.assert_array_equal(a, want)


def test_a_slow_consumer_never_sees_a_slot_overwritten(files: list[str], monkeypatch) -> None:
    """The smallest ring (chunks of 1, 3 slots) and a consumer that dawdles before it reads: without the
    semaphore, the workers would write the next images into the slots being read."""
    prep = Preparer(Preprocess(size=(16, 16)))
    slot = int(np.prod(prep.layout[0][0])) * 4
    monkeypatch.setattr(ring, "RING_BYTES", slot)
    assert ring.ring_size(prep.layout, 2, 16, ahead=64) == (1, 2)
    want = _expected(prep, files)
    for i, a, r in ring.ring_stream(prep, files, workers=2, chunksize=16):
        assert r is None
        before = a.copy()
        time.sleep(0.002)
        np.testing.assert_array_equal(a, before)
        np.testing.assert_array_equal(a, want[i])


def test_ring_sizes_hold_a_batch_stay_in_budget_and_can_always_finish_a_chunk() -> None:
    small = (((1, 3, 224, 224), "float32"),)  # one 224-px view: 0.6 MB
    assert ring.ring_size(small, 1, 16, ahead=64) == (16, 64 + 32)  # a whole batch, and two chunks in flight
    large = (((6, 3, 224, 224), "float32"),)  # six views: 3.6 MB per image
    for workers in (1, 2, 8):
        for ahead in (0, 64, 512):
            chunk, slots = ring.ring_size(large, workers, 16, ahead, budget=64 << 20)
            assert chunk >= 1 and slots >= chunk + 1
            assert slots * 6 * 3 * 224 * 224 * 4 <= 64 << 20 or slots == chunk + 1


def test_failures_are_reported_in_place_and_the_rest_unharmed(files: list[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    paths = [*files[:20], str(tmp_path / "gone.jpg"), str(bad), "", *files[20:]]
    prep = Preparer(Preprocess(size=(24, 24)))
    got = {i: (None if a is None else a.copy(), r) for i, a, r in prepared_stream(prep, paths, workers=2)}
    assert len(got) == len(paths)
    assert got[20] == (None, "file not found")
    assert got[21][0] is None and ("corrupt" in got[21][1] or "not a recognised" in got[21][1])
    assert got[22][0] is None and "no location" in got[22][1]
    ok = [i for i in range(len(paths)) if i not in (20, 21, 22)]
    for i, want in zip(ok, _expected(prep, [paths[i] for i in ok]), strict=True):
        np.testing.assert_array_equal(got[i][0], want)


def test_an_abandoned_stream_shuts_down(files: list[str]) -> None:
    prep = Preparer(Preprocess(size=(24, 24)))
    done = threading.Event()

    def consume_three() -> None:
        stream = ring.ring_stream(prep, files * 4, workers=2, chunksize=2)
        for k, _ in enumerate(stream):
            if k == 2:
                break
        stream.close()
        done.set()

    t = threading.Thread(target=consume_three, daemon=True)
    t.start()
    assert done.wait(30), "closing the stream hung (the feeder kept the pool waiting)"
    assert not ring._RINGS


def test_run_backbone_through_the_ring_equals_embed(files: list[str]) -> None:
    """A concat backbone (two parts, two layouts, two dtypes of view sets) embedded through workers + shared memory
    gives the vectors that embedding the decoded images in-process gives; batches of 7 leave a ragged last one."""
    bb = get_backbone("concat:builtin:smallcnn?size=32&widths=8,16&engine=torch&views=full,top"
                      "|builtin:smallcnn?size=24&widths=8,16&engine=torch&seed=1", cache=False)
    assert isinstance(bb.preparer, ConcatPreparer) and ring.supports_ring(bb.preparer)
    out: dict[int, np.ndarray] = {}
    run_backbone(bb, files, batch_size=7, workers=2, on_batch=lambda idx, X: out.update(zip(idx, X, strict=True)))
    assert sorted(out) == list(range(len(files)))
    want = bb.embed([Image.open(p).convert("RGB") for p in files])
    np.testing.assert_allclose(np.stack([out[i] for i in range(len(files))]), want, rtol=1e-5, atol=1e-6)


def test_a_backbone_without_forward_batch_still_gets_its_own_copies(files: list[str], monkeypatch) -> None:
    """A duck-typed (plugin) backbone with only ``forward_prepared``: the lent arrays are copied before the batch
    is kept, so a batch of 20 in a ring of 8 slots is not overwritten by the workers."""
    prep = Preparer(Preprocess(size=(16, 16)))
    monkeypatch.setattr(ring, "RING_BYTES", 8 * 3 * 16 * 16 * 4)
    assert ring.ring_size(prep.layout, 2, 16, ahead=20)[1] == 8

    class Plain:
        preparer = prep
        dim = 3 * 16 * 16

        def forward_prepared(self, prepared):
            return np.stack([p.reshape(-1) for p in prepared])

    out: dict[int, np.ndarray] = {}
    run_backbone(Plain(), files, batch_size=20, workers=2, on_batch=lambda idx, X: out.update(zip(idx, X, strict=True)))
    want = _expected(prep, files)
    for i in range(len(files)):
        np.testing.assert_array_equal(out[i], want[i].reshape(-1))
