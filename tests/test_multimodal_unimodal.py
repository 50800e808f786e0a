"""Auxiliary unimodal heads (``unimodal_loss``): they change training, not what a trained model predicts with.

Why: in joint training the image (the stronger input) dominates and the metadata branch is under-trained; an
image-only and a metadata-only head per task, added to the loss, train each branch on its own. The option must
leave the prediction path (shapes, fused heads, saved state's loading) and single-branch baselines unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest


def _toy(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list]:
    """Three classes; the image is a weak cue, a categorical field (present on 70% of rows) gives the class."""
    from iconoscope.learn.multimodal.model import BlockSlot

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    Xi = rng.normal(size=(n, 8)).astype(np.float32)
    Xi[np.arange(n), y] += 1.0
    Xi = np.concatenate([Xi, np.zeros((n, 1), np.float32)], axis=1)
    has = rng.random(n) < 0.7
    cat = np.zeros((n, 3), np.float32)
    cat[np.flatnonzero(has), y[has]] = 1.0
    Xm = np.concatenate([cat, (~has).astype(np.float32)[:, None]], axis=1)
    slots = [BlockSlot("image", "image", 0, 9), BlockSlot("field:g", "meta", 0, 4)]
    return Xi, Xm, np.eye(3, dtype=np.float32)[y], y, has, slots


def _cfg(**kw: float) -> object:
    from iconoscope.learn.multimodal.model import NetConfig

    return NetConfig(image_units=16, meta_units=8, shared_units=32, epochs=12, batch_size=64, lr=3e-3, **kw)


def test_unimodal_heads_change_training_not_prediction_shapes() -> None:
    from iconoscope.learn.multimodal.model import MultimodalClassifier, Task

    Xi, Xm, Y, _y, _has, slots = _toy(600)
    tasks = [Task("t", 3), Task("u", 3)]
    fit = (Xi[:400], Xm[:400], [Y[:400], Y[:400]], [np.ones(400, bool)] * 2)
    plain = MultimodalClassifier(slots, tasks, _cfg()).fit(*fit)
    aux = MultimodalClassifier(slots, tasks, _cfg(unimodal_loss=0.5)).fit(*fit)
    P0, P1 = plain.predict_proba(Xi[400:], Xm[400:]), aux.predict_proba(Xi[400:], Xm[400:])
    assert [p.shape for p in P0] == [p.shape for p in P1] == [(200, 3), (200, 3)]
    assert all(np.allclose(p.sum(1), 1.0, atol=1e-5) for p in P1)
    assert not np.allclose(P0[0], P1[0], atol=1e-4)  # the extra loss terms changed the trained weights
    assert plain.history != aux.history
    # the auxiliary heads exist only in the model trained with them, and are saved and reloaded with it
    keys0, keys1 = set(plain.state()["weights"]), set(aux.state()["weights"])
    assert keys0 < keys1 and any(k.startswith("image_heads.") for k in keys1)
    assert any(k.startswith("meta_heads.") for k in keys1)
    again = MultimodalClassifier.from_state(aux.state())
    assert all(np.allclose(a, b, atol=1e-6) for a, b in zip(again.predict_proba(Xi[400:], Xm[400:]), P1,
                                                             strict=True))


def test_the_metadata_head_learns_alone() -> None:
    """The auxiliary metadata head, read directly, predicts the class from the field where it is present."""
    import torch

    from iconoscope.learn.multimodal.model import MultimodalClassifier, Task

    Xi, Xm, Y, y, has, slots = _toy(900, seed=1)
    clf = MultimodalClassifier(slots, [Task("t", 3)], _cfg(unimodal_loss=1.0))
    clf.fit(Xi[:600], Xm[:600], [Y[:600]], [np.ones(600, bool)])
    with torch.inference_mode():
        logits = clf.net.meta_heads[0](clf.net.meta(torch.from_numpy(Xm[600:])))
    pred, truth, present = logits.argmax(1).numpy(), y[600:], has[600:]
    assert (pred[present] == truth[present]).mean() > 0.95


def test_single_branch_models_are_unchanged() -> None:
    """Image-only (the baseline of --compare-single-input) and metadata-only models ignore the option."""
    from iconoscope.learn.multimodal.model import BlockSlot, MultimodalClassifier, Task

    Xi, Xm, Y, _y, _has, slots = _toy(300, seed=2)
    for slot, xi, xm in ((slots[0], Xi, None), (BlockSlot("field:g", "meta", 0, 4), None, Xm)):
        runs = [MultimodalClassifier([slot], [Task("t", 3)], _cfg(unimodal_loss=w)).fit(
            xi, xm, [Y], [np.ones(300, bool)]) for w in (0.0, 0.5)]
        P = [r.predict_proba(xi, xm)[0] for r in runs]
        assert np.array_equal(P[0], P[1])
        assert set(runs[0].state()["weights"]) == set(runs[1].state()["weights"])


def test_hidden_inputs_stay_hidden_from_the_auxiliary_heads() -> None:
    """A task that hides its own field (the artist head without the artist) trains with the unimodal heads too;
    its metadata head then cannot read the hidden field, so on the toy it is near chance, not near perfect."""
    import torch

    from iconoscope.learn.multimodal.model import MultimodalClassifier, Task

    Xi, Xm, Y, y, _has, slots = _toy(900, seed=3)
    clf = MultimodalClassifier(slots, [Task("t", 3, hide=("field:g",))], _cfg(unimodal_loss=1.0))
    clf.fit(Xi[:600], Xm[:600], [Y[:600]], [np.ones(600, bool)])
    masked = clf._masked(torch.from_numpy(Xm[600:]), "meta", ("field:g",))
    with torch.inference_mode():
        logits = clf.net.meta_heads[0](clf.net.meta(masked))
    assert (logits.argmax(1).numpy() == y[600:]).mean() < 0.5


def test_unimodal_loss_config() -> None:
    from iconoscope.errors import ConfigError
    from iconoscope.learn.multimodal.model import MultimodalClassifier, NetConfig

    assert NetConfig().unimodal_loss == 0.0
    assert NetConfig.from_params({"unimodal_loss": 0.5}, "x").unimodal_loss == 0.5
    assert NetConfig.from_params({"unimodal_loss": 0}, "x").unimodal_loss == 0.0
    with pytest.raises(ConfigError, match="unimodal_loss"):
        NetConfig.from_params({"unimodal_loss": -0.5}, "x")
    # a model saved before the option existed still loads (its config has no such key)
    from iconoscope.learn.multimodal.model import Task

    Xi, Xm, Y, _y, _has, slots = _toy(100)
    clf = MultimodalClassifier(slots, [Task("t", 3)], _cfg()).fit(Xi, Xm, [Y], [np.ones(100, bool)])
    state = clf.state()
    del state["cfg"]["unimodal_loss"]
    assert np.allclose(MultimodalClassifier.from_state(state).predict_proba(Xi, Xm)[0], clf.predict_proba(Xi, Xm)[0])
