"""A trace records every op of the forward and the backward pass, with shapes, times and statistics."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex.tensor import _hooks


def small_step(rng, device="cpu"):
    x = ta.tensor(rng.standard_normal((4, 3)), device=device)
    w = ta.tensor(rng.standard_normal((5, 3)), device=device, requires_grad=True)
    loss = F.softmax_cross_entropy(F.relu(F.linear(x, w)), np.array([0, 1, 2, 3]))
    loss.backward()
    return x, w


def test_records_forward_then_backward_in_order(rng):
    with ta.trace() as t:
        x, w = small_step(rng)
    assert [(r.phase, r.name) for r in t.records] == [
        ("forward", "Linear"), ("forward", "ReLU"), ("forward", "SoftmaxCrossEntropy"),
        ("backward", "SoftmaxCrossEntropy"), ("backward", "ReLU"), ("backward", "Linear")]
    linear, relu, loss = t.records[:3]
    assert linear.input_shapes == [(4, 3), (5, 3)] and linear.output_shapes == [(4, 5)]
    assert loss.output_shapes == [()] and all(r.device == "cpu" and r.seconds >= 0 for r in t.records)
    y = x.numpy() @ w.numpy().T
    assert linear.mean == pytest.approx(y.mean(), rel=1e-12) and linear.std == pytest.approx(y.std(), rel=1e-12)
    back_linear = t.records[-1]
    assert back_linear.input_shapes == [(4, 5)] and back_linear.output_shapes == [(4, 3), (5, 3)]
    assert back_linear.mean is None and loss.grad_norm is None


def test_gradient_norm_covers_every_returned_gradient(rng):
    x = ta.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with ta.trace() as t:
        (x * 3.0).backward(np.ones((2, 3)))
    (record,) = [r for r in t.records if r.phase == "backward"]
    assert record.output_shapes == [(2, 3), ()]  # d/dx and d/d(the constant 3)
    expected = np.sqrt(6 * 3.0 ** 2 + x.numpy().sum() ** 2)
    assert record.grad_norm == pytest.approx(expected, rel=1e-12)


def test_table_is_printable_and_the_hook_is_removed(rng):
    with ta.trace() as t:
        small_step(rng)
    text = t.table()
    lines = text.splitlines()
    assert lines[0].split() == ["#", "phase", "op", "inputs", "outputs", "device", "ms", "mean", "std", "|grad|"]
    assert len(lines) == 2 + 6 + 1 and "4x3 5x3" in lines[2] and "scalar" in lines[4]
    assert lines[-1].startswith("forward ") and "backward " in lines[-1]
    assert _hooks == []


def test_hook_is_removed_after_an_error_and_nothing_is_recorded_outside(rng):
    with pytest.raises(ValueError):
        with ta.trace() as t:
            F.relu(ta.tensor(np.ones(2)))
            F.linear(ta.tensor(np.ones((2, 3))), ta.tensor(np.ones((2, 2))))
    assert _hooks == [] and len(t.records) == 1
    small_step(rng)
    assert len(t.records) == 1


def test_traces_on_the_gpu(rng, device):
    with ta.trace() as t:
        small_step(rng, device)
    assert len(t.records) == 6 and {r.device for r in t.records} == {ta.backend.parse_device(device)}
