"""``embed``: images come from the graph, vectors are stored once, runs resume, bad images are reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from learn_helpers import make_images

from iconoscope.graph.vocab import ICO, RDF_TYPE
from iconoscope.learn.embed import EmbeddingStore, embed_images, graph_images

SPEC = "builtin:smallcnn?size=32&widths=8,16&engine=torch"


def _ingest(ws, items: list[tuple[str, Path]]) -> None:
    """Records and images as the ingest stage writes them (graph-model.md)."""
    lines = []
    for image_id, location in items:
        rec, img = ws.iris.record(f"r-{image_id}"), ws.iris.image(image_id)
        lines += [f"<{rec}> <{RDF_TYPE}> <{ICO}Record> .",
                  f'<{rec}> <http://purl.org/dc/terms/identifier> "r-{image_id}" .',
                  f'<{rec}> <{ICO}source> "test" .',
                  f"<{rec}> <{ICO}image> <{img}> .",
                  f"<{img}> <{RDF_TYPE}> <{ICO}Image> .",
                  f'<{img}> <{ICO}location> "{location}" .',
                  f"<{img}> <{ICO}record> <{rec}> ."]
    ws.store.add_to_graph(ws.iris.source_graph("test"), "\n".join(lines) + "\n", format="nt")


def test_embed_from_graph_is_resumable_and_reports_bad_images(workspace, tmp_path: Path) -> None:
    ws = workspace
    imgs = make_images(tmp_path / "img", per_class=4, size=40)
    corrupt = tmp_path / "img" / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    first = [(i, p) for i, _, p in imgs[:6]]
    _ingest(ws, first)
    pend = graph_images(ws)
    assert {p.image for p in pend} == {i for i, _ in first}
    assert all(p.record == f"r-{p.image}" for p in pend)

    rep = embed_images(ws, SPEC, workers=0, show_progress=False)
    assert (rep.embedded, rep.failed, rep.skipped) == (6, 0, 0)

    # more images arrive, one missing and one corrupt: the run goes on and lists them
    _ingest(ws, [(i, p) for i, _, p in imgs[6:]] + [("gone", tmp_path / "nope.jpg"), ("bad", corrupt)])
    rep = embed_images(ws, SPEC, workers=2, show_progress=False)
    assert rep.skipped == 6 and rep.embedded == len(imgs) - 6 and rep.failed == 2
    store = EmbeddingStore(ws, SPEC)
    fails = {r["image"]: r["reason"] for r in store.failures().to_pylist()}
    assert fails["gone"] == "file not found"
    assert "not a recognised image format" in fails["bad"] or "corrupt" in fails["bad"]

    ids, X = store.load()
    assert len(ids) == len(set(ids)) == len(imgs)
    assert X.shape == (len(imgs), 16) and X.dtype == np.float32
    meta = store.meta()
    assert meta["spec"] == SPEC and meta["dim"] == 16 and meta["views"] == ["full"]

    # a third run does nothing new, and appending the same ids again never duplicates
    rep = embed_images(ws, SPEC, workers=0, show_progress=False)
    assert rep.embedded == 0 and rep.skipped == len(imgs)
    store.append(ids[:3], ["x"] * 3, X[:3])
    assert len(store.load()[0]) == len(imgs)

    # vectors match a direct embedding of the same images, in the requested order
    from PIL import Image

    from iconoscope.learn.backbones import get_backbone

    some = [imgs[5][0], imgs[0][0]]
    _, Xs = store.load(some)
    direct = get_backbone(SPEC).embed([Image.open(imgs[5][2]).convert("RGB"), Image.open(imgs[0][2]).convert("RGB")])
    np.testing.assert_allclose(Xs, direct, rtol=1e-4, atol=1e-5)
    assert store.has([*some, "gone"]).tolist() == [True, True, False]


def test_interrupted_shard_is_ignored_and_failures_clear_when_fixed(workspace, tmp_path: Path) -> None:
    ws = workspace
    imgs = make_images(tmp_path / "img", per_class=2, size=32)
    store = EmbeddingStore(ws, SPEC)
    (store.dir / "part-00007.npy.tmp").write_bytes(b"half a shard")  # a crash mid-write
    later = tmp_path / "later.jpg"
    _ingest(ws, [(i, p) for i, _, p in imgs] + [("later", later)])
    rep = embed_images(ws, SPEC, workers=0, show_progress=False)
    assert rep.failed == 1 and len(store.load()[0]) == len(imgs)
    # the missing file appears: the next run embeds it and clears its failure
    import shutil

    shutil.copy(imgs[0][2], later)
    rep = embed_images(ws, SPEC, workers=0, show_progress=False)
    assert rep.embedded == 1 and store.failures().num_rows == 0


def test_concat_store_is_filled_from_its_parts(workspace, tmp_path: Path) -> None:
    from PIL import Image

    from iconoscope.learn.backbones import get_backbone

    ws = workspace
    imgs = make_images(tmp_path / "img", per_class=2, size=32)
    _ingest(ws, [(i, p) for i, _, p in imgs] + [("gone", tmp_path / "nope.jpg")])
    other = "builtin:smallcnn?size=40&widths=8,8&views=full,top&engine=torch"
    combo = f"concat:{SPEC}|{other}"
    embed_images(ws, SPEC, workers=0, show_progress=False)  # one part is already there
    rep = embed_images(ws, combo, workers=0, show_progress=False)
    assert rep.embedded == len(imgs) and rep.failed == 1 and rep.dim == 16 + 2 * 8
    ids, X = EmbeddingStore(ws, combo).load()
    _, A = EmbeddingStore(ws, SPEC).load(ids)
    _, B = EmbeddingStore(ws, other).load(ids)
    np.testing.assert_array_equal(X, np.concatenate([A, B], axis=1))
    fails = EmbeddingStore(ws, combo).failures().to_pylist()
    assert fails[0]["image"] == "gone" and "file not found" in fails[0]["reason"]
    direct = get_backbone(combo).embed([Image.open(imgs[0][2]).convert("RGB")])
    np.testing.assert_allclose(direct, X[ids.index(imgs[0][0])][None], rtol=1e-4, atol=1e-5)


def test_long_concat_spec_gets_a_short_distinct_store(workspace, tmp_path: Path) -> None:
    """A concat of several multi-view specs names a folder longer than a file system allows (255 bytes):
    the store name is shortened with a hash of the whole spec, and two long specs differing only at the end
    still get different stores."""
    from iconoscope.workspace import SLUG_MAX, slug

    ws = workspace
    imgs = make_images(tmp_path / "img", per_class=1, size=32)
    _ingest(ws, [(i, p) for i, _, p in imgs])
    part = "builtin:colorhist?bins={},2,2&grid=1&views=full,top,center,inner,upper,bottom"
    long_a = "concat:" + "|".join(part.format(b) for b in (2, 3, 4, 6))
    long_b = "concat:" + "|".join(part.format(b) for b in (2, 3, 4, 5))
    assert len(long_a) > 255
    rep = embed_images(ws, long_a, workers=0, show_progress=False)
    assert rep.embedded == len(imgs)
    store = EmbeddingStore(ws, long_a)
    assert len(store.dir.name) <= SLUG_MAX and store.dir.is_dir() and len(store) == len(imgs)
    assert slug(long_a) != slug(long_b) and slug(long_a)[:50] == slug(long_b)[:50]
    assert slug("hf:org/model") == "hf-org-model"  # short names are unchanged (existing stores stay valid)
