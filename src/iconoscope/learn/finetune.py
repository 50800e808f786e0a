"""The ``finetune`` head: train ``builtin:smallcnn`` end to end on the images (the weight-free path), an ``hf:``
model end to end from its pretrained weights (a new linear layer on its ``layer=`` output; saved with
``save_pretrained``), or an ImageNet ``torchscript:`` network, end to end on the images or its top on stored feature
maps (:mod:`iconoscope.learn.finetune_top`).

The seeds' recipe: sigmoid + BCE (positives weighted by negatives/positives per class against imbalance), Adam at
lr 1e-3, dropout 0.5 before the classifier; light augmentation (horizontal flips, small shifts). The learning-rate
schedule is ``schedule = "step"`` (the seeds' step decay: x0.1 after 40% and 80% of the epochs) or ``"onecycle"``
(the default: warm-up to ``lr`` then cosine annealing, stepped per batch). The seeds fine-tuned ImageNet weights
for thousands of steps; trained from scratch on a few hundred images (a few steps per epoch), step decay cuts the
rate before the network has learnt anything. Measured on the demo collection (312 images, 64 px, batch 16, 40
epochs, one 20% hold-out): step decay at lr 1e-3 mAP 0.785, one-cycle at lr 3e-3 mAP 0.967, same cost.
Images are decoded once (in worker processes) into a uint8 cache at the network's input size, so an epoch costs only
the network.

Protocol: in each outer fold a grouped 15% of the training part is held out to pick the epoch (best mAP) and to
calibrate the thresholds; the outer test part is scored by that epoch's weights. The final network is trained on
every image for the median best epoch count. After training, the network *is* a backbone: the classifier records
``builtin:smallcnn?...&weights=models/NAME/smallcnn-vN.pt`` as its backbone and a linear head on its features, so
``predict``, the enrichment and the web app use it like any other classifier.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError, IconoscopeError
from iconoscope.learn.backbones.base import Preprocess
from iconoscope.learn.datasets import LabelSet
from iconoscope.learn.kfold import fold_indices, grouped_folds
from iconoscope.learn.metrics import best_f1_thresholds, evaluate_scores
from iconoscope.learn.train import (
    SUMMARY_KEYS,
    TrainReport,
    _mean_ap,
    _next_version,
    _summarise,
    write_oof,
    write_thresholds,
)

DEFAULTS: dict[str, Any] = {"epochs": 30, "lr": 1e-3, "batch_size": 64, "dropout": 0.5, "weight_decay": 1e-4,
                            "class_weight": "balanced", "val_share": 0.15, "shift": 8, "schedule": "onecycle",
                            "device": "cpu"}
SCHEDULES = ("onecycle", "step")


@dataclass(frozen=True)
class Uint8Preparer:
    """Decode worker: image -> uint8 ``[H, W, 3]`` at the network's input size (normalised later, in torch)."""

    preprocess: Preprocess

    @property
    def min_side(self) -> int:
        return max(self.preprocess.size)

    def __call__(self, img: Any) -> np.ndarray:
        return np.asarray(self.preprocess.resized(img.convert("RGB")), dtype=np.uint8)


class FeatureLinear:
    """The trained network's last layer as a head on its pooled features (what ``predict_proba`` applies)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray):
        self.coef_ = np.asarray(coef, np.float32)
        self.intercept_ = np.asarray(intercept, np.float32)

    @classmethod
    def from_linear(cls, linear: Any, views: int = 1) -> FeatureLinear:
        """A trained ``torch.nn.Linear`` as a head. On ``views`` concatenated views its weights are repeated per view
        and divided by their number: the logits are then the mean of the views' logits."""
        w = linear.weight.detach().numpy()
        return cls(np.tile(w, (1, views)) / views if views > 1 else w, linear.bias.detach().numpy())

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        z = np.asarray(X, np.float32) @ self.coef_.T + self.intercept_
        return 1.0 / (1.0 + np.exp(-np.clip(z, -60, 60)))


def resolve_device(value: Any, name: str) -> str:
    """``device = "cpu" | "cuda" | "cuda:N" | "mps" | "auto"`` -> a torch device string, or a ConfigError that
    names the classifier. ``auto`` takes a CUDA GPU when torch sees one. The default stays ``cpu``: a seeded run
    on a GPU gives a different (not worse) model, since its kernels round differently."""
    import torch

    v = str(value).strip().lower()
    if v == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    kind, _, index = v.partition(":")
    if kind not in ("cpu", "cuda", "mps") or (index and not index.isdigit()) or (index and kind != "cuda"):
        raise ConfigError(f"classifier '{name}': device = {value!r}: expected cpu, cuda, cuda:N, mps or auto")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"classifier '{name}': device = {value!r}, but this torch sees no CUDA GPU "
                          f"(torch {torch.__version__}); use device = \"auto\" or \"cpu\"")
    if kind == "cuda" and index and int(index) >= torch.cuda.device_count():
        raise ConfigError(f"classifier '{name}': device = {value!r}, but torch sees "
                          f"{torch.cuda.device_count()} CUDA GPU(s)")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"classifier '{name}': device = {value!r}, but this torch has no MPS backend")
    return v


def decode_images(labels: LabelSet, pre: Preprocess, workers: int | None = None,
                  show_progress: bool = True) -> tuple[LabelSet, np.ndarray, list[tuple[str, str]]]:
    """(the rows whose image could be read, their uint8 ``[N, H, W, 3]`` images, (image, reason) of the others)."""
    from tqdm import tqdm

    from iconoscope.learn.embed import default_workers, prepared_stream

    h, w = pre.size
    out = np.zeros((len(labels), h, w, 3), np.uint8)
    ok = np.zeros(len(labels), bool)
    fails: list[tuple[str, str]] = []
    stream = prepared_stream(Uint8Preparer(pre), labels.locations, default_workers() if workers is None else workers)
    for i, arr, reason in tqdm(stream, total=len(labels), desc="decode", unit="img", disable=not show_progress):
        if arr is None:
            fails.append((labels.images[i], reason or "unreadable"))
        else:
            out[i] = arr
            ok[i] = True
    return labels.subset(ok), out[ok], fails


class _Net:
    """The training loop (Adam, BCE with class weights, schedule, best epoch on a validation split); subclasses say
    how a batch of their data becomes logits: pixels through a SmallCNN, or stored feature maps through a fine-tuned
    top (:mod:`iconoscope.learn.finetune_top`)."""

    def __init__(self, model: Any, n_classes: int, p: dict[str, Any], seed: int):
        import torch

        from iconoscope.learn.backbones.runtime import torch_threads, training_threads

        torch_threads(training_threads())
        self.torch = torch
        self.model = model
        self.n_classes = n_classes
        self.p = p
        self.seed = seed
        self.device = torch.device(resolve_device(p.get("device", "cpu"), "(fine-tuning)"))

    def to_model(self, x: Any) -> Any:
        """A CPU tensor built from numpy -> the model's device (where it is now: training runs on ``device``, and
        the trained network comes back to the CPU to be saved, exported and scored)."""
        return x.to(next(self.model.parameters()).device, non_blocking=True)

    def train_logits(self, data: np.ndarray, g: Any) -> Any:
        raise NotImplementedError

    def eval_logits(self, data: np.ndarray) -> Any:
        raise NotImplementedError

    def scores(self, data: np.ndarray, batch: int = 256) -> np.ndarray:
        torch = self.torch
        self.model.eval()
        outs = []
        with torch.inference_mode():
            for i in range(0, len(data), batch):
                outs.append(torch.sigmoid(self.eval_logits(data[i:i + batch])).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.n_classes), np.float32)

    def fit(self, data: np.ndarray, Y: np.ndarray, epochs: int, val: tuple[np.ndarray, np.ndarray] | None = None,
            progress: Any = None) -> tuple[int, dict[str, Any] | None]:
        """Train; with ``val``, keep the weights of the best-mAP epoch. Returns (best epoch, best state)."""
        torch = self.torch
        F = torch.nn.functional
        g = torch.Generator().manual_seed(self.seed)  # on the CPU: shuffles and augmentations are device-independent
        torch.manual_seed(self.seed)
        self.model.to(self.device)
        Yt = torch.from_numpy(Y.astype(np.float32))
        pos = Yt.sum(0)
        pw = ((len(Yt) - pos) / pos.clamp(min=1)).clamp(max=50.0) if self.p["class_weight"] == "balanced" else None
        Yt = Yt.to(self.device)
        pw = pw.to(self.device) if pw is not None else None
        params = [q for q in self.model.parameters() if q.requires_grad]
        opt = torch.optim.Adam(params, lr=float(self.p["lr"]), weight_decay=float(self.p["weight_decay"]))
        bs = int(self.p["batch_size"])
        per_epoch = max(1, sum(1 for i in range(0, len(data), bs) if len(data) - i >= 2))
        if self.p["schedule"] == "onecycle":
            sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=float(self.p["lr"]),
                                                        total_steps=epochs * per_epoch)
        else:  # step decay, stepped per batch so that short runs decay at the same share of training
            sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, int(epochs * 0.4) * per_epoch), gamma=0.1)
        best = (-1.0, epochs, None)
        for epoch in range(1, epochs + 1):
            self.model.train()
            perm = torch.randperm(len(data), generator=g).numpy()
            for i in range(0, len(perm), bs):
                idx = perm[i:i + bs]
                if len(idx) < 2:
                    continue
                opt.zero_grad()
                rows = torch.from_numpy(idx).to(self.device)
                loss = F.binary_cross_entropy_with_logits(self.train_logits(data[idx], g), Yt[rows], pos_weight=pw)
                loss.backward()
                opt.step()
                sched.step()
            if val is not None:
                m = _mean_ap(val[1], self.scores(val[0]))
                if m > best[0]:
                    best = (m, epoch, {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()})
            if progress is not None:
                progress.update(1)
        self.model.to("cpu")
        if val is not None and best[2] is not None:
            self.model.load_state_dict(best[2])
        return best[1], best[2]


class _PixelNet(_Net):
    """A network trained on uint8 NHWC images, normalised on the fly, flips and shifts as augmentation: a SmallCNN
    from scratch, or a transformers model with a new linear layer (end-to-end fine-tuning)."""

    def __init__(self, pre: Preprocess, model: Any, n_classes: int, p: dict[str, Any], seed: int):
        import torch

        super().__init__(model, n_classes, p, seed)
        scale = np.float32(pre.scale)
        self.mean = torch.tensor(np.asarray(pre.mean, np.float32) / scale).view(1, 3, 1, 1)
        self.std = torch.tensor(np.asarray(pre.std, np.float32) / scale).view(1, 3, 1, 1)
        self.bgr = pre.channels == "BGR"

    def _tensor(self, imgs: np.ndarray, augment: bool, g: Any = None) -> Any:
        torch = self.torch
        x = torch.from_numpy(imgs).permute(0, 3, 1, 2).float()
        if self.bgr:
            x = x.flip(1)
        if augment:
            flip = torch.rand(len(x), generator=g) < 0.5
            x[flip] = x[flip].flip(3)
            s = int(self.p["shift"])
            if s:
                pad = torch.nn.functional.pad(x, (s, s, s, s), mode="replicate")
                dx, dy = torch.randint(0, 2 * s + 1, (2,), generator=g).tolist()
                x = pad[:, :, dy:dy + x.shape[2], dx:dx + x.shape[3]]
        x = self.to_model(x)
        return (x - self.mean.to(x.device)) / self.std.to(x.device)

    def train_logits(self, data: np.ndarray, g: Any) -> Any:
        return self.model(self._tensor(data, True, g))

    def eval_logits(self, data: np.ndarray) -> Any:
        return self.model(self._tensor(data, False))


def _trainable_kind(spec: str, name: str) -> str:
    """The spec's kind when ``finetune`` can train it: ``builtin`` (smallcnn, from scratch on pixels), ``hf`` (end to
    end on pixels) or ``torchscript`` (end to end on pixels, or its top on stored maps); anything else is a
    configuration error that says what to use instead."""
    from iconoscope.learn.backbones.spec import parse_spec

    parsed = parse_spec(spec)
    if not (parsed.kind == "builtin" and parsed.target == "smallcnn") and parsed.kind not in ("torchscript", "hf"):
        raise ConfigError(f"classifier '{name}': head = 'finetune' trains builtin:smallcnn, an hf: model or a "
                          f"torchscript: network end to end, or the top of a torchscript: network "
                          f"(?layer=VALUE&pool=none); backbone {spec!r} is not trainable here (use head = 'linear' "
                          "or 'mlp')")
    if parsed.kind in ("builtin", "hf") and parsed.views() != ("full",):
        raise ConfigError(f"classifier '{name}': head = 'finetune' trains {parsed.kind}: backbones on whole images; "
                          f"drop views= from {spec!r}")
    return parsed.kind


def _save_smallcnn(ws: Any, net: _Net, spec: str, name: str, version: int, pre: Preprocess,
                   widths: tuple[int, ...]) -> tuple[str, FeatureLinear]:
    """Save the trained SmallCNN's weights; returns (its backbone spec, its last layer as a head)."""
    import torch

    from iconoscope.workspace import slug

    weights_rel = f"models/{slug(name)}/smallcnn-v{version}.pt"
    torch.save({"state_dict": net.model.state_dict(), "meta": {"widths": list(widths),
                                                                "preprocess": pre.to_dict()}},
               ws.root / weights_rel)
    sep = "&" if "?" in spec else "?"
    return f"{spec}{sep}weights={weights_rel}", FeatureLinear.from_linear(net.model.head[-1])


def _hf_network(base: Any, n_classes: int, p: dict[str, Any], seed: int) -> Any:
    """A fresh copy of the transformers model (its pretrained weights, for each fold) giving the backbone's layer,
    then dropout and a new linear layer."""
    import torch

    from iconoscope.learn.backbones.hf import LayerOutput

    torch.manual_seed(seed)
    return torch.nn.Sequential(LayerOutput(copy.deepcopy(base.model), base.layer_name),
                               torch.nn.Dropout(float(p["dropout"])), torch.nn.Linear(base.feature_dim, n_classes))


def _save_hf(ws: Any, net: _Net, base: Any, name: str, version: int) -> tuple[str, FeatureLinear]:
    """Save the fine-tuned transformers model with its image processor config (``save_pretrained``); returns (its
    backbone spec, the new linear layer as a head)."""
    from iconoscope.learn.backbones.spec import format_spec, parse_spec
    from iconoscope.workspace import slug

    rel = f"models/{slug(name)}/finetuned-v{version}"
    net.model[0].model.save_pretrained(ws.root / rel)
    (ws.root / rel / "preprocessor_config.json").write_text(json.dumps(base.processor_config, indent=1),
                                                            encoding="utf-8")
    return (format_spec("hf", rel, {**parse_spec(base.spec).options, "layer": base.layer_name}),
            FeatureLinear.from_linear(net.model[-1]))


def _frozen_note(kind: str, setup: Any) -> str:
    """What of a torchscript network was trained, for the model card's protocol."""
    if kind != "torchscript":
        return ""
    if setup.end_to_end:
        return "; the whole network is fine-tuned end to end from the file's weights"
    return "; layers before the backbone's layer= are frozen (ImageNet weights), the rest is fine-tuned from them"


@dataclass
class FoldFit:
    """What one training part gave: the test part's scores, thresholds and best epoch from the validation split."""

    scores: np.ndarray
    thresholds: np.ndarray
    epoch: int
    n_fit: int
    n_val: int


def fit_fold(make: Any, data: np.ndarray, Y: np.ndarray, records: list[str], tr: np.ndarray, te: np.ndarray,
             epochs: int, val_k: int, seed: int, progress: Any = None) -> FoldFit:
    """One fold of the protocol: a grouped ``1/val_k`` of the training rows ``tr`` picks the epoch (best mAP) and
    calibrates the thresholds; the network of that epoch scores the test rows ``te``. Shared by ``train`` and the
    development protocols of ``bench/`` so that both run exactly the same recipe."""
    inner = grouped_folds(Y[tr], [records[i] for i in tr], val_k, seed=seed + 1)
    fit_i, val_i = tr[inner != 0], tr[inner == 0]
    net = make()
    best_epoch, _ = net.fit(data[fit_i], Y[fit_i], epochs, val=(data[val_i], Y[val_i]), progress=progress)
    th = best_f1_thresholds(Y[val_i], net.scores(data[val_i]))
    return FoldFit(net.scores(data[te]), th, best_epoch, len(fit_i), len(val_i))


def train_finetune(ws: Any, name: str, labels: LabelSet, k: int, seed: int, params: dict[str, Any],
                   show_progress: bool = True) -> TrainReport:
    """Cross-validate and train a SmallCNN, an hf: or a torchscript: network end to end, or an ImageNet network's top
    (see module doc)."""
    from tqdm import tqdm

    from iconoscope.learn.backbones import get_backbone
    from iconoscope.learn.card import write_card
    from iconoscope.learn.classifier import save_model

    cfg = ws.config.classifier(name)
    spec = cfg.backbone
    kind = _trainable_kind(spec, name)
    p = {**DEFAULTS, **{kk: v for kk, v in params.items() if kk in DEFAULTS}}
    epochs = int(p["epochs"])
    if p["schedule"] not in SCHEDULES:
        raise ConfigError(f"classifier '{name}': schedule = {p['schedule']!r}: expected one of {', '.join(SCHEDULES)}")
    p["device"] = resolve_device(p["device"], name)
    t0 = time.perf_counter()
    n = len(labels.categories)
    setup: Any = None
    if kind == "torchscript":
        from iconoscope.learn.finetune_top import top_network

        labels, data, left_out, make, setup = top_network(ws, name, spec, labels, p, seed, show_progress)
    else:
        base = get_backbone(spec, ws=ws, cache=False)
        pre = base.preprocess
        labels, data, left_out = decode_images(labels, pre, show_progress=show_progress)

        def make() -> _Net:
            if kind == "hf":
                return _PixelNet(pre, _hf_network(base, n, p, seed), n, p, seed)
            from iconoscope.learn.backbones.smallcnn import build_smallcnn

            return _PixelNet(pre, build_smallcnn(tuple(base.model.widths), num_classes=n, dropout=float(p["dropout"]),
                                                 seed=seed), n, p, seed)
    if len(set(labels.records)) < k:
        raise ConfigError(f"classifier '{name}': {len(set(labels.records))} readable records cannot fill {k} folds")
    Y = labels.Y
    fold_of = grouped_folds(Y, labels.records, k, seed=seed)
    S = np.zeros(Y.shape, np.float32)
    per_fold, fold_th, best_epochs = [], [], []
    val_k = max(2, round(1 / float(p["val_share"])))
    from iconoscope.learn.foldcache import FoldCache

    cache = FoldCache(ws.model_dir(name), {"head": "finetune", "params": p, "backbone": spec, "k": k, "seed": seed,
                                           "labels": labels.sha256()})
    with tqdm(total=epochs * (k + 1), desc=f"train {name}", unit="epoch", disable=not show_progress) as bar:
        for f, (tr, te) in enumerate(fold_indices(fold_of)):
            done = cache.load(f)
            if done is None:
                res = fit_fold(make, data, Y, labels.records, tr, te, epochs, val_k, seed, progress=bar)
                m = evaluate_scores(Y[te], res.scores, res.thresholds)
                done = {"scores": res.scores, "thresholds": res.thresholds.tolist(), "epochs": res.epoch,
                        "fold": {"fold": f, "n_train": res.n_fit, "n_val": res.n_val, "n_test": len(te),
                                 "params": {"epochs": res.epoch},
                                 **{kk: m[kk] for kk in (*SUMMARY_KEYS, "per_class_ap")}}}
                cache.save(f, done)
            else:
                bar.update(epochs)
            S[te] = done["scores"]
            per_fold.append(done["fold"])
            fold_th.append(done["thresholds"])
            best_epochs.append(done["epochs"])
        final_epochs = int(np.median(best_epochs))
        net = make()
        net.fit(data, Y, final_epochs, progress=bar)
    if not np.isfinite(S).all():
        raise IconoscopeError(f"classifier '{name}': training diverged (non-finite scores); lower lr")
    thresholds = best_f1_thresholds(Y, S)
    mean, std = _summarise(per_fold)
    model_dir = ws.model_dir(name)
    version = _next_version(model_dir)
    if kind == "torchscript":
        from iconoscope.learn.finetune_top import save_trained

        trained_spec, head = save_trained(ws, setup, net, name, version)
    elif kind == "hf":
        trained_spec, head = _save_hf(ws, net, base, name, version)
    else:
        trained_spec, head = _save_smallcnn(ws, net, spec, name, version, pre, tuple(base.model.widths))
    save_model(model_dir, head, kind="finetune", categories=labels.categories,
               labels={c: labels.label(c) for c in labels.categories}, backbone=trained_spec, version=version)
    write_oof(model_dir / "oof_scores.parquet", labels, S, fold_of)
    write_thresholds(model_dir, labels.categories, thresholds, fold_th, "best F1 on the fold's validation split")
    report = TrainReport(name=name, version=version, head="finetune", backbone=trained_spec, folds=k,
                         n_images=len(labels), n_records=len(set(labels.records)), mean=mean, std=std,
                         per_fold=per_fold, params={**p, "epochs": final_epochs}, model_dir=model_dir,
                         seconds=time.perf_counter() - t0, left_out=len(left_out))
    report.resumed = list(cache.resumed)
    bb = get_backbone(trained_spec, ws=ws, cache=False)
    write_card(ws, model_dir, report, labels, backbone=bb.describe(), grid=[p], inner_folds=1, seed=seed,
               left_out=left_out, pooled=evaluate_scores(Y, S, None), thresholds=thresholds,
               created=datetime.now(UTC).isoformat(timespec="seconds"),
               protocol=(f"{k}-fold cross-validation, folds grouped by record and iteratively stratified (seed "
                         f"{seed}); in each fold the epoch and the thresholds are chosen on a grouped "
                         f"{float(p['val_share']):.0%} validation split of the training part; metrics on the test "
                         f"folds only; the final network is trained {final_epochs} epochs on every image"
                         + _frozen_note(kind, setup)))
    cache.clear()
    return report
