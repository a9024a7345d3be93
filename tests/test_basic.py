"""Basic ops and activations: NumPy's answers forward, finite differences backward, clear errors for bad inputs."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F

from conftest import OpCase, op_tests


def t64(rng, *shape, low=None):
    """A float64 tensor requiring grad; with ``low``, its magnitudes are at least ``low`` (away from kinks)."""
    a = rng.standard_normal(shape)
    if low is not None:
        a = np.sign(a) * (np.abs(a) + low)
    return ta.tensor(a, requires_grad=True)


# ------------------------------------------------------------------ elementwise, broadcasting
@pytest.mark.parametrize("op, ref", [(F.add, np.add), (F.sub, np.subtract), (F.mul, np.multiply),
                                     (F.div, np.divide)])
@pytest.mark.parametrize("shapes", [((3, 4), (3, 4)), ((3, 1), (4,)), ((2, 3, 4), (1, 4)), ((), (2, 2))])
def test_elementwise_broadcasts_and_sums_gradients_back(rng, op, ref, shapes):
    a, b = t64(rng, *shapes[0]), t64(rng, *shapes[1], low=0.5)  # b away from 0 for div
    np.testing.assert_array_equal(op(a, b).numpy(), ref(a.numpy(), b.numpy()))
    assert ta.gradcheck(op, a, b)


def test_operators_and_constants(rng):
    a = t64(rng, 2, 3)
    x = a.numpy()
    np.testing.assert_array_equal((2.0 - a * 3.0 + 1.0).numpy(), 2.0 - x * 3.0 + 1.0)
    np.testing.assert_array_equal((np.ones(3) * a).numpy(), x)  # ndarray * Tensor is a Tensor op
    np.testing.assert_array_equal((-a / 2.0).numpy(), -x / 2.0)
    assert (ta.tensor([1.0], dtype="float32") * 3.0).dtype == np.float32  # numbers take the tensor's dtype


# ------------------------------------------------------------------ reductions and products
@pytest.mark.parametrize("axis, keepdims", [(None, False), (0, False), (-1, True), ((0, 2), False)])
def test_sum_and_mean(rng, axis, keepdims):
    x = t64(rng, 2, 3, 4)
    np.testing.assert_allclose(F.sum(x, axis, keepdims).numpy(), x.numpy().sum(axis=axis, keepdims=keepdims))
    np.testing.assert_allclose(x.mean(axis, keepdims).numpy(), x.numpy().mean(axis=axis, keepdims=keepdims))
    assert ta.gradcheck(lambda x: F.sum(x, axis, keepdims), x)
    assert ta.gradcheck(lambda x: F.mean(x, axis, keepdims), x)


def test_matmul_and_linear(rng):
    a, b = t64(rng, 3, 4), t64(rng, 4, 5)
    np.testing.assert_allclose((a @ b).numpy(), a.numpy() @ b.numpy())
    assert ta.gradcheck(F.matmul, a, b)
    x, w, bias = t64(rng, 3, 4), t64(rng, 5, 4), t64(rng, 5)
    np.testing.assert_allclose(F.linear(x, w, bias).numpy(), x.numpy() @ w.numpy().T + bias.numpy())
    assert ta.gradcheck(F.linear, x, w, bias)
    assert ta.gradcheck(F.linear, x, w)


@pytest.mark.parametrize("op", [F.matmul, F.linear, F.mul, F.div])
def test_backward_skips_the_gradient_of_an_input_that_needs_none(rng, op):
    """The weight's product is made, the constant input's is not (its slot is None, not a discarded array)."""
    x, w = ta.tensor(rng.standard_normal((3, 3))), t64(rng, 3, 3)
    for inputs, needed in (((x, w), (False, True)), ((w, x), (True, False))):
        grads = op(*inputs).creator.backward(np.ones((3, 3)))
        assert [g is not None for g in grads] == list(needed)


def test_matmul_and_linear_bad_inputs(rng):
    a = ta.tensor(np.ones((3, 4)))
    with pytest.raises(ValueError, match=r"matmul: expected \(M, K\) @ \(K, N\), got \(3, 4\) @ \(3, 4\)"):
        F.matmul(a, a)
    with pytest.raises(TypeError, match="matmul: expected a float32 or float64 tensor, got int64"):
        F.matmul(ta.tensor(np.ones((3, 4), np.int64)), a.T)
    with pytest.raises(ValueError, match="linear: expected a 2-D input"):
        F.linear(ta.tensor(np.ones((2, 3, 4))), a)
    with pytest.raises(ValueError, match=r"linear: input has 3 features but the weight \(3, 4\) expects 4"):
        F.linear(ta.tensor(np.ones((2, 3))), a)
    with pytest.raises(ValueError, match=r"linear: bias must have shape \(3,\), got \(4,\)"):
        F.linear(ta.tensor(np.ones((2, 4))), a, np.ones(4))
    with pytest.raises(TypeError, match="linear: input, weight and bias must share one dtype, got float32, float64"):
        F.linear(ta.tensor(np.ones((2, 3), np.float32)), ta.tensor(np.ones((4, 3))))


# ------------------------------------------------------------------ shapes
def test_reshape_flatten_transpose_getitem(rng):
    x = t64(rng, 2, 3, 4)
    assert F.flatten(x).shape == (2, 12) and x.reshape(4, -1).shape == (4, 6) and x.reshape((24,)).shape == (24,)
    np.testing.assert_array_equal(x.transpose(2, 0, 1).numpy(), x.numpy().transpose(2, 0, 1))
    assert x.T.shape == (4, 3, 2) and x.transpose((2, 0, 1)).shape == x.transpose(2, 0, 1).shape == (4, 2, 3)
    for fn in (F.flatten, lambda x: x.reshape(4, -1), lambda x: x.transpose(1, 2, 0),
               lambda x: x.transpose(-1, 0, 1), lambda x: x.T):
        assert ta.gradcheck(fn, x)
    with pytest.raises(ValueError, match="flatten: expected at least 2 dimensions"):
        F.flatten(ta.tensor(np.ones(3)))


def test_getitem_gradient_adds_up_for_repeated_indices(rng):
    x = t64(rng, 4, 3)
    rows = np.array([0, 2, 2, 3])
    x[rows].sum().backward()
    np.testing.assert_array_equal(x.grad, np.array([1, 0, 2, 1])[:, None] * np.ones((1, 3)))
    assert ta.gradcheck(lambda x: x[rows, 1:], x)


def test_concat_and_split_are_inverse_and_differentiable(rng):
    """The two columns of the paper (3.2): split the channels, work apart, join them again."""
    x = t64(rng, 2, 6, 3)
    halves = F.split(x, 2)
    assert [h.shape for h in halves] == [(2, 3, 3)] * 2
    np.testing.assert_array_equal(F.concat(halves).numpy(), x.numpy())
    assert ta.gradcheck(lambda x: F.concat([h * (i + 1.0) for i, h in enumerate(F.split(x, [1, 4]))]), x)
    assert ta.gradcheck(lambda a, b: F.concat([a, b], axis=-1), t64(rng, 2, 3), t64(rng, 2, 5))


def test_concat_and_split_bad_inputs():
    with pytest.raises(ValueError, match="concat: expected at least one tensor"):
        F.concat([])
    with pytest.raises(ValueError, match=r"concat: shapes \(2, 3\) and \(3, 3\) differ outside axis 1"):
        F.concat([ta.tensor(np.ones((2, 3))), ta.tensor(np.ones((3, 3)))])
    with pytest.raises(ValueError, match="split: axis 1 of size 5 cannot be split into 2 equal parts"):
        F.split(ta.tensor(np.ones((2, 5))), 2)
    with pytest.raises(ValueError, match="concat: axis 2 is out of range"):
        F.concat([ta.tensor(np.ones((2, 3)))] * 2, axis=2)


def test_reshape_bad_shape_names_the_op():
    x = ta.tensor(np.ones((2, 3, 4)))
    for shape in ((5, 5), (-1, -1), (5, -1), (0, -1)):
        with pytest.raises(ValueError, match="reshape: cannot arrange the 24 values"):
            x.reshape(shape)
    assert x.reshape(6, -1).shape == (6, 4) and x.reshape(2, 12).shape == (2, 12)


# ------------------------------------------------------------------ activations (paper 3.1)
def test_relu_tanh_sigmoid_match_their_formulas(rng):
    x = rng.standard_normal((3, 4)) * 3
    np.testing.assert_array_equal(F.relu(ta.tensor(x)).numpy(), np.maximum(x, 0))
    np.testing.assert_allclose(F.tanh(ta.tensor(x)).numpy(), np.tanh(x), rtol=1e-15)
    np.testing.assert_allclose(F.sigmoid(ta.tensor(x)).numpy(), 1 / (1 + np.exp(-x)), rtol=1e-14)


@pytest.mark.parametrize("op", [F.relu, F.tanh, F.sigmoid])
def test_activation_gradcheck(rng, op):
    assert ta.gradcheck(op, t64(rng, 3, 5, low=0.1))  # away from ReLU's kink at 0


def test_relu_derivative_at_zero_is_zero():
    x = ta.tensor(np.array([-1.0, 0.0, 2.0]), requires_grad=True)
    F.relu(x).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0])


def test_relu_of_a_number_is_a_number_with_its_gradient():
    x = ta.tensor(np.float64(-2.0), requires_grad=True)
    y = F.relu(x)
    assert y.shape == () and y.item() == 0.0
    (F.relu(x * -1.0) * 3.0).backward()
    assert x.grad.shape == () and x.grad == -3.0


def test_sigmoid_saturates_without_overflow():
    x = ta.tensor(np.array([-1000.0, 0.0, 1000.0]), requires_grad=True)
    with np.errstate(over="raise"):
        y = F.sigmoid(x)
        y.sum().backward()
    np.testing.assert_array_equal(y.numpy(), [0.0, 0.5, 1.0])
    np.testing.assert_array_equal(x.grad, [0.0, 0.25, 0.0])  # the vanishing gradient ReLU avoids


@pytest.mark.parametrize("op", [F.relu, F.tanh, F.sigmoid])
def test_activations_refuse_integer_tensors(op):
    with pytest.raises(TypeError, match=f"{op.__name__}: expected a float32 or float64 tensor, got int64"):
        op(ta.tensor([1, 2]))


# ------------------------------------------------------------------ declared: device parity, reference, gradcheck
def _chain(x, w):
    """linear, the three activations, operators, split/concat and [] in one graph."""
    return F.concat(F.split(F.sigmoid(F.relu(F.tanh(F.linear(x, w)))) * 2.0 + 1.0, [1]), axis=1)[1:]


def _chain_formula(x, w):
    return 2.0 / (1.0 + np.exp(-np.maximum(np.tanh(x @ w.T), 0))) + 1.0


test_basic_ops = op_tests(OpCase(
    "chain", _chain, lambda rng: [rng.standard_normal((4, 6)), rng.standard_normal((3, 6))],
    reference=lambda x, w: _chain_formula(x, w)[1:], atol=1e-7))
