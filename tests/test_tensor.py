"""The autograd core: tensors, the backward walk (chain rule), no_grad, user-defined ops, devices and dtypes."""
import platform
import weakref

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import backend
from tinyalex import functional as F


class Square(ta.Function):
    """The user-defined op of the design document."""

    def forward(self, a):
        self.save_for_backward(a=a)
        return a * a

    def backward(self, gy):
        return (2 * self.saved.a * gy,)


# ------------------------------------------------------------------ making tensors
def test_dtypes_follow_pytorch_defaults():
    assert ta.tensor([1.0, 2.0]).dtype == np.float32           # Python floats -> float32
    assert ta.tensor(np.ones(2)).dtype == np.float64           # arrays keep their float dtype
    assert ta.tensor(np.ones(2, np.float32)).dtype == np.float32
    assert ta.tensor([1, 2]).dtype == np.int64
    assert ta.tensor([1, 2], dtype="float64").dtype == np.float64
    assert ta.tensor(np.ones(2), dtype="float32").dtype == np.float32


def test_float32_and_float64_do_not_mix_silently():
    """The Tensor docstring's rule: an op's floating inputs share one dtype; numbers take the tensor's."""
    x32, x64 = ta.tensor(np.ones((2, 2), np.float32)), ta.tensor(np.ones((2, 2)))
    for op, name in [(lambda: x32 + x64, "Add"), (lambda: x64 * x32, "Mul"), (lambda: x32 - np.ones(2), "Sub"),
                     (lambda: x64 / x32, "Div"), (lambda: x32 @ x64, "MatMul"), (lambda: F.concat([x32, x64]), "Concat")]:
        with pytest.raises(TypeError, match=f"{name}: inputs mix float32 and float64.*astype"):
            op()
    for y in (x32 * 2.0, 2.0 - x32, x32 / 3, x32 + np.float64(1.0), x32 * np.arange(2), np.arange(2) + x32,
              x32 * ta.tensor([1, 2])):
        assert y.dtype == np.float32
    assert (x64 * np.float32(2.0)).dtype == np.float64
    np.testing.assert_array_equal((ta.tensor([1, 2]) * 2.5).numpy(), np.array([2.5, 5.0], np.float32))


def test_description_and_conversions():
    x = ta.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert (x.shape, x.ndim, x.size, len(x), x.device) == ((2, 3), 2, 6, 2, "cpu")
    assert repr(x) == "Tensor(shape=(2, 3), dtype=float64, device='cpu', requires_grad=True)"
    assert "creator=Mul" in repr(x * 2.0)
    assert isinstance(x.numpy(), np.ndarray) and ta.tensor(np.array([4.5])).item() == 4.5
    d = x.detach()
    assert d.creator is None and not d.requires_grad and d.data is x.data
    assert x.astype("float32").dtype == np.float32


def test_bad_tensors():
    with pytest.raises(TypeError, match="only floating-point tensors can require grad, got int64"):
        ta.tensor([1, 2], requires_grad=True)
    with pytest.raises(TypeError, match="cannot make a tensor of dtype"):
        ta.tensor(["a"])
    with pytest.raises(ValueError, match="unknown device 'gpu'"):
        ta.tensor([1.0], device="gpu")
    with pytest.raises(TypeError, match="device must be a string"):
        ta.tensor([1.0], device=0)


# ------------------------------------------------------------------ a NumPy citizen (as a PyTorch CPU tensor)
def test_numpy_reads_a_cpu_tensor_as_its_data():
    data = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = ta.tensor(data)
    a = np.asarray(t)
    assert a is data                                                    # no copy where none is needed
    assert np.array(t, copy=True) is not data and np.asarray(t, dtype=np.float64).dtype == np.float64
    with pytest.raises(ValueError):                                     # as np.array(data, float64, copy=False)
        np.array(t, dtype=np.float64, copy=False)
    assert np.std(t) == pytest.approx(data.std())                       # NumPy converts through __array__
    np.testing.assert_array_equal(np.ones(3) + np.asarray(ta.tensor([1.0, 2.0, 3.0])), [2, 3, 4])


def test_numpy_functions_that_call_tensor_methods_give_tensors():
    data = np.arange(6.0).reshape(2, 3)
    t = ta.tensor(data, requires_grad=True)
    m = np.mean(t)                         # NumPy calls t.mean(axis=None, dtype=None, out=None)
    assert isinstance(m, ta.Tensor) and float(m) == 2.5 and m.requires_grad
    np.testing.assert_array_equal(np.sum(t, axis=0).numpy(), [3, 5, 7])
    assert np.transpose(t).shape == (3, 2) and np.reshape(t, (3, 2)).shape == (3, 2)
    with pytest.raises(TypeError, match=r"mean: dtype=float32 is not supported on a float64 tensor.*astype"):
        np.mean(t, dtype=np.float32)
    with pytest.raises(TypeError, match="sum: out= is not supported"):
        np.sum(t, out=np.zeros(()))


def test_matplotlib_shows_an_hwc_tensor():
    plt = pytest.importorskip("matplotlib.pyplot")
    image = np.random.default_rng(0).random((4, 5, 3)).astype(np.float32)
    fig = plt.figure()
    try:
        np.testing.assert_array_equal(plt.imshow(ta.tensor(image)).get_array(), image)
    finally:
        plt.close(fig)


def test_one_value_tensors_are_python_numbers():
    loss = ta.tensor(np.array(2.75))
    assert (float(loss), int(loss), loss.item(), bool(loss)) == (2.75, 2, 2.75, True)
    assert not ta.tensor([0.0]) and isinstance(ta.tensor([3]).item(), int)
    many = ta.tensor(np.ones((2, 3)))
    for convert in (float, int, ta.Tensor.item):
        with pytest.raises(ValueError, match=r"only a tensor with one value.*shape \(2, 3\)"):
            convert(many)
    with pytest.raises(ValueError, match=r"truth value of a tensor of shape \(2, 3\) \(6 values\) is ambiguous"):
        bool(many)


def test_comparisons_are_elementwise_boolean_tensors_outside_the_graph():
    x = ta.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    for result, expected in [(x == 2.0, [0, 1, 0]), (x != ta.tensor(np.array([1.0, 0.0, 3.0])), [0, 1, 0]),
                             (x < 2.0, [1, 0, 0]), (x <= 2.0, [1, 1, 0]), (2.0 < x, [0, 0, 1]),
                             (x >= np.array([3.0, 2.0, 1.0]), [0, 1, 1]), (np.array([3.0, 2.0, 1.0]) == x, [0, 1, 0])]:
        assert isinstance(result, ta.Tensor) and result.dtype == bool and not result.requires_grad
        np.testing.assert_array_equal(result.numpy(), np.array(expected, bool))
    assert not bool(ta.tensor([2]) == 2.5)  # an integer tensor is compared with 2.5, not with int(2.5)


def test_tensors_stay_hashable_by_identity():
    a, b = ta.tensor([1.0]), ta.tensor([1.0])  # equal values, two tensors
    assert len({a, b}) == 2 and {a: "a", b: "b"}[b] == "b"


@pytest.mark.gpu
def test_a_gpu_tensor_refuses_implicit_conversion_as_cupy_does():
    t = ta.tensor(np.ones(3), device="cuda")
    with pytest.raises(TypeError, match=r"call \.numpy\(\)"):
        np.asarray(t)
    assert float(t[0]) == 1.0 and np.array_equal(t.numpy(), np.ones(3))


@pytest.mark.skipif(backend.gpu_available(), reason="tests the message shown where there is no GPU")
def test_cuda_without_a_gpu_says_what_to_install():
    with pytest.raises(RuntimeError, match="device 'cuda'"):
        ta.tensor([1.0], device="cuda")


@pytest.mark.skipif(backend.gpu_available(), reason="tests the message shown where there is no GPU")
def test_an_array_from_cupy_is_never_taken_for_a_numpy_one(monkeypatch):
    # a CuPy array made before tinyalex was first asked for a GPU must still be seen as one
    fake_cupy_array = type("ndarray", (), {"__module__": "cupy._core.core"})()
    monkeypatch.setattr(backend, "_cupy", None)
    with pytest.raises(RuntimeError, match="needs CuPy"):
        backend.is_gpu_array(fake_cupy_array)
    assert not backend.is_gpu_array(np.ones(3))


# ------------------------------------------------------------------ the backward walk
def test_user_defined_function_and_default_grad_of_a_loss():
    x = ta.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    Square()(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, -4.0, 6.0])


def test_gradients_add_where_a_tensor_is_used_twice():
    """y = x*x + x: two paths from x to y, d y/d x = 2x + 1 (the chain rule's sum over paths)."""
    x = ta.tensor(np.array([1.0, 2.0]), requires_grad=True)
    h = x * x
    (h * h + h + x).sum().backward()   # a diamond through h, and a skip connection from x
    a = x.numpy()
    np.testing.assert_allclose(x.grad, 4 * a ** 3 + 2 * a + 1)


def test_grad_accumulates_across_backward_calls_until_cleared():
    x = ta.tensor(np.array([3.0]), requires_grad=True)
    for _ in range(2):
        (x * 5.0).sum().backward()
    assert x.grad.tolist() == [10.0]


def test_a_deep_chain_does_not_hit_the_recursion_limit():
    x = ta.tensor(np.array([1.0]), requires_grad=True)
    y = x
    for _ in range(3000):
        y = y * 1.0
    y.sum().backward()
    assert x.grad.tolist() == [1.0]


def test_only_tensors_requiring_grad_get_gradients_and_saved_arrays_are_freed():
    x, c = ta.tensor(np.ones(2), requires_grad=True), ta.tensor(np.ones(2))
    y = x * c
    fn = y.creator
    y.sum().backward()
    assert c.grad is None and x.grad is not None and fn.saved is None


def test_the_graph_keeps_what_backward_saved_not_every_activation():
    """A conv output before the ReLU is not needed by any backward (ReLU keeps its own output):
    it is freed as soon as nobody holds it, although the graph through it lives on."""
    x = ta.tensor(np.ones((2, 3)), requires_grad=True)
    h = x * 2.0
    h_values = weakref.ref(h.data)
    y = F.relu(h)
    del h
    assert h_values() is None
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, np.full((2, 3), 2.0))


def test_walking_a_graph_twice_is_a_clear_error():
    x = ta.tensor(np.ones(3), requires_grad=True)
    y = Square()(x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="already walked"):
        y.backward()


def test_a_saved_input_changed_in_place_stops_backward_instead_of_a_wrong_gradient():
    """y = x * x saves x; with x = 1 changed to 5 in place, backward would give 10 instead of 2."""
    x = ta.tensor(np.array([1.0]), requires_grad=True)
    y = x * x
    with ta.no_grad():
        x[...] = 5.0
    assert x.version == 1 and x.numpy().tolist() == [5.0]
    with pytest.raises(RuntimeError, match=r"input 0 \(1,\) of Mul, which its backward needs, was changed in place "
                                           r"after the forward pass \(version 0, now 1\)"):
        y.backward()
    with pytest.raises(RuntimeError, match="make it under no_grad"):
        x[0] = 1.0


def test_a_saved_output_changed_in_place_is_caught_too():
    x = ta.tensor(np.array([-1.0, 2.0]), requires_grad=True)
    y = F.relu(x)            # ReLU's backward reads its own output
    with ta.no_grad():
        y.detach()[0] = 3.0  # a detached twin shares the data and its count
    with pytest.raises(RuntimeError, match=r"output 0 \(2,\) of ReLU"):
        y.sum().backward()


def test_an_optimiser_step_after_backward_is_fine_one_before_is_caught(rng):
    net = ta.nn.Linear(3, 2)
    opt = ta.optim.SGD(net.parameters(), lr=0.1)
    x = ta.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    for _ in range(2):       # the ordinary loop: forward, backward, step
        opt.zero_grad()
        net(x).sum().backward()
        opt.step()
    first, second = net(x).sum(), net(x).sum() * 2.0
    first.backward()
    opt.step()               # the weights change under the second graph, which saved them
    with pytest.raises(RuntimeError, match="input 1 \\(2, 3\\) of Linear.*changed in place"):
        second.backward()
    net.load_state_dict(net.state_dict())
    assert net.weight.version == 4


def test_an_unused_output_gets_a_zero_gradient():
    x = ta.tensor(np.arange(4.0).reshape(1, 4), requires_grad=True)
    left, _ = F.split(x, 2)
    left.sum().backward()
    np.testing.assert_array_equal(x.grad, [[1, 1, 0, 0]])


def test_backward_needs_a_grad_for_non_scalars_of_the_right_shape():
    y = ta.tensor(np.ones(3), requires_grad=True) * 2.0
    with pytest.raises(ValueError, match="grad must be given for a tensor of shape"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad of shape \(2,\) given for a tensor of shape \(3,\)"):
        y.backward(np.ones(2))


def test_broken_backward_passes_are_reported():
    class TooFew(ta.Function):
        def forward(self, a, b):
            return a + b

        def backward(self, gy):
            return (gy,)

    class WrongShape(ta.Function):
        def forward(self, a):
            return a

        def backward(self, gy):
            return (gy.sum(),)

    x = ta.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="TooFew.backward returned 1 gradients for 2 inputs"):
        TooFew()(x, x).sum().backward()
    with pytest.raises(RuntimeError, match=r"WrongShape.backward gave a gradient of shape \(\) for an input of shape \(2,\)"):
        WrongShape()(x).sum().backward()


def test_a_function_knows_before_forward_which_inputs_need_a_gradient():
    seen = []

    class Watch(Square):
        def forward(self, a, b):
            seen.append(self.needs_input_grad)
            return a * b

    x, c = ta.tensor(np.ones(2), requires_grad=True), ta.tensor(np.ones(2))
    Watch()(x, c), Watch()(c, x)
    with ta.no_grad():
        Watch()(x, x)
    assert seen == [(True, False), (False, True), (False, False)]


def test_no_grad_records_nothing_and_is_restored_after_an_error():
    x = ta.tensor(np.ones(2), requires_grad=True)
    with ta.no_grad():
        assert not ta.is_grad_enabled()
        y = x * 2.0
    assert y.creator is None and not y.requires_grad
    with pytest.raises(ZeroDivisionError):
        with ta.no_grad():
            1 / 0
    assert ta.is_grad_enabled() and (x * 2.0).requires_grad


def test_float64_flows_through_end_to_end(rng):
    x = ta.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    w = ta.tensor(rng.standard_normal((2, 4)), requires_grad=True)
    loss = F.softmax_cross_entropy(F.tanh(F.linear(x, w)), [0, 1, 1])
    loss.backward()
    assert {loss.dtype, x.grad.dtype, w.grad.dtype} == {np.dtype("float64")}


# ------------------------------------------------------------------ devices
def test_moving_is_differentiable_and_gradients_come_back(rng, device):
    x = ta.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    y = x.to(device)
    assert y.device == backend.parse_device(device) and (y is x) == (device == "cpu")
    (Square()(y) * 3.0).sum().backward()
    assert backend.device_of(x.grad) == "cpu"
    np.testing.assert_allclose(x.grad, 6 * x.numpy(), rtol=1e-6)


@pytest.mark.gpu
def test_ops_refuse_inputs_on_two_devices():
    a, b = ta.tensor(np.ones(2)), ta.tensor(np.ones(2), device="cuda")
    with pytest.raises(ValueError, match=r"Add: inputs are on different devices \(cpu and cuda:0\)"):
        F.basic.Add()(a, b)


def test_keeping_freed_cpu_memory_changes_no_result(rng):
    """The allocator setting the tinyalex command makes (glibc only) speeds steps up and changes no value."""
    x = ta.tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    before = F.conv2d(x, x[:, :, :3, :3]).numpy()
    kept = backend.keep_freed_cpu_memory()
    assert kept == (platform.libc_ver()[0] == "glibc")
    np.testing.assert_array_equal(F.conv2d(x, x[:, :, :3, :3]).numpy(), before)
