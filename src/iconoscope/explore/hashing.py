"""Perceptual hashes (pHash, dHash) written with numpy/scipy, and fast Hamming-distance pair search.

Why two hashes: pHash (the signs of the low DCT frequencies of a 32x32 greyscale image against their median) keeps
the coarse composition and survives resizing, re-encoding and light overlays; dHash (the signs of horizontal
gradients on a 9x8 image) is cheaper and fails differently, so asking both to agree rejects many of the look-alike
sheets (same layout, different painting) that fool either one alone.

Hashes are 64-bit and stored as ``uint64``; pairs within a Hamming radius are found with faiss's binary index
(brute-force popcounts in C++, ~1e9 comparisons per second per core), which keeps even 1M hashes practical.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

HASH_SIDE = 32  # pHash: DCT of a 32x32 image, keep the 8x8 lowest frequencies


def _gray(img: Image.Image, size: tuple[int, int]) -> np.ndarray:
    """Greyscale resized with a box filter (anti-aliased, deterministic) -> float32 [h, w]."""
    g = img.convert("L") if img.mode != "L" else img
    return np.asarray(g.resize(size, Image.Resampling.BOX), dtype=np.float32)


def bits_to_uint64(bits: np.ndarray) -> np.ndarray:
    """[N, 64] booleans (most significant first) -> uint64 [N]."""
    packed = np.packbits(np.asarray(bits, dtype=bool).reshape(len(bits), 64), axis=1)
    return packed.view(">u8").reshape(-1).astype(np.uint64)


def phash_from_gray(G: np.ndarray) -> np.ndarray:
    """pHash of greyscale images ``G`` [N, 32, 32] -> uint64 [N]."""
    from scipy.fft import dctn

    D = dctn(np.asarray(G, dtype=np.float64), type=2, norm="ortho", axes=(1, 2))
    low = D[:, :8, :8].reshape(len(G), 64)
    med = np.median(low[:, 1:], axis=1, keepdims=True)  # the DC term measures brightness, not structure
    return bits_to_uint64(low > med)


def dhash_from_gray(G: np.ndarray) -> np.ndarray:
    """dHash of greyscale images ``G`` [N, 8, 9] (rows, columns) -> uint64 [N]."""
    G = np.asarray(G, dtype=np.float32)
    return bits_to_uint64((G[:, :, 1:] > G[:, :, :-1]).reshape(len(G), 64))


THUMB_SIDE = 16  # the colour thumbnail descriptor: 16x16 RGB


@dataclass(frozen=True)
class HashPreparer:
    """Image -> (32x32 grey, 8x9 grey, 16x16 RGB uint8) arrays; picklable, so decoding workers can run it."""

    min_side: int = 64

    def __call__(self, img: Image.Image) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb = img.convert("RGB") if img.mode != "RGB" else img
        thumb = np.asarray(rgb.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX), dtype=np.uint8)
        return _gray(img, (HASH_SIDE, HASH_SIDE)), _gray(img, (9, 8)), thumb


def thumb_descriptors(thumbs: np.ndarray) -> np.ndarray:
    """uint8 [N, 16, 16, 3] thumbnails -> float32 [N, 768] unit vectors, each channel's mean removed.

    Why: a colour thumbnail keeps what binary greyscale hashes throw away (the hues of the fruit, the tint of the
    paper), so two sheets that share a layout but not a painting stop looking alike, while resizing, re-encoding
    and light overlays barely move it. Its cosine is a normalised cross-correlation of the two thumbnails.
    """
    T = np.asarray(thumbs, dtype=np.float32).reshape(len(thumbs), -1, 3)
    T = T - T.mean(axis=1, keepdims=True)
    T = T.reshape(len(thumbs), -1)
    norms = np.linalg.norm(T, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return T / norms


def image_hashes(img: Image.Image) -> tuple[int, int]:
    """(pHash, dHash) of one image as Python ints."""
    p, d, _ = HashPreparer()(img)
    return int(phash_from_gray(p[None])[0]), int(dhash_from_gray(d[None])[0])


def phash(img: Image.Image) -> int:
    return image_hashes(img)[0]


def dhash(img: Image.Image) -> int:
    return image_hashes(img)[1]


def hamming(a: np.ndarray | int, b: np.ndarray | int) -> np.ndarray:
    """Bitwise Hamming distance of uint64 hashes (broadcasting)."""
    x = np.bitwise_xor(np.asarray(a, dtype=np.uint64), np.asarray(b, dtype=np.uint64))
    return np.bitwise_count(x).astype(np.int64)


def _codes(h: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(h, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8))


def hash_pairs(hashes: np.ndarray, max_distance: int, block: int = 65536
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All pairs ``i < j`` with Hamming(hashes[i], hashes[j]) <= max_distance: ``(i, j, distance)``."""
    import faiss

    hashes = np.asarray(hashes, dtype=np.uint64)
    n = len(hashes)
    if n < 2 or max_distance < 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    codes = _codes(hashes)
    index = faiss.IndexBinaryFlat(64)
    index.add(codes)
    ii, jj, dd = [], [], []
    for s in range(0, n, block):
        lims, D, found = index.range_search(codes[s:s + block], int(max_distance) + 1)  # faiss: distance < radius
        counts = np.diff(lims).astype(np.int64)
        rows = np.repeat(np.arange(len(counts), dtype=np.int64) + s, counts)
        cols = found.astype(np.int64)
        keep = cols > rows
        ii.append(rows[keep])
        jj.append(cols[keep])
        dd.append(np.asarray(D, dtype=np.int64)[keep])
    return np.concatenate(ii), np.concatenate(jj), np.concatenate(dd)


class UnionFind:
    """Disjoint sets over 0..n-1 (union by size, path halving): duplicate groups are its connected components.

    Grouping is transitive by construction: if a~b and b~c, a, b and c end in one group even when a and c alone
    would not have been paired (a reviewer then sees the chain, with each pair's evidence).
    """

    def __init__(self, n: int):
        self.parent = np.arange(n, dtype=np.int64)
        self.size = np.ones(n, dtype=np.int64)

    def find(self, x: int) -> int:
        parent = self.parent
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = int(parent[x])
        return int(x)

    def union(self, a: int, b: int) -> int:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return ra
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]
        return ra

    def union_pairs(self, i: np.ndarray, j: np.ndarray) -> None:
        for a, b in zip(np.asarray(i).tolist(), np.asarray(j).tolist(), strict=True):
            self.union(a, b)

    def groups(self, min_size: int = 2) -> list[list[int]]:
        """Components with at least ``min_size`` members, largest first, members in ascending order."""
        roots = np.array([self.find(x) for x in range(len(self.parent))], dtype=np.int64)
        order = np.argsort(roots, kind="stable")
        bounds = np.flatnonzero(np.diff(roots[order])) + 1
        comps = [c.tolist() for c in np.split(order, bounds) if len(c) >= min_size]
        comps.sort(key=lambda c: (-len(c), c[0]))
        return comps


def connected_groups(n: int, i: np.ndarray, j: np.ndarray, min_size: int = 2) -> list[list[int]]:
    """Connected components of the graph on 0..n-1 with edges (i, j)."""
    uf = UnionFind(n)
    uf.union_pairs(i, j)
    return uf.groups(min_size)
