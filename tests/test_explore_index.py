"""Vector index: exact == brute force, IVF close to it, incremental add/delete/replace, persistence, pair pass."""

from __future__ import annotations

import numpy as np
import pytest

from iconoscope.errors import IconoscopeError
from iconoscope.explore.index import VectorIndex, build_index, normalize


def clustered(n: int, d: int = 32, centers: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    C = rng.standard_normal((centers, d)).astype(np.float32)
    lab = rng.integers(0, centers, n)
    return (C[lab] + 0.4 * rng.standard_normal((n, d))).astype(np.float32)


def brute(X: np.ndarray, Q: np.ndarray, k: int) -> np.ndarray:
    S = normalize(Q) @ normalize(X).T
    return np.argsort(-S, axis=1, kind="stable")[:, :k]


def test_exact_equals_brute_force() -> None:
    X = clustered(500)
    Q = clustered(20, seed=1)
    ids = [f"img{i}" for i in range(len(X))]
    idx = build_index(ids, X, kind="exact")
    res = idx.search(Q, k=7)
    want = brute(X, Q, 7)
    S = normalize(Q) @ normalize(X).T
    for r, w, s in zip(res, want, S, strict=True):
        assert [i for i, _ in r] == [ids[j] for j in w]
        assert np.allclose([sc for _, sc in r], s[w], atol=1e-5)


def test_ivf_with_all_lists_probed_equals_exact_and_default_recall() -> None:
    data = clustered(3050, d=48, centers=40)
    X, Q = data[:3000], data[3000:]  # queries from the same distribution, not indexed
    ids = [str(i) for i in range(len(X))]
    ivf = build_index(ids, X, kind="ivf")
    assert ivf.backend_kind == "ivf" and ivf.backend.nlist > 1
    want = brute(X, Q, 10)
    ivf.backend.nprobe = ivf.backend.nlist  # every list probed: exhaustive
    got = [[int(i) for i, _ in r] for r in ivf.search(Q, 10)]
    assert got == want.tolist()
    ivf.calibrate()  # back to the calibrated nprobe
    got = [[int(i) for i, _ in r] for r in ivf.search(Q, 10)]
    recall = np.mean([len(set(g) & set(w)) / 10 for g, w in zip(got, want.tolist(), strict=True)])
    assert ivf.backend.nprobe < ivf.backend.nlist
    assert recall >= 0.9


@pytest.mark.parametrize("kind", ["exact", "ivf"])
def test_incremental_add_delete_replace(kind: str, tmp_path) -> None:
    X = clustered(1200, seed=3)
    ids = [f"a{i}" for i in range(1200)]
    idx = build_index(ids[:1000], X[:1000], kind=kind)
    if kind == "ivf":
        idx.backend.nprobe = idx.backend.nlist
    assert len(idx) == 1000
    assert idx.add(ids[1000:], X[1000:]) == 200
    assert idx.add(ids[:10], X[:10]) == 0  # unchanged vectors: no-op
    assert len(idx) == 1200
    removed = idx.remove([*ids[:100], "unknown"])
    assert removed == 100 and len(idx) == 1100 and "a5" not in idx
    hits = idx.search(X[:100], k=3)
    assert all(h[0][0] not in set(ids[:100]) for h in hits)  # deleted ids never come back
    # the result set matches brute force over what is left
    left = list(range(100, 1200))
    want = brute(X[left], X[1100:1120], 5)
    got = [[i for i, _ in r] for r in idx.search(X[1100:1120], k=5)]
    assert got == [[ids[left[j]] for j in w] for w in want]
    # replacing a vector moves it
    newv = X[1199] + 0.0
    idx.add(["a150"], newv[None])
    top = idx.search(X[1199][None], k=2)[0]
    assert {t[0] for t in top} == {"a150", "a1199"}
    assert np.allclose(idx.vectors(["a150"])[0], normalize(newv)[0], atol=1e-6)
    # persistence keeps everything, including further incremental changes
    idx.save(tmp_path / "index")
    again = VectorIndex.load(tmp_path / "index")
    assert again.backend_kind == idx.backend_kind and len(again) == 1100
    assert again.search(X[1100:1105], k=5) == idx.search(X[1100:1105], k=5)
    again.remove(["a1199"])
    again.add(["new"], X[1199][None])
    assert again.search(X[1199][None], k=1)[0][0][0] in ("new", "a150")


def test_auto_switches_backend_both_ways() -> None:
    X = clustered(900, seed=4)
    ids = [str(i) for i in range(900)]
    idx = VectorIndex(X.shape[1], kind="auto", exact_below=500)
    idx.add(ids[:400], X[:400])
    assert idx.backend_kind == "exact"
    idx.add(ids[400:], X[400:])
    assert idx.backend_kind == "ivf" and len(idx) == 900
    idx.remove(ids[:700])
    assert idx.backend_kind == "exact" and len(idx) == 200
    assert idx.search(X[800][None], k=1)[0][0][0] == "800"


def test_sync_mirrors_a_new_state() -> None:
    X = clustered(300, seed=5)
    ids = [str(i) for i in range(300)]
    idx = build_index(ids[:200], X[:200])
    report = idx.sync(ids[100:], X[100:])
    assert report == {"added": 100, "removed": 100, "total": 200, "kept": 100}
    assert set(idx.ids) == set(ids[100:])


def test_similar_pairs_match_brute_force() -> None:
    rng = np.random.default_rng(6)
    X = clustered(2000, d=32, seed=6)
    X[1500:1600] = X[:100] + 0.02 * rng.standard_normal((100, 32)).astype(np.float32)  # planted near-copies
    ids = [str(i) for i in range(2000)]
    Xn = normalize(X)
    S = Xn @ Xn.T
    iu = np.triu_indices(2000, 1)
    want = {(int(a), int(b)) for a, b in zip(*iu, strict=True) if S[a, b] >= 0.98}
    assert len(want) >= 100
    for kind in ("exact", "ivf"):
        idx = build_index(ids, X, kind=kind)
        got_ids, i, j, s = idx.similar_pairs(0.98)
        got = {tuple(sorted((int(got_ids[a]), int(got_ids[b])))) for a, b in zip(i, j, strict=True)}
        assert np.all(s >= 0.98)
        if kind == "exact":
            assert got == want
        else:
            assert len(got & want) / len(want) >= 0.95 and got <= want


def test_errors_are_clear(tmp_path) -> None:
    idx = build_index(["a", "b"], np.eye(2, 4, dtype=np.float32))
    with pytest.raises(IconoscopeError, match="dim 3"):
        idx.add(["c"], np.ones((1, 3), np.float32))
    with pytest.raises(IconoscopeError, match="2 ids"):
        idx.add(["c", "d"], np.ones((1, 4), np.float32))
    with pytest.raises(IconoscopeError, match="no index here"):
        VectorIndex.load(tmp_path / "nothing")


def test_default_index_on_small_data_equals_exact_search_before_and_after_saving(tmp_path) -> None:
    """Below EXACT_BELOW the default ('auto') index is exact: same ids, same order, same cosines as brute force."""
    X = clustered(800, d=24, seed=7)
    Q = clustered(15, d=24, seed=8)
    ids = [f"r{i}" for i in range(len(X))]
    idx = build_index(ids, X)
    assert idx.backend_kind == "exact"
    S = normalize(Q) @ normalize(X).T
    want = brute(X, Q, 10)
    idx.save(tmp_path / "idx")
    for index in (idx, VectorIndex.load(tmp_path / "idx")):
        res = index.search(Q, k=10)
        assert [[i for i, _ in r] for r in res] == [[ids[j] for j in w] for w in want]
        assert all(np.allclose([s for _, s in r], S[q, w], atol=1e-5) for q, (r, w) in enumerate(zip(res, want,
                                                                                                   strict=True)))


def test_ivf_after_growth_retrain_and_deletes_still_equals_exact_when_exhaustive() -> None:
    """Incremental life of an IVF index: trained on 400 vectors, grown 8x (which retrains its lists), then half
    deleted; probing every list it must return exactly the brute-force answer over the vectors left."""
    X = clustered(3600, d=32, centers=30, seed=9)
    ids = [str(i) for i in range(len(X))]
    idx = build_index(ids[:400], X[:400], kind="ivf")
    nlist0 = idx.backend.nlist
    for s in range(400, 3600, 800):  # batches, as `iconoscope index` adds new embeddings
        idx.add(ids[s:s + 800], X[s:s + 800])
    assert len(idx) == 3600 and idx.backend_kind == "ivf" and idx.backend.nlist > nlist0  # retrained
    gone = ids[::2]
    assert idx.remove(gone) == 1800
    left = np.arange(1, 3600, 2)
    idx.backend.nprobe = idx.backend.nlist
    Q = clustered(25, d=32, centers=30, seed=10)
    want = brute(X[left], Q, 8)
    got = [[i for i, _ in r] for r in idx.search(Q, k=8)]
    assert got == [[ids[left[j]] for j in w] for w in want]
