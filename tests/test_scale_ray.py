"""The Ray engine on a real local cluster (head + one worker node, started by the session's ``ray_cluster``).

It must give exactly what the local engine gives (vectors, ids, failure reasons), spread its actor pool over the
cluster's nodes, and resume an interrupted run without duplicating a vector.
"""

from __future__ import annotations

import copy
from functools import partial
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.ray

SPEC = "builtin:smallcnn"


@pytest.fixture(scope="module")
def ray_driver(ray_cluster):
    """This test process connected to the cluster once (the engine reuses an existing connection)."""
    import logging

    import ray

    ray.init(address=ray_cluster.address, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list:
    """40 small JPEGs, one missing file and one corrupt file, as the engines receive them."""
    from PIL import Image

    from iconoscope.learn.embed import PendingImage

    d = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    out = []
    for i in range(40):
        a = (rng.random((96 + i, 80, 3)) * 255).astype(np.uint8)
        a[: 10 + i] = (i * 6) % 255  # some structure, so that vectors differ from image to image
        Image.fromarray(a).save(d / f"im{i}.jpg", quality=90)
        out.append(PendingImage(f"im{i}", f"rec{i // 2}", str(d / f"im{i}.jpg")))
    (d / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out.insert(7, PendingImage("corrupt", "recX", str(d / "corrupt.jpg")))
    out.insert(20, PendingImage("missing", "recY", str(d / "nope.jpg")))
    return out


def _factory():
    from iconoscope.learn.backbones import get_backbone

    return partial(get_backbone, SPEC)


def _local(tmp_path: Path, images: list):
    from iconoscope.learn.embed import EmbeddingStore, embed_pending

    store = EmbeddingStore(tmp_path / "local", SPEC)
    embed_pending(None, SPEC, images, store, _factory(), batch_size=8, workers=0, show_progress=False)
    return store


def test_ray_embed_resumes_matches_local_engine_and_uses_every_node(ray_driver, images: list, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from iconoscope.learn.embed import EmbeddingStore
    from iconoscope.scale import ray_engine
    from iconoscope.scale.ray_engine import embed_pending

    # 1. a run interrupted after its first shard keeps that shard
    store = EmbeddingStore(tmp_path / "ray", SPEC)
    real_append = store.append
    calls = []

    def append_then_crash(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt("stopped by the user")
        calls.append(1)
        real_append(*args, **kwargs)

    monkeypatch.setattr(store, "append", append_then_crash)
    with pytest.raises(KeyboardInterrupt):
        embed_pending(None, SPEC, images, store, _factory(), batch_size=4, workers=2, flush_every=8,
                      show_progress=False)
    monkeypatch.undo()
    kept = store.ids()
    assert 8 <= len(kept) < 40

    # 2. the next run embeds only what is missing, on both nodes of the cluster
    nodes: list[str] = []
    real_map = ray_engine.map_images

    def spy(*args, **kwargs):
        for batch in real_map(*args, **kwargs):
            nodes.extend(batch.nodes)
            yield batch

    todo = [p for p, done in zip(images, store.has([p.image for p in images]), strict=True) if not done]
    monkeypatch.setattr(ray_engine, "map_images", spy)
    report = embed_pending(None, SPEC, todo, store, _factory(), batch_size=4, workers=2, show_progress=False)
    monkeypatch.undo()
    assert (report.embedded, report.failed) == (40 - len(kept), 2)
    assert len(set(nodes)) == 2, "the actor pool should span the head and the worker node"
    ids_ray = store.ids()
    assert len(ids_ray) == len(set(ids_ray)) == 40  # resumed, nothing duplicated

    # 3. exactly what the local engine gives: vectors, records, failure reasons
    local = _local(tmp_path, images)
    ids, X_local = local.load()
    assert sorted(ids_ray) == sorted(ids)
    _, X_ray = store.load(ids)
    np.testing.assert_allclose(X_ray, X_local, rtol=1e-5, atol=1e-6)
    assert X_ray.std(axis=0).mean() > 0  # real, distinct vectors
    table = store.id_table()
    records = dict(zip(table.column("image").to_pylist(), table.column("record").to_pylist(), strict=True))
    assert records["im5"] == "rec2"
    fails = {r["image"]: r["reason"] for r in store.failures().to_pylist()}
    assert fails == {r["image"]: r["reason"] for r in local.failures().to_pylist()}
    assert fails["missing"] == "file not found" and "corrupt" in fails
    store.append(ids[:5], ["r"] * 5, X_local[:5])  # appending what is stored never duplicates a vector
    assert len(store.ids()) == 40


def test_ray_scores_match_local_scoring(ray_driver, images: list) -> None:
    from sklearn.linear_model import LogisticRegression

    from iconoscope.images import load_image
    from iconoscope.scale.ray_engine import score_images

    backbone = _factory()()
    ok = [p for p in images if p.image not in ("missing", "corrupt")]
    X = backbone.embed([load_image(p.location) for p in ok])
    head = LogisticRegression(max_iter=500).fit(X, np.arange(len(ok)) % 3)
    expected = head.predict_proba(X)

    idx, S, failures = score_images([p.location for p in images], _factory(), partial(copy.deepcopy, head),
                                    batch_size=6, workers=2, show_progress=False)
    assert sorted(failures) == [7, 20]
    assert list(idx) == [i for i in range(len(images)) if i not in (7, 20)]
    np.testing.assert_allclose(S, expected, rtol=1e-4, atol=1e-5)
