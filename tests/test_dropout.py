"""Dropout (paper 4.2): train and test outputs agree in expectation, in both the paper's and the inverted form."""
import re

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F

from conftest import OpCase, op_tests


@pytest.mark.parametrize("mode", ["inverted", "paper"])
@pytest.mark.parametrize("p", [0.5, 0.2])
def test_train_and_test_outputs_agree_in_expectation(mode, p):
    x = ta.tensor(np.full(200_000, 3.0))
    train = F.dropout(x, p, mode=mode, seed=0).numpy()
    test = F.dropout(x, p, training=False, mode=mode).numpy()
    assert np.mean(train == 0) == pytest.approx(p, abs=0.005)  # 5 standard deviations of the count
    assert train.mean() == pytest.approx(test.mean(), rel=0.01)
    assert test == pytest.approx(3.0 if mode == "inverted" else 3.0 * (1 - p))


def test_paper_mode_keeps_values_unscaled_in_training():
    train = F.dropout(ta.tensor(np.full(1000, 3.0)), 0.5, mode="paper", seed=1).numpy()
    assert set(np.unique(train)) == {0.0, 3.0}
    inverted = F.dropout(ta.tensor(np.full(1000, 3.0)), 0.5, seed=1).numpy()
    assert set(np.unique(inverted)) == {0.0, 6.0}


def test_masks_repeat_under_a_seed_and_follow_the_engine_generator():
    x = ta.tensor(np.ones((8, 16)))
    assert np.array_equal(F.dropout(x, seed=5).numpy(), F.dropout(x, seed=5).numpy())
    assert not np.array_equal(F.dropout(x, seed=5).numpy(), F.dropout(x, seed=6).numpy())
    ta.manual_seed(3)
    first = [F.dropout(x).numpy() for _ in range(2)]
    ta.manual_seed(3)
    again = [F.dropout(x).numpy() for _ in range(2)]
    assert np.array_equal(first, again) and not np.array_equal(*first)


def test_gradient_flows_only_through_kept_units(rng):
    x = ta.tensor(rng.standard_normal((4, 5)), requires_grad=True)
    mask = rng.random((4, 5)) > 0.5
    # inverted dropout with a mask is test_dropout_with_a_given_mask's gradcheck
    assert ta.gradcheck(lambda x: F.dropout(x, 0.5, mode="paper", mask=mask), x)
    for mode, scale in (("inverted", 2.0), ("paper", 1.0)):
        x.grad = None
        F.dropout(x, 0.5, mode=mode, mask=ta.tensor(mask)).sum().backward()
        np.testing.assert_array_equal(x.grad, mask * scale)
    assert ta.gradcheck(lambda x: F.dropout(x, 0.5, training=False, mode="paper"), x)


def test_p_zero_and_evaluation_are_the_identity(rng):
    x = ta.tensor(rng.standard_normal((3, 4)))
    np.testing.assert_array_equal(F.dropout(x, 0.0).numpy(), x.numpy())
    np.testing.assert_array_equal(F.dropout(x, 0.0, mode="paper").numpy(), x.numpy())
    assert F.dropout(x, 0.5, training=False) is x


def test_bad_inputs():
    x = ta.tensor(np.ones((2, 3)))
    for p in (1.0, -0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match=rf"dropout: p .* must be in \[0, 1\), got {re.escape(repr(p))}$"):
            F.dropout(x, p)
    with pytest.raises(ValueError, match=r"dropout: mode must be one of \('inverted', 'paper'\), got 'scaled'"):
        F.dropout(x, mode="scaled")
    with pytest.raises(ValueError, match=r"dropout: mask must have the input's shape \(2, 3\), got \(3, 2\)"):
        F.dropout(x, mask=np.ones((3, 2)))
    assert F.dropout(x, mask=[[1, 0, 1], [0, 1, 0]]).numpy()[0, 1] == 0  # a nested list serves as a mask
    with pytest.raises(TypeError, match="dropout: expected a float32 or float64 tensor, got int64"):
        F.dropout(ta.tensor(np.ones(3, np.int64)))


MASK = np.random.default_rng(2).random((6, 7)) > 0.3

test_dropout_with_a_given_mask = op_tests(OpCase(
    "mask", lambda x: F.dropout(x, 0.3, mask=MASK), lambda rng: [rng.standard_normal((6, 7))],
    reference=lambda x: x * MASK / 0.7, atol=0))
