"""Pooling: overlapping 3x3/2 max pooling as in the paper (section 3.4), its tie rule, and average pooling."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F
from tinyalex.functional.reference import avg_pool2d_reference, max_pool2d_backward_reference, max_pool2d_reference

from conftest import OpCase, op_tests

# (x shape, kernel_size, stride, padding)
CASES = [
    ((2, 3, 7, 7), 3, 2, 0),              # the paper's overlapping pool
    ((2, 3, 8, 9), 3, 2, 1),              # padded, odd width
    ((1, 2, 6, 6), 2, None, 0),           # stride defaults to the kernel: non-overlapping
    ((2, 2, 7, 6), (3, 2), (2, 1), (1, 1)),
    ((3, 2, 10, 9), 2, 3, 1),             # stride larger than the kernel: pixels no window reads
]


def tie_free(rng, shape):
    """Distinct values (a shuffled ramp): no window has two maxima, so max pooling is differentiable.

    All negative, so that a padding of zeros (instead of -inf) would win every window it reaches.
    """
    return -1.0 - rng.permutation(np.prod(shape)).reshape(shape) / 10.0


def test_overlapping_pooling_shrinks_55_27_13_6():
    x = ta.tensor(np.zeros((1, 1, 55, 55)))
    sizes = []
    for _ in range(3):
        x = F.max_pool2d(x, 3, 2)
        sizes.append(x.shape[2])
    assert sizes == [27, 13, 6]


@pytest.mark.parametrize("shape, k, s, p", CASES)
def test_max_pool_matches_the_loop_reference(rng, shape, k, s, p):
    x = ta.tensor(tie_free(rng, shape), requires_grad=True)
    y = F.max_pool2d(x, k, s, p)
    np.testing.assert_array_equal(y.numpy(), max_pool2d_reference(x.data, k, s, p))
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    # the CPU's backward adds window by window, as the loop does: the same bits
    np.testing.assert_array_equal(x.grad, max_pool2d_backward_reference(x.data, gy, k, s, p))


@pytest.mark.parametrize("shape, k, s, p", [((5, 3, 12, 12), 3, 2, 0), ((5, 2, 11, 13), 3, 2, 1)])
def test_max_pool_forward_in_chunks_of_images_matches_the_loop_reference(rng, monkeypatch, shape, k, s, p):
    """Forward copies a chunk of images at a time into its polyphase components (``CHUNK_BYTES``): with
    room for two images, 5 images go as 2 + 2 + 1 on one thread, ties included."""
    from tinyalex import threads
    from tinyalex.functional import pooling
    from tinyalex.functional.im2col import phases
    x = rng.integers(0, 3, shape).astype(np.float32)
    H, W = shape[2] + 2 * p, shape[3] + 2 * p
    monkeypatch.setattr(pooling, "CHUNK_BYTES", 2 * s * s * shape[1] * -(-H // s) * -(-W // s) * x.itemsize)
    chunks = []
    monkeypatch.setattr(pooling, "phases", lambda xc, *a, **kw: chunks.append(len(xc)) or phases(xc, *a, **kw))
    with threads.workers(1):
        y = F.max_pool2d(ta.tensor(x, requires_grad=True), k, s, p)
    assert chunks == [2, 2, 1]
    np.testing.assert_array_equal(y.numpy(), max_pool2d_reference(x, k, s, p))
    gy = rng.integers(-50, 50, y.shape).astype(np.float32)
    np.testing.assert_array_equal(y.creator.to_winners(gy), max_pool2d_backward_reference(x, gy, k, s, p))


def test_max_pool_backward_keeps_the_window_corners_of_a_shape_read_only(rng):
    from tinyalex.functional import pooling
    pooling.window_corners.cache_clear()
    for _ in range(2):
        y = F.max_pool2d(ta.tensor(rng.standard_normal((2, 3, 7, 7)), requires_grad=True), 3, 2)
        y.backward(np.ones(y.shape))
    assert pooling.window_corners.cache_info().hits == 1
    corners = pooling.window_corners(6, 7, 7, 3, 3, 2, 2)
    assert not corners.flags.writeable and corners[[0, 1, 3, 9]].tolist() == [0, 2, 14, 49]


@pytest.mark.parametrize("shape, k, s, p", CASES)
def test_max_pool_backward_by_taps_equals_the_scatter_to_winners(rng, shape, k, s, p):
    """The GPU's backward (one masked add per kernel offset) and the CPU's (one scatter to the winners)
    send every gradient to the same pixel, ties included (integer gradients: sums are exact)."""
    x = ta.tensor(rng.integers(0, 3, shape).astype(np.float32), requires_grad=True)  # many ties
    y = F.max_pool2d(x, k, s, p)
    gy = rng.integers(-50, 50, y.shape).astype(np.float32)
    np.testing.assert_array_equal(y.creator.by_taps(gy), y.creator.to_winners(gy))
    np.testing.assert_array_equal(y.creator.to_winners(gy), max_pool2d_backward_reference(x.data, gy, k, s, p))


@pytest.mark.parametrize("shape, k, s, p", CASES)
def test_max_pool_gradcheck_on_tie_free_inputs(rng, shape, k, s, p):
    assert ta.gradcheck(lambda x: F.max_pool2d(x, k, s, p), ta.tensor(tie_free(rng, shape), requires_grad=True))


def test_max_pool_tie_rule_first_maximum_in_row_major_order_takes_all(rng):
    """Ties go to the first maximum of the window (smallest row, then smallest column), like np.argmax."""
    x = np.zeros((1, 1, 5, 5))
    x[0, 0, 1, 2] = x[0, 0, 2, 1] = 7.0      # one window, two maxima: (1, 2) comes first in row-major order
    x[0, 0, 4, 4] = 1.0
    t = ta.tensor(x, requires_grad=True)
    y = F.max_pool2d(t, 3, 2)
    gy = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    y.backward(gy)
    want = np.zeros((5, 5))
    want[1, 2] = 1 + 10                       # windows (0,0) and (0,1) both see it first
    want[2, 1] = 100                          # window (1,0) starts at row 2: (2,1) is its first 7
    want[4, 4] = 1000                         # window (1,1) holds (2,2..4,4): 1 beats the zeros
    np.testing.assert_array_equal(t.grad[0, 0], want)
    all_zero, gy = ta.tensor(np.zeros((2, 3, 7, 7)), requires_grad=True), np.ones((2, 3, 3, 3))
    F.max_pool2d(all_zero, 3, 2).backward(gy)
    np.testing.assert_array_equal(all_zero.grad, max_pool2d_backward_reference(all_zero.data, gy, 3, 2))


def test_max_pool_padding_never_wins():
    x = ta.tensor(-np.ones((1, 1, 4, 4)))
    np.testing.assert_array_equal(F.max_pool2d(x, 3, 2, 1).numpy(), -np.ones((1, 1, 2, 2)))


@pytest.mark.parametrize("shape, k, s, p", CASES)
def test_avg_pool_matches_the_reference_and_gradchecks(rng, shape, k, s, p):
    x = ta.tensor(rng.standard_normal(shape), requires_grad=True)
    np.testing.assert_allclose(F.avg_pool2d(x, k, s, p).numpy(), avg_pool2d_reference(x.data, k, s, p), rtol=1e-12)
    assert ta.gradcheck(lambda x: F.avg_pool2d(x, k, s, p), x)


def test_avg_pool_counts_padding_in_the_mean():
    y = F.avg_pool2d(ta.tensor(np.ones((1, 1, 2, 2))), 2, 1, 1)
    np.testing.assert_allclose(y.numpy()[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
def test_pooling_keeps_float32(rng, pool):
    x = ta.tensor(rng.standard_normal((2, 3, 7, 7)), dtype="float32", requires_grad=True)
    y = pool(x, 3, 2)
    y.backward(np.ones(y.shape, np.float32))
    assert y.dtype == x.grad.dtype == np.float32


@pytest.mark.parametrize("pool", [F.max_pool2d, F.avg_pool2d])
@pytest.mark.parametrize("x, args, error, match", [  # the op, what it expected, what it got
    (np.zeros((3, 7, 7)), (3, 2), ValueError, r"4-D input \(N, C, H, W\), got shape \(3, 7, 7\)"),
    (np.zeros((1, 3, 7, 7), np.int64), (3, 2), TypeError, "float32 or float64 tensor, got int64"),
    (np.zeros((1, 3, 7, 7), np.float16), (3, 2), TypeError, "float32 or float64 tensor, got float16"),
    (np.zeros((1, 3, 2, 2)), (3, 2), ValueError, r"kernel size 3 is larger than the padded input \(2 \+ 2\*0 = 2\)"),
    (np.zeros((1, 3, 7, 7)), (3, 0), ValueError, "stride must be positive, got 0"),
    (np.zeros((1, 3, 7, 7)), (0, 1), ValueError, r"kernel_size must be positive, got \(0, 0\)"),
    (np.zeros((1, 3, 7, 7)), (3, 2, -1), ValueError, "padding must not be negative, got -1"),
    (np.zeros((1, 3, 7, 7)), ((3, 3, 3), 2), TypeError,
     r"kernel_size must be an int or a pair of ints, got \(3, 3, 3\)"),
])
def test_pooling_bad_inputs(pool, x, args, error, match):
    with pytest.raises(error, match=f"{pool.__name__}: .*{match}"):
        pool(ta.tensor(x), *args)


def test_max_pool_padding_at_most_half_the_kernel():
    with pytest.raises(ValueError, match=r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(3, 3\)"):
        F.max_pool2d(ta.tensor(np.zeros((1, 1, 8, 8))), 3, 2, 2)


test_pooling_declared = op_tests(
    OpCase("max", lambda x: F.max_pool2d(x, 3, 2, 1), lambda rng: [tie_free(rng, (2, 3, 9, 9))],
           reference=lambda x: max_pool2d_reference(x, 3, 2, 1)),
    OpCase("avg", lambda x: F.avg_pool2d(x, 3, 2, 1), lambda rng: [tie_free(rng, (2, 3, 9, 9))],
           reference=lambda x: avg_pool2d_reference(x, 3, 2, 1)))


@pytest.mark.torch
@pytest.mark.parametrize("shape, k, s, p", CASES)
def test_pooling_agrees_with_pytorch(rng, shape, k, s, p):
    torch = pytest.importorskip("torch")
    for ours, theirs in ((F.max_pool2d, torch.nn.functional.max_pool2d), (F.avg_pool2d, torch.nn.functional.avg_pool2d)):
        x = ta.tensor(tie_free(rng, shape), requires_grad=True)
        y = ours(x, k, s, p)
        gy = rng.standard_normal(y.shape)
        y.backward(gy)
        tx = torch.tensor(x.data, requires_grad=True)
        ty = theirs(tx, k, s, p)
        ty.backward(torch.tensor(gy))
        np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12)
        np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_numpy_integers_serve_as_sizes():
    x = ta.tensor(np.arange(49.0).reshape(1, 1, 7, 7))
    np.testing.assert_array_equal(F.max_pool2d(x, np.int64(3), (np.int32(2), 2)).numpy(), F.max_pool2d(x, 3, 2).numpy())


def test_max_pool_backward_gives_the_same_bits_on_every_run(rng, device):
    """A pixel that wins several overlapping 3x3/2 windows collects their gradients by masked adds in a
    fixed order, not by an atomic scatter: a GPU run repeats bit for bit."""
    x = ta.tensor(tie_free(rng, (4, 3, 13, 13)), dtype="float32", device=device, requires_grad=True)
    gy = ta.tensor(rng.standard_normal((4, 3, 6, 6)), dtype="float32", device=device)
    grads = []
    for _ in range(3):
        x.grad = None
        F.max_pool2d(x, 3, 2).backward(gy)
        grads.append(ta.backend.to_numpy(x.grad))
    assert all(np.array_equal(grads[0].view(np.uint32), g.view(np.uint32)) for g in grads[1:])
