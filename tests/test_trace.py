"""A trace records every op of the forward and the backward pass, with shapes, times and statistics."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F, nn
from tinyalex.models.alexnet import TwoColumnNet
from tinyalex.nn import module
from tinyalex.graph import watchers


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
    # no gradient for the data x, which needs none: only the weight's product is made
    assert back_linear.input_shapes == [(4, 5)] and back_linear.output_shapes == [None, (5, 3)]
    assert back_linear.mean is None and loss.grad_norm is None


def test_gradient_norm_covers_every_returned_gradient(rng):
    x = ta.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    c = ta.tensor(np.array(3.0), requires_grad=True)  # a constant would get no gradient at all
    with ta.trace() as t:
        (x * c).backward(np.ones((2, 3)))
    (record,) = [r for r in t.records if r.phase == "backward"]
    assert record.output_shapes == [(2, 3), ()]  # d/dx and d/dc
    expected = np.sqrt(6 * 3.0 ** 2 + x.numpy().sum() ** 2)
    assert record.grad_norm == pytest.approx(expected, rel=1e-12)


def test_table_is_printable_and_the_hook_is_removed(rng):
    with ta.trace() as t:
        small_step(rng)
    text = t.table()
    lines = text.splitlines()
    assert lines[0].split() == ["#", "phase", "op", "module", "inputs", "outputs", "device", "ms", "mean", "std",
                                "|grad|"]
    assert len(lines) == 2 + 6 + 1 and "4x3 5x3" in lines[2] and "scalar" in lines[4]
    assert lines[-1].startswith("forward ") and "backward " in lines[-1]
    assert watchers == []


def test_hook_is_removed_after_an_error_and_nothing_is_recorded_outside(rng):
    with pytest.raises(ValueError):
        with ta.trace() as t:
            F.relu(ta.tensor(np.ones(2)))
            F.linear(ta.tensor(np.ones((2, 3))), ta.tensor(np.ones((2, 2))))
    assert watchers == [] and len(t.records) == 1
    small_step(rng)
    assert len(t.records) == 1


def test_rows_name_the_module_path_so_a_column_can_be_followed(rng):
    """Two columns with layers of the same names: each row says which column's layer ran the op."""
    def column():
        return nn.Sequential({"conv1": nn.Conv2d(3, 2, 3), "relu1": nn.ReLU(), "flatten": nn.Flatten()})
    net = nn.Sequential({"features": TwoColumnNet([column(), column()], crossings=()), "fc": nn.Linear(16, 2)})
    x = ta.tensor(rng.standard_normal((1, 3, 4, 4)).astype(np.float32))
    with ta.trace() as t:
        net(x).sum().backward()
    forward = [(r.name, r.module) for r in t.records if r.phase == "forward"]
    assert forward[:2] == [("Conv2d", "features.columns.0.conv1"), ("Conv2d", "features.columns.1.conv1")]
    assert ("ReLU", "features.columns.1.relu1") in forward and ("Linear", "fc") in forward
    assert ("Concat", "features") in forward  # the columns' outputs meet in TwoColumnNet's own forward
    backward = {r.module for r in t.records if r.phase == "backward" and r.name == "Conv2d"}
    assert backward == {"features.columns.0.conv1", "features.columns.1.conv1"}
    assert "features.columns.1.conv1" in t.table() and module._call_stack == []


def test_module_paths_are_kept_only_while_tracing(rng):
    net = nn.Sequential(nn.Linear(3, 2), nn.ReLU())
    seen = []
    net[1].forward = lambda x: seen.append(list(module._call_stack)) or F.relu(x)
    net(ta.tensor(np.ones((1, 3), np.float32)))
    with pytest.raises(ValueError), ta.trace():
        net(ta.tensor(np.ones((1, 4), np.float32)))  # Linear refuses 4 features: the stack still unwinds
    assert seen == [[]] and module._call_stack == []


def test_traces_on_the_gpu(rng, device):
    with ta.trace() as t:
        small_step(rng, device)
    assert len(t.records) == 6 and {r.device for r in t.records} == {ta.backend.parse_device(device)}
