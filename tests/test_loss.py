"""Softmax and the paper's objective (3.5): stable for huge logits, exact gradients, clear errors for bad labels."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F

from conftest import OpCase, op_tests


def logsumexp_reference(x, axis):
    """log sum e^x in float64 the slow way, for moderate x."""
    return np.log(np.exp(x).sum(axis=axis, keepdims=True))


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax_match_the_formula(rng, axis):
    x = rng.standard_normal((3, 5, 2)) * 4
    log_p = x - logsumexp_reference(x, axis)
    np.testing.assert_allclose(F.log_softmax(ta.tensor(x), axis).numpy(), log_p, rtol=1e-13, atol=1e-13)
    p = F.softmax(ta.tensor(x), axis).numpy()
    np.testing.assert_allclose(p, np.exp(log_p), rtol=1e-13)
    np.testing.assert_allclose(p.sum(axis=axis), 1, rtol=1e-14)


# (softmax, -1) is test_loss_ops's gradcheck
@pytest.mark.parametrize("op, axis", [(F.softmax, 0), (F.log_softmax, -1), (F.log_softmax, 0)])
def test_softmax_gradcheck(rng, op, axis):
    x = ta.tensor(rng.standard_normal((4, 6)), requires_grad=True)
    assert ta.gradcheck(lambda x: op(x, axis), x)


def test_cross_entropy_is_the_mean_of_picked_log_softmax(rng):
    logits, labels = rng.standard_normal((5, 7)) * 3, np.array([0, 6, 3, 3, 1])
    loss = F.softmax_cross_entropy(ta.tensor(logits), labels)
    log_p = F.log_softmax(ta.tensor(logits)).numpy()
    assert loss.shape == () and loss.item() == pytest.approx(-log_p[np.arange(5), labels].mean(), rel=1e-14)
    uniform = F.softmax_cross_entropy(ta.tensor(np.zeros((2, 1000))), [1, 999]).item()
    assert uniform == pytest.approx(np.log(1000), rel=1e-14)  # chance level of the 1000-way softmax


def test_cross_entropy_backward_is_softmax_minus_onehot_over_n(rng):
    logits, labels = ta.tensor(rng.standard_normal((4, 3)), requires_grad=True), np.array([2, 0, 1, 1])
    F.softmax_cross_entropy(logits, labels).backward()
    onehot = np.eye(3)[labels]
    np.testing.assert_allclose(logits.grad, (F.softmax(logits).numpy() - onehot) / 4, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_stable_with_huge_logits(dtype):
    """Logits of 1e4: a naive e^x is inf; the shifted forms give exact answers."""
    x = ta.tensor(np.array([[1e4, 1e4 - 2.0, -1e4], [0.0, 3e4, 3e4]]), dtype=dtype, requires_grad=True)
    with np.errstate(over="raise", invalid="raise"):  # e^(-2e4) underflowing to 0 is right
        p = F.softmax(x).numpy()
        loss = F.softmax_cross_entropy(x, [1, 0])
        loss.backward()
    e = np.exp(-2.0)
    np.testing.assert_allclose(p[0], [1 / (1 + e), e / (1 + e), 0], rtol=1e-6)
    expected = (2 + np.log1p(e) + 3e4 + np.log(2)) / 2
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(x.grad, [[p[0, 0] / 2, (p[0, 1] - 1) / 2, 0], [-0.5, 0.25, 0.25]], rtol=1e-6)
    assert F.log_softmax(x).numpy()[0, 2] == pytest.approx(-2e4 - np.log1p(e), rel=1e-7)


def test_bad_labels_and_logits():
    """Each message names the op, what it expected and what it got."""
    logits = ta.tensor(np.zeros((3, 4)))
    for bad_logits, labels, error, match in [
        (logits, np.array([0.0, 1.0, 2.0]), TypeError, "labels must be integer class indices, got dtype float64"),
        (logits, np.zeros((3, 1), np.int64), ValueError, r"labels must have shape \(3,\) .* got \(3, 1\)"),
        (logits, [0, 4, 1], ValueError, r"labels must be in \[0, 4\), got values from 0 to 4"),
        (logits, ta.tensor(np.array([-1, 0, 1])), ValueError, r"labels must be in \[0, 4\), got values from -1 to 1"),
        (ta.tensor(np.zeros(4)), [0], ValueError, r"expected a 2-D logits \(N, classes\), got shape \(4,\)"),
        (ta.tensor(np.zeros((0, 4))), np.zeros(0, np.int64), ValueError, "the batch is empty"),
    ]:
        with pytest.raises(error, match=f"softmax_cross_entropy: {match}"):
            F.softmax_cross_entropy(bad_logits, labels)
    with pytest.raises(ValueError, match=r"softmax: axis 2 is out of range for a 2-D input of shape \(3, 4\)"):
        F.softmax(logits, axis=2)


LABELS = np.random.default_rng(2).integers(0, 10, 8)


def softmax_formula(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def logits(rng):
    return [rng.standard_normal((8, 10)) * 5]


test_loss_ops = op_tests(
    # NumPy labels move to the logits' device
    OpCase("cross-entropy", lambda x: F.softmax_cross_entropy(x, LABELS), logits, atol=1e-7,
           reference=lambda x: -np.log(softmax_formula(x)[np.arange(8), LABELS]).mean()),
    OpCase("softmax", F.softmax, logits, reference=softmax_formula, atol=1e-7))
