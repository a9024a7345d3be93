"""LRN follows the paper's formula (section 3.3) to the last digit; batch norm standardises per channel."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex import threads
from tinyalex.functional import normalization
from tinyalex.functional.normalization import lrn_params_from_caffe, lrn_params_from_pytorch
from tinyalex.functional.reference import lrn_reference

from conftest import OpCase, op_tests


def pixel(values, dtype="float64"):
    """One image, one pixel, the given channel values: shape (1, C, 1, 1)."""
    return ta.tensor(np.array(values, dtype=dtype).reshape(1, -1, 1, 1))


# ------------------------------------------------------------------ LRN
@pytest.mark.parametrize("n, expected", [
    # a = (1, 2, 3, 4), k = alpha = beta = 1: b_i = a_i / (1 + sum of a_j^2 over the window)
    (3, [1 / (1 + 1 + 4), 2 / (1 + 1 + 4 + 9), 3 / (1 + 4 + 9 + 16), 4 / (1 + 9 + 16)]),
    (5, [1 / (1 + 1 + 4 + 9), 2 / (1 + 1 + 4 + 9 + 16), 3 / (1 + 1 + 4 + 9 + 16), 4 / (1 + 4 + 9 + 16)]),
])
def test_lrn_worked_example_with_alpha_1_shows_the_window(n, expected):
    """alpha = 1 makes every a_j^2 in the window count: one channel too many or too few changes the digits."""
    y = F.lrn(pixel([1, 2, 3, 4]), n=n, k=1.0, alpha=1.0, beta=1.0)
    np.testing.assert_allclose(y.numpy().ravel(), expected, rtol=1e-15)


def test_lrn_alpha_is_not_divided_by_n():
    y = F.lrn(pixel([2.0]), n=5, k=2.0, alpha=1e-4, beta=0.75)  # one channel: b = a / (k + alpha a^2)^beta
    assert y.item() == pytest.approx(2.0 / (2.0 + 1e-4 * 4.0) ** 0.75, rel=1e-15)


@pytest.mark.parametrize("shape", [(2, 7, 3, 4), (1, 3, 2, 2), (2, 16, 5, 5), (1, 1, 2, 3)])
@pytest.mark.parametrize("n", [1, 3, 5])
def test_lrn_matches_the_loop_reference(rng, shape, n):
    x = rng.standard_normal(shape) * 3
    y = F.lrn(ta.tensor(x), n=n, k=1.0, alpha=0.5, beta=0.75)
    np.testing.assert_allclose(y.numpy(), lrn_reference(x, n, 1.0, 0.5, 0.75), rtol=1e-13)


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (1, 6, 2, 3), (2, 7, 1, 2)])  # C < n, even C, odd C
def test_lrn_gradcheck(rng, shape):
    x = ta.tensor(rng.standard_normal(shape), requires_grad=True)
    assert ta.gradcheck(lambda x: F.lrn(x, n=5, k=1.0, alpha=0.7, beta=0.75), x)
    # the paper's alpha, k: the cross-channel term of the gradient is ~1e-4 there, under gradcheck's
    # default tolerance (1e-5 + 1e-3 |g|), which would pass a backward without it; float64 allows 1e-8
    assert ta.gradcheck(lambda x: F.lrn(x, n=3, k=2.0, alpha=1e-4, beta=0.75), x, atol=1e-8, rtol=1e-6)


def test_lrn_a_chunk_of_images_at_a_time_on_threads_gives_the_bits_of_one_pass(rng, monkeypatch):
    """Every value's passes are its own: parts of the batch cut into chunks change no bit."""
    x = rng.standard_normal((11, 8, 40, 40)) * 3
    gy = rng.standard_normal(x.shape)

    def run():
        t = ta.tensor(x, requires_grad=True)
        y = F.lrn(t, n=5, k=2.0, alpha=1e-2, beta=0.75, groups=2)
        y.backward(gy)
        return y.numpy(), np.asarray(t.grad)

    with threads.workers(1):
        whole = run()
    monkeypatch.setattr(normalization, "CHUNK_BYTES", 3 * 4 * 40 * 40 * 8)  # 3 of the 22 groups' maps
    assert len(normalization.chunks(np.empty((22, 4, 40, 40)), slice(0, 11))) == 4
    with threads.workers(2):
        assert len(threads.slices(x)) == 2
        chunked = run()
    for a, b in zip(whole, chunked):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(whole[0][:, :4], lrn_reference(x[:, :4], 5, 2.0, 1e-2, 0.75), rtol=1e-13)


def test_lrn_in_two_groups_is_the_lrn_of_each_column_values_and_gradients(rng):
    """groups=2 computes what the paper's two GPUs computed, each normalising its own maps."""
    x = ta.tensor(rng.standard_normal((2, 8, 3, 3)) * 3, requires_grad=True)
    halves = [ta.tensor(h, requires_grad=True) for h in np.split(x.data, 2, axis=1)]
    y = F.lrn(x, n=5, k=1.0, alpha=0.7, beta=0.75, groups=2)
    ys = [F.lrn(h, n=5, k=1.0, alpha=0.7, beta=0.75) for h in halves]
    np.testing.assert_array_equal(y.numpy(), np.concatenate([h.numpy() for h in ys], axis=1))
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    for h, yh, g in zip(halves, ys, np.split(gy, 2, axis=1)):
        yh.backward(g)
    np.testing.assert_array_equal(x.grad, np.concatenate([h.grad for h in halves], axis=1))
    assert ta.gradcheck(lambda x: F.lrn(x, n=5, k=1.0, alpha=0.7, beta=0.75, groups=2), x)


def pytorch_documented_lrn(a, size, alpha, beta, k):
    """torch.nn.LocalResponseNorm as its documentation writes it (alpha averaged over the size)."""
    C = a.shape[1]
    sq = np.pad(a ** 2, [(0, 0), (size // 2, (size - 1) // 2), (0, 0), (0, 0)])
    window = sum(sq[:, d:d + C] for d in range(size))
    return a / (k + alpha / size * window) ** beta


def test_lrn_from_pytorch_and_caffe_parameters(rng):
    x = rng.standard_normal((2, 8, 3, 3)) * 4
    expected = pytorch_documented_lrn(x, size=5, alpha=5e-3, beta=0.75, k=1.0)
    for params in (lrn_params_from_pytorch(5, alpha=5e-3, beta=0.75, k=1.0),
                   lrn_params_from_caffe(local_size=5, alpha=5e-3, beta=0.75)):
        assert params == {"n": 5, "k": 1.0, "alpha": pytest.approx(1e-3), "beta": 0.75}
        np.testing.assert_allclose(F.lrn(ta.tensor(x), **params).numpy(), expected, rtol=1e-13)
    with pytest.raises(ValueError, match="lrn_params_from_pytorch: .* odd window size, got 4"):
        lrn_params_from_pytorch(4)


@pytest.mark.torch
def test_lrn_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 8, 3, 3)) * 4
    expected = torch.nn.LocalResponseNorm(5, alpha=5e-3, beta=0.75, k=2.0)(torch.from_numpy(x)).numpy()
    y = F.lrn(ta.tensor(x), **lrn_params_from_pytorch(5, alpha=5e-3, beta=0.75, k=2.0))
    np.testing.assert_allclose(y.numpy(), expected, rtol=1e-12)


def test_lrn_bad_inputs():
    with pytest.raises(ValueError, match=r"lrn: expected a 4-D input \(N, C, H, W\), got shape \(2, 3\)"):
        F.lrn(ta.tensor(np.ones((2, 3))))
    with pytest.raises(ValueError, match="lrn: n .* odd int, got 4"):
        F.lrn(pixel([1, 2]), n=4)
    with pytest.raises(ValueError, match="lrn: k must be positive .*, got k=0"):
        F.lrn(pixel([1, 2]), k=0)
    with pytest.raises(TypeError, match="lrn: expected a float32 or float64 tensor, got int64"):
        F.lrn(ta.tensor(np.ones((1, 2, 1, 1), np.int64)))


test_lrn_declared = op_tests(OpCase(
    "alpha-1e-2", lambda x: F.lrn(x, alpha=1e-2), lambda rng: [rng.standard_normal((2, 10, 6, 6)) * 3],
    reference=lambda x: lrn_reference(x, 5, 2.0, 1e-2, 0.75)))


# ------------------------------------------------------------------ batch norm
def bn_inputs(rng, shape, device="cpu", dtype="float64"):
    C = shape[1]
    x = ta.tensor(rng.standard_normal(shape) * 2 + 1, dtype=dtype, device=device, requires_grad=True)
    gamma = ta.tensor(rng.uniform(0.5, 1.5, C), dtype=dtype, device=device, requires_grad=True)
    beta = ta.tensor(rng.standard_normal(C), dtype=dtype, device=device, requires_grad=True)
    return x, gamma, beta


@pytest.mark.parametrize("shape", [(4, 3, 2, 2), (5, 3)])
def test_batch_norm_standardises_each_channel(rng, shape):
    x, gamma, beta = bn_inputs(rng, shape)
    ones, zeros = ta.tensor(np.ones(shape[1])), ta.tensor(np.zeros(shape[1]))
    y = F.batch_norm(x, ones, zeros).numpy()
    axes = (0, 2, 3) if len(shape) == 4 else (0,)
    np.testing.assert_allclose(y.mean(axis=axes), 0, atol=1e-12)
    np.testing.assert_allclose(y.var(axis=axes), 1, rtol=1e-4)  # 1 - eps / var
    affine = F.batch_norm(x, gamma, beta).numpy()
    shape_c = [1, -1] + [1] * (len(shape) - 2)
    np.testing.assert_allclose(affine, y * gamma.numpy().reshape(shape_c) + beta.numpy().reshape(shape_c),
                               rtol=1e-12, atol=1e-12)


# (4-D, training) is test_batch_norm_declared's gradcheck
@pytest.mark.parametrize("shape, training", [((4, 3, 2, 2), False), ((5, 3), True), ((5, 3), False)])
def test_batch_norm_gradcheck(rng, shape, training):
    x, gamma, beta = bn_inputs(rng, shape)
    mean, var = rng.standard_normal(shape[1]), rng.uniform(0.5, 2, shape[1])
    assert ta.gradcheck(lambda x, g, b: F.batch_norm(x, g, b, mean, var, training=training), x, gamma, beta)


def test_batch_norm_running_statistics(rng):
    x, gamma, beta = bn_inputs(rng, (6, 3, 2, 2))
    mean, var = np.zeros(3), np.ones(3)
    F.batch_norm(x, gamma, beta, mean, var, momentum=0.25)
    a = x.numpy()
    np.testing.assert_allclose(mean, 0.25 * a.mean(axis=(0, 2, 3)), rtol=1e-14)
    np.testing.assert_allclose(var, 0.75 + 0.25 * a.var(axis=(0, 2, 3), ddof=1), rtol=1e-14)
    y = F.batch_norm(x, gamma, beta, mean, var, training=False)  # evaluation uses them, leaves them
    expected = (a - mean.reshape(1, 3, 1, 1)) / np.sqrt(var.reshape(1, 3, 1, 1) + 1e-5)
    np.testing.assert_allclose(y.numpy(), expected * gamma.numpy().reshape(1, 3, 1, 1)
                               + beta.numpy().reshape(1, 3, 1, 1), rtol=1e-12)
    np.testing.assert_allclose(mean, 0.25 * a.mean(axis=(0, 2, 3)), rtol=1e-14)


def test_batch_norm_bad_inputs(rng):
    x, gamma, beta = bn_inputs(rng, (4, 3, 2, 2))
    with pytest.raises(ValueError, match=r"batch_norm: expected a 4-D .* or 2-D .*, got shape \(2, 3, 4\)"):
        F.batch_norm(ta.tensor(np.ones((2, 3, 4))), gamma, beta)
    with pytest.raises(ValueError, match=r"batch_norm: gamma must have shape \(3,\) .*, got \(4,\)"):
        F.batch_norm(x, ta.tensor(np.ones(4)), beta)
    with pytest.raises(ValueError, match=r"batch_norm: running_var must have shape \(3,\) .*, got \(2,\)"):
        F.batch_norm(x, gamma, beta, np.zeros(3), np.ones(2))
    with pytest.raises(ValueError, match="batch_norm: evaluation .* needs running_mean"):
        F.batch_norm(x, gamma, beta, training=False)
    with pytest.raises(ValueError, match=r"batch_norm: .* more than one value per channel, got shape \(1, 3\)"):
        F.batch_norm(ta.tensor(np.ones((1, 3))), gamma, beta)


def bn_arrays(rng):
    """x, gamma, beta and the running mean and variance (updated in place by the call) of 3 channels."""
    return [rng.standard_normal((4, 3, 5, 5)) * 2 + 1, rng.uniform(0.5, 1.5, 3), rng.standard_normal(3),
            np.zeros(3), np.ones(3)]


test_batch_norm_declared = op_tests(OpCase(
    "running-statistics", F.batch_norm, bn_arrays, grads=(0, 1, 2), atol=1e-5))
