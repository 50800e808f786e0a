"""Near-duplicate detection on the pomological collection: precision/recall of the pairs found, by transformation.

Usage::

    nice -n 10 python bench/explore_duplicates.py [--data ../shared/data] [--copies 300] [--work /tmp/iconoscope-dups]
    nice -n 10 python bench/explore_duplicates.py --originals disjoint      # strictly held-out variant

What it does (README "Exploration" reports its output):

1. Draws 2 x ``--copies`` distinct originals from the 6,082 pomological sheets: a *tuning* set and an *evaluation*
   set. Each original gets five transformed copies, written as JPEG files under ``--work``: ``resize`` (to 45-75 %),
   ``jpeg`` (re-encoded at quality 15-35), ``crop`` (5 % of the width and of the height cut away, split at random
   between the two sides), ``rotate`` (1.5-4 degrees either way, paper-white fill) and ``watermark`` (a
   semi-transparent text overlay across the sheet).
2. Computes every signal the library uses (pHash, dHash, the 16x16 colour thumbnail descriptor) and embeds
   (``--backbone``, the shipped MobileNetV2 by default) every original and copy.
3. On the *tuning* collection (the 6,082 originals + the tuning copies) picks each rule's thresholds by F1 over all
   true pairs (original-copy and copy-copy); on the *evaluation* collection (the originals + the evaluation copies)
   reports, with those thresholds, precision over every pair found (a pair of two different originals is a false
   positive: the many same-layout sheets are the hard negatives), recall per transformation (original <-> copy
   pairs) and the share of originals whose five copies all end in its group after union-find. Rules: each signal
   alone, "near-exact" (thumbnail, or hash pair confirmed by thumbnail), "embedding margin", and their union (the
   shipped rule, also run through the library's ``pair_table`` to check it finds the same pairs).

The two splits share no copy and no copied original. By default both collections hold all 6,082 originals (as one
deployed collection would), so the original-original pairs, the hard negatives, are the same in both;
``--originals disjoint`` gives each collection its own half of the originals instead (its split's copied originals
plus half of the rest), so nothing scored on the evaluation collection was seen by the tuning (with half the
distractors, precision there is easier to get: report both).

Writes ``bench/results/explore_duplicates.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from iconoscope.explore.duplicates import Rules, embedding_candidates, pair_table  # noqa: E402
from iconoscope.explore.hashing import (  # noqa: E402
    HashPreparer,
    dhash_from_gray,
    phash_from_gray,
    thumb_descriptors,
)

TRANSFORMS = ("resize", "jpeg", "crop", "rotate", "watermark")
DEFAULT_BACKBONE = ("torchscript:{data}/weights/mobilenet_v2_quantized_torchscript/mobilenet_quantized.pt"
                    "?layer=pool")


def transform(img: Image.Image, kind: str, rng: np.random.Generator) -> tuple[Image.Image, int]:
    """One transformed copy and the JPEG quality to save it with."""
    w, h = img.size
    if kind == "resize":
        s = rng.uniform(0.45, 0.75)
        return img.resize((max(8, round(w * s)), max(8, round(h * s))), Image.Resampling.LANCZOS), 90
    if kind == "jpeg":
        return img.copy(), int(rng.integers(15, 36))
    if kind == "crop":
        dx, dy = round(w * 0.05), round(h * 0.05)
        left, top = int(rng.integers(0, dx + 1)), int(rng.integers(0, dy + 1))
        return img.crop((left, top, w - (dx - left), h - (dy - top))), 90
    if kind == "rotate":
        angle = float(rng.uniform(1.5, 4.0) * rng.choice([-1, 1]))
        return img.rotate(angle, resample=Image.Resampling.BICUBIC, fillcolor=(245, 242, 235)), 90
    if kind == "watermark":
        layer = Image.new("RGBA", img.size, (0, 0, 0, 0))
        d = ImageDraw.Draw(layer)
        font = ImageFont.load_default(size=max(10, w // 8))
        text = "© Iconoscope"
        tw = d.textlength(text, font=font)
        y = int(rng.uniform(0.3, 0.7) * h)
        d.text(((w - tw) / 2, y), text, font=font, fill=(255, 255, 255, 150), stroke_width=1,
               stroke_fill=(0, 0, 0, 110))
        return Image.alpha_composite(img.convert("RGBA"), layer).convert("RGB"), 90
    raise ValueError(kind)


def make_copies(originals: list[Path], work: Path, seed: int) -> list[tuple[Path, int, str]]:
    """(copy path, index of its original, transformation) for every original x transformation (cached)."""
    out = []
    rng = np.random.default_rng(seed)
    work.mkdir(parents=True, exist_ok=True)
    for k, src in enumerate(originals):
        img = None
        for t in TRANSFORMS:
            dst = work / f"{src.stem}__{t}.jpg"
            copy, quality = None, 90
            if not dst.exists():
                img = img or Image.open(src).convert("RGB")
                copy, quality = transform(img, t, rng)
                copy.save(dst, "JPEG", quality=quality)
            else:  # keep the random stream aligned with a fresh run
                transform(Image.new("RGB", (16, 16)), t, rng)
            out.append((dst, k, t))
    return out


def hashes_of(paths: list[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """pHash, dHash and thumbnail descriptors, computed by the library's own preparer."""
    prep = HashPreparer()
    P, D, T = [], [], []
    for p in paths:
        a, b, t = prep(Image.open(p).convert("RGB"))
        P.append(a)
        D.append(b)
        T.append(t)
    return phash_from_gray(np.stack(P)), dhash_from_gray(np.stack(D)), thumb_descriptors(np.stack(T))


def embed(paths: list[Path], spec: str, cache: Path) -> np.ndarray:
    from tqdm import tqdm

    from iconoscope.learn.backbones import get_backbone

    if cache.exists():
        X = np.load(cache)
        if len(X) == len(paths):
            return X
    bb = get_backbone(spec)
    out = []
    for s in tqdm(range(0, len(paths), 64), desc="embed", unit="batch"):
        out.append(bb.embed([Image.open(p).convert("RGB") for p in paths[s:s + 64]]))
    X = np.concatenate(out).astype(np.float32)
    np.save(cache, X)
    return X


class Collection:
    """One collection (originals + one split's copies) with every pairwise signal precomputed (upper triangle)."""

    def __init__(self, n_orig: int, copies: list[tuple[int, str]], ph: np.ndarray, dh: np.ndarray, th: np.ndarray,
                 X: np.ndarray):
        from iconoscope.explore.hashing import hamming
        from iconoscope.explore.index import normalize

        self.n_orig, self.copies = n_orig, copies
        self.n = n = n_orig + len(copies)
        self.ph, self.dh, self.th, self.X = ph, dh, th, X
        self.origin = np.concatenate([np.arange(n_orig), np.array([c[0] for c in copies], dtype=np.int64)])
        self.i, self.j = np.triu_indices(n, 1)
        dp, dd = np.empty((n, n), np.uint8), np.empty((n, n), np.uint8)
        for s in range(0, n, 512):  # row blocks keep the uint64 temporaries small
            dp[s:s + 512] = hamming(ph[s:s + 512, None], ph[None, :])
            dd[s:s + 512] = hamming(dh[s:s + 512, None], dh[None, :])
        self.dp, self.dd = dp[self.i, self.j], dd[self.i, self.j]
        del dp, dd
        self.tc = (th @ th.T)[self.i, self.j]  # thumbnail cosine
        Xc = normalize(X - X.mean(axis=0))
        self.cosc = (Xc @ Xc.T)[self.i, self.j]  # centred embedding cosine, every pair
        del Xc
        # the library's embedding candidates: each image's 15 nearest neighbours, with their margins
        ei, ej, ecos, emargin = embedding_candidates(X)
        self.margin = np.full(len(self.i), -np.inf, np.float32)
        self.ecos = np.full(len(self.i), -np.inf, np.float32)
        self.margin[self.pos(ei, ej)] = emargin
        self.ecos[self.pos(ei, ej)] = ecos
        self.true = self.origin[self.i] == self.origin[self.j]
        self.both_orig = self.j < n_orig
        per = len(TRANSFORMS)
        self.n_true = len(copies) + (len(copies) // per) * per * (per - 1) // 2
        assert int(self.true.sum()) == self.n_true

    def pos(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Index of pair (a, b), a < b, in the row-major upper triangle."""
        a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
        return a * self.n - a * (a + 1) // 2 + (b - a - 1)

    def mask(self, rule: str, r: Rules) -> np.ndarray:
        hashed = (self.dp <= r.phash_max) & (self.dd <= r.dhash_max)
        near_exact = (self.tc >= r.thumb_min) | (hashed & (self.tc >= r.thumb_verify))
        emb = (self.margin >= r.margin_min) & (self.ecos >= r.cosine_min)
        masks = {"phash": lambda: self.dp <= r.phash_max, "dhash": lambda: self.dd <= r.dhash_max,
                 "hash": lambda: hashed, "thumbnail": lambda: self.tc >= r.thumb_min, "near-exact": lambda: near_exact,
                 "embedding cosine": lambda: self.cosc >= r.cosine_min, "embedding margin": lambda: emb,
                 "all (shipped rule)": lambda: near_exact | emb}
        return masks[rule]()

    def f1(self, found: np.ndarray) -> float:
        tp = int(np.count_nonzero(found & self.true))
        nf = int(np.count_nonzero(found))
        p, rc = (tp / nf if nf else 1.0), tp / self.n_true
        return 2 * p * rc / (p + rc) if p + rc else 0.0

    def score(self, rule: str, r: Rules) -> dict:
        from scipy.sparse import coo_matrix
        from scipy.sparse.csgraph import connected_components

        found = self.mask(rule, r)
        tp = int((found & self.true).sum())
        nf = int(found.sum())
        used = {"phash": ("phash_max",), "dhash": ("dhash_max",), "hash": ("phash_max", "dhash_max"),
                "thumbnail": ("thumb_min",), "near-exact": ("phash_max", "dhash_max", "thumb_min", "thumb_verify"),
                "embedding cosine": ("cosine_min",), "embedding margin": ("margin_min", "cosine_min"),
                "all (shipped rule)": tuple(asdict(r))}[rule]
        res = {"rule": rule, "thresholds": {k: getattr(r, k) for k in used}, "pairs_found": nf,
               "true_pairs_found": tp, "false_pairs": nf - tp,
               "false_pairs_between_originals": int((found & ~self.true & self.both_orig).sum()),
               "precision": tp / nf if nf else 1.0, "recall_all_pairs": tp / self.n_true, "f1": self.f1(found)}
        copy_rows = np.arange(self.n_orig, self.n)
        kinds = np.array([k for _, k in self.copies])
        hit = found[self.pos(self.origin[copy_rows], copy_rows)]
        for t in TRANSFORMS:
            res[f"recall_{t}"] = float(hit[kinds == t].mean())
        res["recall_original_copy"] = float(hit.mean())
        fi, fj = self.i[found], self.j[found]
        graph = coo_matrix((np.ones(len(fi)), (fi, fj)), shape=(self.n, self.n))
        _, comp = connected_components(graph, directed=False)
        same = comp[copy_rows] == comp[self.origin[copy_rows]]
        res["originals_with_all_copies_grouped"] = float(same.reshape(-1, len(TRANSFORMS)).all(axis=1).mean())
        res["largest_group"] = int(np.bincount(comp).max())
        return res

    def shipped(self, r: Rules) -> np.ndarray:
        """The library's own pair finding (pair_table over hashes, thumbnails and embedding candidates)."""
        emb = embedding_candidates(self.X)
        pairs = pair_table(self.n, self.ph, self.dh, self.th, emb, rules=r)
        found = np.zeros(len(self.i), bool)
        if pairs:
            ij = np.array(list(pairs), dtype=np.int64)
            found[self.pos(ij[:, 0], ij[:, 1])] = True
        return found


def tune(c: Collection) -> dict[str, Rules]:
    """Per rule, the thresholds with the best F1 on the tuning collection (the shipped rule last, on top of the
    best near-exact thresholds)."""
    best: dict[str, tuple[float, Rules]] = {}

    def consider(rule: str, r: Rules) -> None:
        f = c.f1(c.mask(rule, r))
        if rule not in best or f > best[rule][0]:
            best[rule] = (f, r)

    grid = np.round(np.arange(0.90, 0.996, 0.005), 3)
    for p in range(2, 25, 2):
        consider("phash", Rules(phash_max=p))
        consider("dhash", Rules(dhash_max=p))
        for d in range(2, 25, 2):
            consider("hash", Rules(phash_max=p, dhash_max=d))
    for t in grid:
        consider("thumbnail", Rules(thumb_min=float(t)))
    for p, d in ((4, 6), (6, 8), (8, 10), (10, 12), (12, 14), (14, 16)):
        for t in grid:
            for v in np.round(np.arange(0.5, 0.951, 0.05), 2):
                consider("near-exact", Rules(phash_max=p, dhash_max=d, thumb_min=float(t), thumb_verify=float(v)))
    for cm in np.round(np.arange(0.3, 0.96, 0.01), 2):
        consider("embedding cosine", Rules(cosine_min=float(cm)))
    ne = best["near-exact"][1]
    for m in np.round(np.arange(0.0, 0.41, 0.01), 2):
        for cm in (-1.0, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8):
            consider("embedding margin", Rules(margin_min=float(m), cosine_min=cm))
            consider("all (shipped rule)", replace(ne, margin_min=float(m), cosine_min=cm))
    return {rule: r for rule, (_, r) in best.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    ap.add_argument("--copies", type=int, default=300, help="originals per split (tuning, evaluation)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/iconoscope-dups"))
    ap.add_argument("--backbone", default=None, help="embedding backbone spec (default: the shipped MobileNetV2)")
    ap.add_argument("--originals", choices=("shared", "disjoint"), default="shared",
                    help="shared: both collections hold all 6,082 originals (the deployed case: one collection; "
                    "the copies and their originals differ between splits, the original-original hard negatives do "
                    "not); disjoint: each holds its own half of the originals, so nothing the tuning saw is scored")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None,
                    help="default: bench/results/explore_duplicates.json (-disjoint.json with --originals disjoint)")
    args = ap.parse_args()
    if args.out is None:
        suffix = "" if args.originals == "shared" else "-disjoint"
        args.out = ROOT / "bench" / "results" / f"explore_duplicates{suffix}.json"
    spec = args.backbone or DEFAULT_BACKBONE.format(data=args.data)
    pom = args.data / "pomological"
    with open(pom / "records.csv", newline="", encoding="utf-8") as f:
        originals = [pom / "images" / r["image"] for r in csv.DictReader(f)]
    n_orig = len(originals)
    rng = np.random.default_rng(args.seed)
    chosen = rng.choice(n_orig, 2 * args.copies, replace=False)
    splits = {"tuning": chosen[:args.copies], "evaluation": chosen[args.copies:]}
    t0 = time.perf_counter()
    copies = {name: make_copies([originals[i] for i in idx], args.work / name, args.seed + k)
              for k, (name, idx) in enumerate(splits.items())}
    all_paths = originals + [p for name in splits for p, _, _ in copies[name]]
    t1 = time.perf_counter()
    ph, dh, th = hashes_of(all_paths)
    t_hash = time.perf_counter() - t1
    from iconoscope.workspace import slug

    t1 = time.perf_counter()
    X = embed(all_paths, spec, args.work / f"emb-{slug(spec)[-60:]}-{len(all_paths)}.npy")
    t_embed = time.perf_counter() - t1
    results: dict = {"backbone": spec, "originals": n_orig, "copies_per_split": args.copies,
                     "transforms": list(TRANSFORMS), "seconds_hash": round(t_hash, 1),
                     "seconds_embed_or_cache": round(t_embed, 1)}

    # which originals each collection holds: all of them (shared) or disjoint halves, each split's chosen originals
    # in its own half (then not even the hard negatives, the original-original pairs, are seen by the tuning)
    if args.originals == "shared":
        members = {name: np.arange(n_orig) for name in splits}
    else:
        rest = np.setdiff1d(np.arange(n_orig), chosen)
        rest = rest[np.random.default_rng(args.seed + 100).permutation(len(rest))]
        half = len(rest) // 2
        members = {"tuning": np.sort(np.r_[splits["tuning"], rest[:half]]),
                   "evaluation": np.sort(np.r_[splits["evaluation"], rest[half:]])}
    results["originals_mode"] = args.originals
    results["originals_per_collection"] = {name: len(m) for name, m in members.items()}

    def split_view(name: str) -> tuple[int, list[tuple[int, str]], np.ndarray]:
        start = n_orig + (0 if name == "tuning" else len(copies["tuning"]))
        orig = members[name]
        rows = np.r_[orig, np.arange(start, start + len(copies[name]))]
        where = {int(o): k for k, o in enumerate(orig)}  # original row -> its position in this collection
        cp = [(where[int(splits[name][k])], t) for _, k, t in copies[name]]
        return len(orig), cp, rows

    nt, cp_t, rows_t = split_view("tuning")
    tuned = tune(Collection(nt, cp_t, ph[rows_t], dh[rows_t], th[rows_t], X[rows_t]))
    results["tuned_on_tuning_split"] = {rule: asdict(r) for rule, r in tuned.items()}
    ne, cp_e, rows_e = split_view("evaluation")
    ev = Collection(ne, cp_e, ph[rows_e], dh[rows_e], th[rows_e], X[rows_e])
    evals = {rule: ev.score(rule, r) for rule, r in tuned.items()}
    lib = ev.shipped(tuned["all (shipped rule)"])
    evals["all (shipped rule)"]["library_pairs_differing"] = int(
        (lib != ev.mask("all (shipped rule)", tuned["all (shipped rule)"])).sum())  # float32 ties at a threshold
    evals["shipped defaults"] = ev.score("all (shipped rule)", Rules())
    evals["shipped defaults"]["rule"] = "shipped defaults"
    results["evaluation"] = evals
    results["seconds_total"] = round(time.perf_counter() - t0, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")
    cols = ["rule", "thresholds", "pairs", "precision", *[f"R {t}" for t in TRANSFORMS], "R orig-copy", "R all pairs",
            "all 5 copies grouped"]
    print(f"backbone {spec}; evaluation collection: {ne} originals ({args.originals}) + {len(cp_e)} copies of "
          f"{args.copies} held-out originals; thresholds tuned on {nt} originals + {len(cp_t)} other copies")
    print(" | ".join(cols))
    for r in evals.values():
        th_text = ", ".join(f"{k}={v}" for k, v in r["thresholds"].items())
        print(" | ".join([r["rule"], th_text, str(r["pairs_found"]), f"{r['precision']:.3f}",
                          *[f"{r[f'recall_{t}']:.3f}" for t in TRANSFORMS], f"{r['recall_original_copy']:.3f}",
                          f"{r['recall_all_pairs']:.3f}", f"{r['originals_with_all_copies_grouped']:.3f}"]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
