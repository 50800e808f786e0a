"""Classifier heads on embeddings, scikit-learn style (``fit`` / ``predict_proba`` / ``get_params``).

* :class:`LinearProbe` - logistic regression fitted full-batch with L-BFGS in torch, all classes at once:
  one-vs-rest (sigmoid + BCE; the same optimum as scikit-learn's ``LogisticRegression(C)`` per class) or, for
  single-label sets, softmax with a background unit for rows of no category. ``loss="auto"`` picks softmax when
  the training rows are single-label.
* :class:`MLPHead` - one hidden layer with dropout 0.5, Adam (lr 1e-3) with step decay, as in the seeds' recipe.

Both standardise their inputs (statistics of the training rows only) after an optional power/L2 normalisation,
which matters for pooled CNN features whose channels differ in scale by orders of magnitude. Class weights
(``class_weight="balanced"``) counter imbalance: one-vs-rest heads weight positives by negatives/positives per class,
softmax heads weight each row by scikit-learn's ``n / (K n_c)`` for its class (the background unit counts as one).
The end-to-end fine-tuning head lives in :mod:`iconoscope.learn.finetune` (it needs images, not embeddings).

**Finer training targets** (``fine_labels=True``): a category is often a union of visually different things (the
genus *Prunus*: peaches, plums, cherries), and the rows of no category are a mix of everything else. A softmax over
such a union must fit one linear region to several clusters. With ``fine_labels`` the head is trained on the
records' own subjects (the most specific concepts of the thesaurus, passed to ``fit`` as ``fine``: one key per row)
whenever a subject has at least ``fine_min`` training rows, and on the row's category set otherwise; a category's
probability is then the sum of the probabilities of the units below it (the hierarchy the labels were derived by).
Which units exist is decided on the training rows only.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np


def _normalise(X: np.ndarray, how: str) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if how in ("sqrt", "sqrt_l2"):
        X = np.sign(X) * np.sqrt(np.abs(X))
    if how in ("l2", "sqrt_l2"):
        X = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    elif how not in ("none", "sqrt"):
        raise ValueError(f"normalize = {how!r}: expected none, l2, sqrt or sqrt_l2")
    return X


class _TorchHead:
    """Shared plumbing: parameters, input scaling, targets and loss."""

    _param_names: tuple[str, ...] = ()

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self._param_names}

    def set_params(self, **params: Any) -> _TorchHead:
        for k, v in params.items():
            if k not in self._param_names:
                raise ValueError(f"{type(self).__name__}: unknown parameter {k!r}")
            setattr(self, k, v)
        return self

    def clone(self) -> _TorchHead:
        return type(self)(**copy.deepcopy(self.get_params()))

    def _scale_fit(self, X: np.ndarray) -> np.ndarray:
        from iconoscope.learn.backbones.runtime import torch_threads, training_threads

        torch_threads(training_threads())
        X = _normalise(X, self.normalize)  # type: ignore[attr-defined]
        self.mean_ = X.mean(axis=0)
        self.std_ = X.std(axis=0) + 1e-6
        return (X - self.mean_) / self.std_

    def _scale(self, X: np.ndarray) -> np.ndarray:
        return (_normalise(X, self.normalize) - self.mean_) / self.std_  # type: ignore[attr-defined]

    def _targets(self, Y: np.ndarray, fine: list[str] | None = None) -> np.ndarray:
        """The matrix the network is trained on: ``Y`` itself, or with ``fine_labels`` one unit per row (its fine
        key when frequent enough, else its category set; see the module doc). Sets ``units_`` and ``unit_map_``
        ([units, categories]: which categories each unit sums into), or ``None`` for them without fine labels."""
        Y = np.asarray(Y, dtype=np.float32)
        self.units_: list[str] | None = None
        self.unit_map_: np.ndarray | None = None
        if not getattr(self, "fine_labels", False):
            return Y
        from iconoscope.errors import ConfigError

        if fine is None or len(fine) != len(Y):
            raise ConfigError(f"fine_labels = true: the head needs one fine key per training row (got "
                              f"{'none' if fine is None else len(fine)} for {len(Y)} rows; is the label table "
                              "older than its 'subjects' column? re-run 'iconoscope labels')")
        loss = getattr(self, "loss", "auto")
        if loss not in ("auto", "softmax"):
            raise ConfigError(f"fine_labels = true trains a softmax over units; loss = {loss!r} cannot be combined "
                              "with it")
        from collections import Counter

        counts = Counter(fine)
        min_rows = int(getattr(self, "fine_min", 5))
        keys = [f"fine:{k}" if k and counts[k] >= min_rows else
                "cats:" + ",".join(map(str, np.flatnonzero(y))) for k, y in zip(fine, Y, strict=True)]
        units = sorted(set(keys))
        index = {u: i for i, u in enumerate(units)}
        rows = np.array([index[k] for k in keys])
        unit_map = np.zeros((len(units), Y.shape[1]), dtype=np.float32)
        np.maximum.at(unit_map, rows, (Y > 0).astype(np.float32))
        T = np.zeros((len(Y), len(units)), dtype=np.float32)
        T[np.arange(len(Y)), rows] = 1.0
        self.units_, self.unit_map_ = units, unit_map
        return T

    def _outputs(self, Y: np.ndarray) -> int:
        """Output units: one per class, plus a background unit for softmax when some rows have no positive
        (images of none of the categories must be able to say so, or softmax would force them into one).
        With fine labels, ``Y`` is already the unit matrix of :meth:`_targets` (every row has one unit)."""
        from iconoscope.learn.metrics import is_single_label

        if getattr(self, "units_", None) is not None:
            self.loss_, self.background_ = "softmax", False
            return Y.shape[1]
        loss = self.loss  # type: ignore[attr-defined]
        if loss == "auto":  # decided on the training rows only
            loss = "softmax" if is_single_label(Y) else "bce"
        if loss not in ("bce", "softmax"):
            raise ValueError(f"loss = {loss!r}: expected auto, bce or softmax")
        self.loss_ = loss
        self.background_ = loss == "softmax" and bool((~np.asarray(Y, bool).any(axis=1)).any())
        return Y.shape[1] + int(self.background_)

    def _loss_fn(self, Y: np.ndarray) -> Any:
        import torch
        from torch.nn import functional as F

        Yt = torch.from_numpy(np.asarray(Y, dtype=np.float32))
        if self.loss_ == "softmax":
            if getattr(self, "background_", False):
                Yt = torch.cat([Yt, (Yt.sum(dim=1, keepdim=True) == 0).float()], dim=1)
            labelled = Yt.sum(dim=1) > 0
            target = Yt[labelled] / Yt[labelled].sum(dim=1, keepdim=True)
            if self.class_weight == "balanced":  # type: ignore[attr-defined]
                # scikit-learn's 'balanced': class c weighs n / (K n_c); a row weighs its target's mix of those, so
                # the weights average 1 and C keeps its meaning; rare classes pull as hard as frequent ones
                n_c = target.sum(dim=0)
                present = n_c > 0
                cw = torch.where(present, len(target) / (present.sum() * n_c.clamp(min=1e-9)), torch.zeros_like(n_c))
                w = target @ cw

                def fw(logits: torch.Tensor) -> torch.Tensor:
                    return (F.cross_entropy(logits[labelled], target, reduction="none") * w).mean()
                return fw

            def f(logits: torch.Tensor) -> torch.Tensor:
                return F.cross_entropy(logits[labelled], target)
            return f
        pos = Yt.sum(dim=0)
        balanced = self.class_weight == "balanced"  # type: ignore[attr-defined]
        pw = ((Yt.shape[0] - pos) / pos.clamp(min=1)).clamp(max=100.0) if balanced else None

        def g(logits: torch.Tensor) -> torch.Tensor:  # summed over classes: each class is its own regression
            return F.binary_cross_entropy_with_logits(logits, Yt, pos_weight=pw, reduction="sum") / len(Yt)
        return g

    def _proba(self, logits: Any) -> np.ndarray:
        import torch

        if self.loss_ == "softmax":
            p = torch.softmax(logits, dim=1).numpy()
            if getattr(self, "unit_map_", None) is not None:  # a category is the sum of the units below it
                return np.minimum(p @ self.unit_map_, 1.0)
            return p[:, :-1] if getattr(self, "background_", False) else p
        return torch.sigmoid(logits).numpy()


class LinearProbe(_TorchHead):
    """Logistic regression on embeddings. ``C``: inverse L2 strength (as in scikit-learn, per training row)."""

    _param_names = ("C", "loss", "normalize", "class_weight", "max_iter", "fine_labels", "fine_min")

    def __init__(self, C: float = 1.0, loss: str = "auto", normalize: str = "sqrt_l2",
                 class_weight: str | None = None, max_iter: int = 100, fine_labels: bool = False,
                 fine_min: int = 5):
        self.C = C
        self.loss = loss
        self.normalize = normalize
        self.class_weight = class_weight
        self.max_iter = max_iter
        self.fine_labels = fine_labels
        self.fine_min = fine_min

    def fit(self, X: np.ndarray, Y: np.ndarray, init: LinearProbe | None = None,
            fine: list[str] | None = None) -> LinearProbe:
        """Fit on (X, Y). ``init``: a fitted probe of the same shape to start from (a neighbouring C or fold):
        the optimum moves little, so L-BFGS needs a fraction of the iterations (a warm start, as in
        scikit-learn's regularisation paths). ``fine``: one fine key per row (``fine_labels``)."""
        import torch

        torch.manual_seed(0)
        Xs = torch.from_numpy(self._scale_fit(X).astype(np.float32))
        n, d = Xs.shape
        Y = self._targets(Y, fine)
        c = self._outputs(Y)
        same_units = getattr(init, "units_", None) == self.units_  # warm starts only from the same output units
        if (init is not None and same_units and getattr(init, "coef_", None) is not None
                and init.coef_.shape == (c, d)):
            W = torch.tensor(init.coef_.T.copy(), requires_grad=True)
            b = torch.tensor(init.intercept_.copy(), requires_grad=True)
        else:
            W = torch.zeros(d, c, requires_grad=True)
            b = torch.zeros(c, requires_grad=True)
        loss_fn = self._loss_fn(Y)
        lam = 1.0 / (self.C * n)
        opt = torch.optim.LBFGS([W, b], lr=1.0, max_iter=self.max_iter, history_size=20,
                                line_search_fn="strong_wolfe", tolerance_grad=1e-6, tolerance_change=1e-9)

        def closure() -> torch.Tensor:
            opt.zero_grad()
            obj = loss_fn(Xs @ W + b) + 0.5 * lam * (W * W).sum()
            obj.backward()
            return obj

        opt.step(closure)
        self.coef_ = W.detach().numpy().T.copy()  # [C, D] as scikit-learn
        self.intercept_ = b.detach().numpy().copy()
        return self

    def decision_function(self, X: np.ndarray) -> np.ndarray:
        return self._scale(X) @ self.coef_.T + self.intercept_

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        return self._proba(torch.from_numpy(self.decision_function(X).astype(np.float32)))


class MLPHead(_TorchHead):
    """Linear -> ReLU -> Dropout -> Linear, trained with Adam and step decay (minibatches, fixed epochs)."""

    _param_names = ("hidden", "dropout", "lr", "weight_decay", "epochs", "batch_size", "loss", "normalize",
                    "class_weight", "seed", "fine_labels", "fine_min")

    def __init__(self, hidden: int = 512, dropout: float = 0.5, lr: float = 1e-3, weight_decay: float = 1e-4,
                 epochs: int = 40, batch_size: int = 128, loss: str = "auto", normalize: str = "sqrt_l2",
                 class_weight: str | None = None, seed: int = 0, fine_labels: bool = False, fine_min: int = 5):
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.loss = loss
        self.normalize = normalize
        self.class_weight = class_weight
        self.seed = seed
        self.fine_labels = fine_labels
        self.fine_min = fine_min

    def _net(self, d: int, c: int) -> Any:
        from torch import nn

        return nn.Sequential(nn.Linear(d, self.hidden), nn.ReLU(), nn.Dropout(self.dropout), nn.Linear(self.hidden, c))

    def fit(self, X: np.ndarray, Y: np.ndarray, fine: list[str] | None = None) -> MLPHead:
        """Fit on (X, Y); ``fine``: one fine key per row (``fine_labels``)."""
        import torch

        g = torch.Generator().manual_seed(self.seed)
        torch.manual_seed(self.seed)
        Xs = torch.from_numpy(self._scale_fit(X).astype(np.float32))
        Yn = self._targets(Y, fine)
        n, d = Xs.shape
        net = self._net(d, self._outputs(Yn))
        opt = torch.optim.Adam(net.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, self.epochs // 3), gamma=0.1)
        net.train()
        for _ in range(self.epochs):
            perm = torch.randperm(n, generator=g)
            for i in range(0, n, self.batch_size):
                idx = perm[i:i + self.batch_size]
                if len(idx) < 2:
                    continue
                loss_fn = self._loss_fn(Yn[idx.numpy()])
                opt.zero_grad()
                loss = loss_fn(net(Xs[idx]))
                loss.backward()
                opt.step()
            sched.step()
        net.eval()
        self.net_ = net
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            return self._proba(self.net_(torch.from_numpy(self._scale(X).astype(np.float32))))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if "net_" in state:  # store weights, not the module class (robust to torch upgrades)
            state["net_state_"] = {k: v.clone() for k, v in state.pop("net_").state_dict().items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        sd = state.pop("net_state_", None)
        self.__dict__.update(state)
        if sd is not None:
            net = self._net(sd["0.weight"].shape[1], sd["3.weight"].shape[0])
            net.load_state_dict(sd)
            net.eval()
            self.net_ = net


HEADS: dict[str, type[_TorchHead]] = {"linear": LinearProbe, "mlp": MLPHead}

#: hyper-parameter grids searched by inner cross-validation on the training folds only
DEFAULT_GRIDS: dict[str, dict[str, list[Any]]] = {
    "linear": {"C": [0.03, 0.1, 0.3]},
    "mlp": {"weight_decay": [1e-4, 1e-2]},
}


def make_head(kind: str, **params: Any) -> _TorchHead:
    if kind not in HEADS:
        from iconoscope.errors import ConfigError

        raise ConfigError(f"head {kind!r}: expected one of {', '.join(HEADS)} (or finetune, multimodal)")
    return HEADS[kind](**params)
