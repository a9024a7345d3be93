"""The recorded graph's public watcher: it sees every op's forward and backward and every module call, while active."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F, graph, nn


class Calls(ta.Watcher):
    """Notes what each hook saw, in order."""

    def __init__(self):
        self.calls = []

    def on_forward(self, fn, inputs, outputs, seconds):
        self.calls.append(("forward", fn.label, [t.shape for t in inputs], [t.shape for t in outputs]))

    def on_backward(self, fn, grad_outputs, grad_inputs, seconds):
        self.calls.append(("backward", fn.label, [g.shape for g in grad_outputs],
                           [None if g is None else g.shape for g in grad_inputs]))

    def on_module(self, module, inputs, output):
        self.calls.append(("module", type(module).__name__, [t.shape for t in inputs], [output.shape]))


def test_a_watcher_sees_ops_forward_and_backward_and_module_calls_in_order(rng):
    layer = nn.Linear(3, 2)
    x = ta.tensor(rng.standard_normal((4, 3)), dtype="float32")
    with Calls() as watcher:
        F.relu(layer(x)).sum().backward()
    assert [c[:2] for c in watcher.calls] == [("forward", "Linear"), ("module", "Linear"), ("forward", "ReLU"),
                                              ("forward", "Sum"), ("backward", "Sum"), ("backward", "ReLU"),
                                              ("backward", "Linear")]
    # the gradient arriving, and those sent to x (none: x needs no gradient), W and b
    assert watcher.calls[-1][2:] == ([(4, 2)], [None, (2, 3), (2,)])


def test_a_watcher_is_removed_on_leaving_also_after_an_error_and_sees_nothing_outside(rng):
    watcher = Calls()
    with pytest.raises(ValueError, match="linear"):
        with watcher:
            F.relu(ta.tensor(np.ones(2)))
            F.linear(ta.tensor(np.ones((2, 3))), ta.tensor(np.ones((2, 2))))
    assert graph.watchers == [] and len(watcher.calls) == 1
    F.relu(ta.tensor(np.ones(2)))
    assert len(watcher.calls) == 1


def test_a_watcher_needs_only_the_hooks_it_uses(rng):
    class Forward(ta.Watcher):
        def __init__(self):
            self.labels = []

        def on_forward(self, fn, inputs, outputs, seconds):
            self.labels.append(fn.label)

    w = ta.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    with Forward() as watcher:
        (nn.ReLU()(w) * 2.0).sum().backward()
    assert watcher.labels == ["ReLU", "Mul", "Sum"] and w.grad is not None


class Returned(ta.Watcher):
    """Keeps the gradients each backward returned (a watcher that holds them: the engine must copy)."""

    def __init__(self):
        self.grads = {}

    def on_backward(self, fn, grad_outputs, grad_inputs, seconds):
        self.grads[fn.label] = grad_inputs


def test_a_fully_connected_layers_new_gradients_become_the_leaves_grads_without_a_copy(rng, monkeypatch):
    """Linear's backward makes new arrays, so the weight and bias take them as .grad (fc6's weight
    gradient is 151 MB); a gradient that a watcher has seen, or one that reaches two leaves, is
    copied, and each leaf's .grad is its own array either way."""
    from tinyalex.functional import basic
    returned = []
    backward = basic.Linear.backward
    monkeypatch.setattr(basic.Linear, "backward", lambda self, gy: returned.append(backward(self, gy)) or returned[-1])
    layer = nn.Linear(3, 2)
    x = ta.tensor(rng.standard_normal((4, 3)), dtype="float32")
    layer(x).sum().backward()
    (_, gW, gb), = returned
    assert layer.weight.grad is gW and layer.bias.grad is gb
    layer.zero_grad()
    with Returned() as watcher:
        layer(x).sum().backward()
    _, gW, gb = watcher.grads["Linear"]
    assert layer.weight.grad is not gW and np.array_equal(layer.weight.grad, gW)
    a, b = (ta.tensor(rng.standard_normal(3), requires_grad=True) for _ in range(2))
    (a + b).sum().backward()  # Add sends one array to both inputs
    assert not np.shares_memory(a.grad, b.grad) and np.array_equal(a.grad, b.grad)
