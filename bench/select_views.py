"""Round 6 of the pomological feature selection: a second scale and mirrored sheets, on the development protocol.

Usage::

    nice -n 10 python bench/select_views.py [--work /tmp/iconoscope-learn-pom] [--candidates current,scale320,flip]

Row (j)'s 5-fold CV mAP is 0.9687, under the issue's 0.97. Its gains came from more views of the sheet (4 -> 6
views: +0.0013 on the development folds, round 4). Two kinds of view were never tried, and both are standard
test-time augmentations of a CNN's features:

* ``scale320``: (j) + MobileNetV2's layers of (j) on the ``full`` and ``top`` views at 320 px instead of 224. The
  sheets are about 126 x 192 px, so at 224 px a fruit spans a fixed share of the network's receptive fields; at
  320 px the same stages see it 1.4x larger, so its texture and small parts (drupelets, a persimmon's calyx) reach
  the mid-level channels at another scale. (+3,200 dimensions.)
* ``flip``: (j) + both networks' layers of (j) on the mirrored sheet (``flip`` view): ImageNet features are not
  mirror-invariant, and a mirrored fruit is the same fruit. (+2,752 dimensions.)

Protocol and rule, fixed and committed before either candidate ran (session 6), the same as round 5
(``bench/select_probe.py``): the training part of outer fold 0 (4,377 images), 3 grouped folds (seed 1); in each, C
is chosen from (j)'s grid by inner CV on the training rows only (``train.select_and_fit``) and the held-out fold is
scored. The candidate with the best mean development mAP is declared as a project and cross-validated once on the
5 outer folds only if it beats ``current`` (row j, re-run here) by at least 0.001 and in at least 2 of the 3 folds;
otherwise row (j) stays. Both candidates are projects of ``examples/pomological/iconoscope.toml``
(``genera_multilayer_scale320``, ``genera_multilayer_flip``), so the winner's 5-fold CV is
``bench/learn_pomological.py --rows NAME``.

Prints a table and writes ``bench/results/select_views.json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

CANDIDATES = {"current": "genera_multilayer_6views", "scale320": "genera_multilayer_scale320",
              "flip": "genera_multilayer_flip"}
MARGIN = 0.001


def main() -> None:
    from select_ensemble import dev_folds
    from select_probe import dev_arguments, dev_result, print_verdict

    from iconoscope.learn.datasets import load_labels
    from iconoscope.learn.embed import embed_images
    from iconoscope.workspace import Workspace

    args = dev_arguments(__doc__, CANDIDATES, "select_views.json")
    results: dict[str, Any] = json.loads(args.out.read_text(encoding="utf-8")) if args.out.exists() else {}
    with Workspace.open(args.work) as ws:
        dev, folds = dev_folds(load_labels(ws, CANDIDATES["current"]), args.dev_fold, args.inner, args.seed)
        for name in [c for c in args.candidates.split(",") if c]:
            project = CANDIDATES[name]
            t0 = time.perf_counter()
            # every ingested image, as `iconoscope train` would: the winner's 5-fold CV then embeds nothing new
            embed_images(ws, ws.config.classifier(project).backbone)
            results[name] = {"project": project, "embed_s": round(time.perf_counter() - t0, 1),
                             **dev_result(ws, project, dev, folds, args.seed)}
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1, default=float), encoding="utf-8")
    print_verdict(results, len(CANDIDATES), len(folds), MARGIN)


if __name__ == "__main__":
    main()
