"""The loop references themselves, checked against hand-worked examples and finite differences."""
import numpy as np

from tinyalex.functional import reference as R


def numeric_grad(f, a, eps=1e-6):
    """Central differences of the scalar f() with respect to every entry of a (changed in place)."""
    g = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        keep = a[i]
        a[i] = keep + eps
        up = f()
        a[i] = keep - eps
        g[i] = (up - f()) / (2 * eps)
        a[i] = keep
    return g


def test_conv_reference_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])        # x[i, j] - x[i+1, j+1] = -5 everywhere
    np.testing.assert_array_equal(R.conv2d_reference(x, w), -5 * np.ones((1, 1, 3, 3)))
    np.testing.assert_array_equal(R.conv2d_reference(x, w, np.array([5.0]), stride=2), np.zeros((1, 1, 2, 2)))
    ones = np.ones((1, 1, 3, 3))
    corner_sum = x[0, 0, :2, :2].sum()                  # padding 1: the top-left window holds 4 pixels
    assert R.conv2d_reference(x, ones, padding=1)[0, 0, 0, 0] == corner_sum


def test_conv_reference_groups_see_only_their_channels():
    x = np.stack([np.ones((3, 3)), 10 * np.ones((3, 3))])[None]   # channel 0 = 1, channel 1 = 10
    w = np.ones((2, 1, 3, 3))
    np.testing.assert_array_equal(R.conv2d_reference(x, w, groups=2).ravel(), [9.0, 90.0])


def test_conv_backward_reference_matches_finite_differences(rng):
    x, w, b = rng.standard_normal((2, 4, 5, 4)), rng.standard_normal((2, 2, 3, 2)), rng.standard_normal(2)
    gy = rng.standard_normal(R.conv2d_reference(x, w, b, (2, 1), 1, 2).shape)
    loss = lambda: np.vdot(gy, R.conv2d_reference(x, w, b, (2, 1), 1, 2))  # noqa: E731
    gx, gW, gb = R.conv2d_backward_reference(x, w, gy, (2, 1), 1, 2)
    for got, a in ((gx, x), (gW, w), (gb, b)):
        np.testing.assert_allclose(got, numeric_grad(loss, a), rtol=1e-6, atol=1e-8)


def test_pool_references_by_hand():
    x = np.arange(25.0).reshape(1, 1, 5, 5)
    np.testing.assert_array_equal(R.max_pool2d_reference(x, 3, 2)[0, 0], [[12, 14], [22, 24]])
    np.testing.assert_array_equal(R.avg_pool2d_reference(x, 3, 2)[0, 0], [[6, 8], [16, 18]])
    np.testing.assert_array_equal(R.max_pool2d_reference(-x, 2, 2, 1)[0, 0, 0], [0, -1, -3])   # -inf padding


def test_max_pool_backward_reference_routes_to_the_first_maximum():
    x = np.zeros((1, 1, 2, 2))
    gx = R.max_pool2d_backward_reference(x, np.array([[[[3.0]]]]), 2)
    np.testing.assert_array_equal(gx[0, 0], [[3, 0], [0, 0]])


def test_max_pool_backward_reference_matches_finite_differences(rng):
    x = rng.permutation(2 * 2 * 7 * 6).reshape(2, 2, 7, 6) / 10.0
    gy = rng.standard_normal(R.max_pool2d_reference(x, 3, 2, 1).shape)
    loss = lambda: np.vdot(gy, R.max_pool2d_reference(x, 3, 2, 1))  # noqa: E731
    np.testing.assert_allclose(R.max_pool2d_backward_reference(x, gy, 3, 2, 1), numeric_grad(loss, x), atol=1e-8)
