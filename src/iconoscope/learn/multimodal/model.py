"""The multitask network (after Belhi et al.) and its scikit-learn-style wrapper.

Shape: the image inputs go through one dense layer (``image_units``), the metadata inputs (one-hot, multi-hot,
numbers, text vectors, each with its missing flag) through another (``meta_units``, 256 in the paper); the two are
concatenated, regularised (dropout 0.5) into a shared layer (``shared_units``, 1024), and each task has its own
softmax (or sigmoid, for multi-label tasks) head. The loss is the sum of the tasks' cross-entropies, each over the
records that have a label for that task, so one model learns from records with partial metadata.

Missing inputs: while training, each input of each record is hidden with probability ``modality_dropout``
(values zeroed, missing flag raised). The network thus learns what to do without a title or without an image, and
at prediction time a record missing an input is predicted from the rest instead of failing.

Modality imbalance: trained jointly, the stronger input (the image) fits the labels first and the weaker branch
(the metadata) stops receiving useful gradient before it has learnt what it could (Wang et al. 2020, "What makes
training multi-modal classification networks hard?"; Peng et al. 2022, OGM-GE). ``unimodal_loss`` > 0 adds, for
every task, one auxiliary head on the image branch alone and one on the metadata branch alone; their
cross-entropies, times ``unimodal_loss``, are added to the loss, so each branch is trained to predict on its own.
They are used in training only: predictions come from the fused heads, as without them. With a single branch (an
image-only or a metadata-only model) the option does nothing, so a baseline trained with the same settings is the
model it was.

Variance: ``ensemble = n`` trains n networks, from seeds ``seed`` .. ``seed + n - 1`` (initial weights, batch order,
hidden inputs), and averages their probabilities. A few thousand rows and sparse one-hots of thousands of values make
one network's fit depend on its seed; the average keeps what the seeds agree on. ``ensemble = 1`` (the default) is
the single network, bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from iconoscope.errors import ConfigError
from iconoscope.learn.text import torch_threads


@dataclass
class NetConfig:
    """Hyper-parameters; every field can be set in ``[classifiers.NAME]`` (e.g. ``epochs = 80``)."""

    image_units: int = 512
    meta_units: int = 256
    shared_units: int = 1024
    dropout: float = 0.5
    input_dropout: float = 0.2
    modality_dropout: float = 0.15
    epochs: int = 60
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 1e-4
    label_smoothing: float = 0.0
    unimodal_loss: float = 0.0  # weight of the auxiliary image-only and metadata-only heads (0: none)
    ensemble: int = 1  # networks trained from seeds seed, seed + 1, ...; their probabilities are averaged
    seed: int = 0
    threads: int = 1  # one: small networks, shared CPUs (see iconoscope.learn.text.default_threads)

    @classmethod
    def from_params(cls, params: dict[str, Any], where: str) -> NetConfig:
        cfg = cls()
        for f in fields(cls):
            if f.name in params:
                value = params[f.name]
                default = getattr(cfg, f.name)
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
                if isinstance(default, int) and ok:
                    ok = float(value).is_integer()
                    value = int(value)
                if not ok:
                    raise ConfigError(f"{where}: key {f.name!r} = {value!r}: expected a number like {default!r}")
                if f.name.endswith("dropout") and not 0 <= float(value) < 1:
                    raise ConfigError(f"{where}: key {f.name!r} = {value!r}: expected a probability in [0, 1)")
                if f.name.endswith(("smoothing", "decay", "seed", "loss")) and value < 0:
                    raise ConfigError(f"{where}: key {f.name!r} = {value!r}: expected zero or a positive number")
                if not f.name.endswith(("dropout", "smoothing", "decay", "seed", "loss")) and value <= 0:
                    raise ConfigError(f"{where}: key {f.name!r} = {value!r}: expected a positive number")
                setattr(cfg, f.name, type(default)(value))
        return cfg


@dataclass(frozen=True)
class Task:
    """One head. ``hide``: input blocks the head never sees (the task's own field, when it is also an input: a
    record's known year helps predict its artist, but the year head must not read the year)."""

    name: str
    n_classes: int
    multilabel: bool = False
    weight: float = 1.0
    hide: tuple[str, ...] = ()


@dataclass(frozen=True)
class BlockSlot:
    """Where one input block lives in its branch's matrix: columns [start, end), the last one being its flag."""

    name: str
    branch: str  # 'image' | 'meta'
    start: int
    end: int


def _build_net(image_dim: int, meta_dim: int, tasks: list[Task], cfg: NetConfig) -> Any:
    import torch
    from torch import nn

    class MultimodalNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.image = (nn.Sequential(nn.Dropout(cfg.input_dropout), nn.Linear(image_dim, cfg.image_units),
                                        nn.ReLU()) if image_dim else None)
            self.meta = nn.Sequential(nn.Linear(meta_dim, cfg.meta_units), nn.ReLU()) if meta_dim else None
            fused = (cfg.image_units if image_dim else 0) + (cfg.meta_units if meta_dim else 0)
            self.shared = nn.Sequential(nn.Dropout(cfg.dropout), nn.Linear(fused, cfg.shared_units), nn.ReLU(),
                                        nn.Dropout(cfg.dropout))
            self.heads = nn.ModuleList([nn.Linear(cfg.shared_units, t.n_classes) for t in tasks])
            # built after the rest, so the shared layers start from the same weights with or without them
            self.aux = cfg.unimodal_loss > 0 and bool(image_dim) and bool(meta_dim)
            if self.aux:
                self.image_heads = nn.ModuleList([nn.Sequential(nn.Dropout(cfg.dropout),
                                                                nn.Linear(cfg.image_units, t.n_classes))
                                                  for t in tasks])
                self.meta_heads = nn.ModuleList([nn.Sequential(nn.Dropout(cfg.dropout),
                                                               nn.Linear(cfg.meta_units, t.n_classes))
                                                 for t in tasks])

        def branches(self, xi: torch.Tensor | None, xm: torch.Tensor | None) -> tuple[Any, Any]:
            hi = self.image(xi) if self.image is not None and xi is not None else None
            hm = self.meta(xm) if self.meta is not None and xm is not None else None
            return hi, hm

        def top(self, hi: Any, hm: Any, heads: list[int]) -> list[torch.Tensor]:
            h = self.shared(torch.cat([p for p in (hi, hm) if p is not None], dim=1))
            return [self.heads[t](h) for t in heads]

        def forward(self, xi: torch.Tensor | None, xm: torch.Tensor | None) -> list[torch.Tensor]:
            return self.top(*self.branches(xi, xm), list(range(len(self.heads))))

    return MultimodalNet()


class MultimodalClassifier:
    """fit / predict_proba over block matrices: ``Xi`` (image branch) and ``Xm`` (metadata branch), each the
    concatenation of blocks with their missing-flag column, laid out by ``slots``."""

    def __init__(self, slots: list[BlockSlot], tasks: list[Task], cfg: NetConfig | None = None):
        self.slots, self.tasks, self.cfg = slots, tasks, cfg or NetConfig()
        self.image_dim = max((s.end for s in slots if s.branch == "image"), default=0)
        self.meta_dim = max((s.end for s in slots if s.branch == "meta"), default=0)
        if not self.image_dim and not self.meta_dim:
            raise ConfigError("a multimodal model needs at least one input")
        names = {s.name for s in slots}
        for t in tasks:
            unknown = sorted(set(t.hide) - names)
            if unknown:
                raise ConfigError(f"task {t.name!r} hides unknown input(s) {', '.join(unknown)}")
        self.nets: list[Any] = []
        self.history: list[float] = []  # mean training loss per epoch (the first network's)

    @property
    def net(self) -> Any:
        """The first network (the only one unless ``ensemble`` > 1); None before ``fit``."""
        return self.nets[0] if self.nets else None

    def _groups(self) -> dict[tuple[str, ...], list[int]]:
        """Tasks grouped by the inputs they must not see: one forward pass per group."""
        groups: dict[tuple[str, ...], list[int]] = {}
        for t, task in enumerate(self.tasks):
            groups.setdefault(tuple(sorted(task.hide)), []).append(t)
        return groups

    def _masked(self, x: Any, branch: str, hide: tuple[str, ...]) -> Any:
        """``x`` with the named blocks hidden in every row (values zeroed, missing flag raised)."""
        slots = [s for s in self.slots if s.branch == branch and s.name in hide]
        if x is None or not slots:
            return x
        x = x.clone()
        for s in slots:
            x[:, s.start:s.end - 1] = 0.0
            x[:, s.end - 1] = 1.0
        return x

    def _outputs(self, net: Any, xi: Any, xm: Any, aux: list[Any] | None = None) -> list[Any]:
        """Logits of every task, each from the inputs it may see (branches recomputed only where hidden). With
        ``aux`` (a list, training with unimodal heads), appends per task (image-only logits, metadata-only
        logits), from the same branch outputs as the fused head."""
        outs: list[Any] = [None] * len(self.tasks)
        if aux is not None:
            aux.extend([None] * len(self.tasks))
        base = net.branches(xi, xm)
        for hide, tids in self._groups().items():
            hi, hm = base
            if hide:
                mi, mm = self._masked(xi, "image", hide), self._masked(xm, "meta", hide)
                hi = net.branches(mi, None)[0] if mi is not xi else hi
                hm = net.branches(None, mm)[1] if mm is not xm else hm
            for t, logits in zip(tids, net.top(hi, hm, tids), strict=True):
                outs[t] = logits
                if aux is not None:
                    aux[t] = (net.image_heads[t](hi), net.meta_heads[t](hm))
        return outs

    # ---- training
    def _hide(self, x: Any, branch: str, gen: Any) -> Any:
        """Modality dropout: hide each block of each row with probability p (zero it, raise its flag)."""
        import torch

        p = self.cfg.modality_dropout
        if x is None or p <= 0:
            return x
        x = x.clone()
        for s in self.slots:
            if s.branch != branch:
                continue
            hide = torch.rand(x.shape[0], generator=gen) < p
            if hide.any():
                x[hide, s.start:s.end - 1] = 0.0
                x[hide, s.end - 1] = 1.0
        return x

    def fit(self, Xi: np.ndarray | None, Xm: np.ndarray | None, Y: list[np.ndarray], has: list[np.ndarray],
            progress: Any = None) -> MultimodalClassifier:
        """Y[t]: [N, C_t] target distribution (or multi-hot); has[t]: bool [N] rows labelled for task t."""
        with torch_threads(self.cfg.threads):
            return self._fit(Xi, Xm, Y, has, progress)

    def _fit(self, Xi: np.ndarray | None, Xm: np.ndarray | None, Y: list[np.ndarray], has: list[np.ndarray],
             progress: Any = None) -> MultimodalClassifier:
        import torch

        xi = torch.from_numpy(np.ascontiguousarray(Xi, dtype=np.float32)) if self.image_dim else None
        xm = torch.from_numpy(np.ascontiguousarray(Xm, dtype=np.float32)) if self.meta_dim else None
        ys = [torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)) for y in Y]
        hs = [torch.from_numpy(np.asarray(h, dtype=bool)) for h in has]
        self.nets = []
        for member in range(self.cfg.ensemble):
            net, history = self._fit_one(self.cfg.seed + member, xi, xm, ys, hs, progress)
            self.nets.append(net)
            if member == 0:
                self.history = history
        return self

    def _fit_one(self, seed: int, xi: Any, xm: Any, ys: list[Any], hs: list[Any],
                 progress: Any) -> tuple[Any, list[float]]:
        """One network from one seed: (the network in eval mode, its mean training loss per epoch)."""
        import torch

        cfg = self.cfg
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        n = len(ys[0])
        net = _build_net(self.image_dim, self.meta_dim, self.tasks, cfg)
        opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        steps_per_epoch = max(1, math.ceil(n / cfg.batch_size))
        total = cfg.epochs * steps_per_epoch
        warm = max(1, total // 20)

        def lr_factor(step: int) -> float:  # linear warm-up, then cosine decay to zero
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)
        net.train()
        history: list[float] = []
        for _epoch in range(cfg.epochs):
            perm = torch.randperm(n, generator=gen)
            seen = 0.0
            for start in range(0, n, cfg.batch_size):
                idx = perm[start:start + cfg.batch_size]
                bi = self._hide(xi[idx], "image", gen) if xi is not None else None
                bm = self._hide(xm[idx], "meta", gen) if xm is not None else None
                aux: list[Any] | None = [] if net.aux else None
                outs = self._outputs(net, bi, bm, aux)
                loss = torch.zeros(())
                for t, (task, logits, y, h) in enumerate(zip(self.tasks, outs, ys, hs, strict=True)):
                    mask = h[idx]
                    if not mask.any():
                        continue
                    yy = y[idx][mask]
                    if not task.multilabel and cfg.label_smoothing > 0:
                        yy = yy * (1 - cfg.label_smoothing) + cfg.label_smoothing / yy.shape[1]
                    part = self._loss(task, logits[mask], yy)
                    if aux is not None:
                        part = part + cfg.unimodal_loss * (self._loss(task, aux[t][0][mask], yy) +
                                                           self._loss(task, aux[t][1][mask], yy))
                    loss = loss + task.weight * part
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
                seen += float(loss.detach()) * len(idx)
            history.append(seen / n)
            if progress is not None:
                progress.update(1)
        net.eval()
        return net, history

    @staticmethod
    def _loss(task: Task, logits: Any, target: Any) -> Any:
        """Cross-entropy of one head over the rows labelled for its task (``target``: a distribution or multi-hot)."""
        from torch.nn import functional as F

        if task.multilabel:
            return F.binary_cross_entropy_with_logits(logits, target)
        return -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()

    # ---- prediction
    def predict_proba(self, Xi: np.ndarray | None, Xm: np.ndarray | None, batch_size: int = 4096) -> list[np.ndarray]:
        """Per task, [N, C] probabilities (softmax rows sum to 1; multi-label tasks are independent sigmoids)."""
        if self.net is None:
            raise RuntimeError("fit or load the model first")
        with torch_threads(self.cfg.threads):
            return self._predict(Xi, Xm, batch_size)

    def _predict(self, Xi: np.ndarray | None, Xm: np.ndarray | None, batch_size: int) -> list[np.ndarray]:
        import torch

        n = len(Xi) if Xi is not None and self.image_dim else len(Xm)  # type: ignore[arg-type]
        outs: list[list[np.ndarray]] = [[] for _ in self.tasks]
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                bi = (torch.from_numpy(np.ascontiguousarray(Xi[start:start + batch_size], dtype=np.float32))
                      if self.image_dim and Xi is not None else None)
                bm = (torch.from_numpy(np.ascontiguousarray(Xm[start:start + batch_size], dtype=np.float32))
                      if self.meta_dim and Xm is not None else None)
                mean: list[Any] = [0.0] * len(self.tasks)
                for net in self.nets:
                    net.eval()
                    for t, (task, logits) in enumerate(zip(self.tasks, self._outputs(net, bi, bm), strict=True)):
                        mean[t] = mean[t] + (torch.sigmoid(logits) if task.multilabel
                                             else torch.softmax(logits, dim=1))
                for t, p in enumerate(mean):
                    outs[t].append((p / len(self.nets)).numpy())
        return [np.concatenate(o) if o else np.zeros((0, task.n_classes), np.float32)
                for o, task in zip(outs, self.tasks, strict=True)]

    # ---- persistence
    def state(self) -> dict[str, Any]:
        return {"slots": [asdict(s) for s in self.slots], "tasks": [asdict(t) for t in self.tasks],
                "cfg": asdict(self.cfg), "weights": self.net.state_dict() if self.net is not None else None,
                "more_weights": [net.state_dict() for net in self.nets[1:]], "history": self.history}

    @classmethod
    def from_state(cls, s: dict[str, Any]) -> MultimodalClassifier:
        tasks = [Task(**{**t, "hide": tuple(t.get("hide", ()))}) for t in s["tasks"]]
        clf = cls([BlockSlot(**b) for b in s["slots"]], tasks, NetConfig(**s["cfg"]))
        clf.nets = []
        for weights in [s["weights"], *s.get("more_weights", [])]:  # models saved before `ensemble` have one
            net = _build_net(clf.image_dim, clf.meta_dim, clf.tasks, clf.cfg)
            net.load_state_dict(weights)
            net.eval()
            clf.nets.append(net)
        clf.history = list(s.get("history", []))
        return clf
