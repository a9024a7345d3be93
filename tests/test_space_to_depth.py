"""A strided convolution is a stride-1 convolution over its input's polyphase components (space-to-depth)."""
import numpy as np
import pytest

import tinyalex as ta
from tinyalex import functional as F, threads
from tinyalex.functional import winograd
from tinyalex.functional.space_to_depth import SpaceToDepthWinograd2d, depth_to_space, space_to_depth


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("padding, H2", [((0, 0), 3), ((2, 1), 4), ((1, 3), 2)])  # fits, zero-filled, cut
def test_space_to_depth_stacks_the_polyphase_components_as_channels(rng, padding, H2, workers):
    """x'[n, c s^2 + p s + q, h, w] = x_padded[n, c, s h + p, s w + q], zeros outside x."""
    s, (N, C, H, W) = 3, (2, 2, 7, 8)
    a = rng.standard_normal((N, C, H, W))
    with threads.workers(workers):
        got = space_to_depth(a, s, padding, H2, H2 + 1)
    assert got.shape == (N, C * s * s, H2, H2 + 1)
    for n, c, p, q, h, w in np.ndindex(N, C, s, s, H2, H2 + 1):
        i, j = s * h + p - padding[0], s * w + q - padding[1]
        want = a[n, c, i, j] if 0 <= i < H and 0 <= j < W else 0.0
        assert got[n, c * s * s + p * s + q, h, w] == want


@pytest.mark.parametrize("padding, H2", [((0, 0), 3), ((2, 1), 4), ((1, 3), 2)])
def test_depth_to_space_is_the_adjoint_of_space_to_depth(rng, padding, H2):
    """<space_to_depth(a), g> = <a, depth_to_space(g)> for every a and g: backward's gradients are right."""
    s, shape = 3, (2, 2, 7, 8)
    a, g = rng.standard_normal(shape), rng.standard_normal((2, 18, H2, H2 + 1))
    back = depth_to_space(g, s, padding, *shape[2:])
    assert back.shape == shape
    np.testing.assert_allclose(np.vdot(space_to_depth(a, s, padding, H2, H2 + 1), g), np.vdot(a, back), rtol=1e-12)


CASES = [  # x shape, (O, C/groups, k), stride, padding, groups
    ((2, 3, 23, 23), (4, 3, 11), 4, (0, 0), 1),   # AlexNet's conv1, small: 12x12 taps, 3x3 over 48 channels
    ((2, 3, 22, 21), (4, 3, 11), 4, (2, 1), 1),   # torchvision's padding, the last pixels cut
    ((2, 4, 9, 9), (6, 2, 5), 2, (1, 1), 2),      # groups stay together: channel c s^2 + p s + q
    ((1, 3, 17, 17), (4, 3, 7), 3, (0, 0), 1),    # 7x7 at stride 3: 9x9 taps, 3x3 filters
    ((2, 2, 8, 8), (3, 2, 6), 2, (2, 2), 1),      # 6x6 at stride 2: 3x3 filters, no zero taps
]


@pytest.mark.parametrize("x_shape, w_shape, stride, padding, groups", CASES)
def test_a_strided_convolution_equals_winograd_over_the_space_to_depth(rng, x_shape, w_shape, stride, padding, groups):
    """y, gx, gW and gb of algorithm='winograd' at stride s equal im2col's (float64)."""
    O, Cg, k = w_shape
    x = ta.tensor(rng.standard_normal(x_shape), requires_grad=True)
    w = ta.tensor(rng.standard_normal((O, Cg, k, k)), requires_grad=True)
    b = ta.tensor(rng.standard_normal(O), requires_grad=True)
    results = []
    for algorithm in ("im2col", "winograd"):
        x.grad = w.grad = b.grad = None
        y = F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups, algorithm=algorithm)
        y.backward(np.cos(np.arange(y.size)).reshape(y.shape))
        results.append((y.numpy(), x.grad, w.grad, b.grad))
    assert type(y.creator) is SpaceToDepthWinograd2d
    assert (y.creator.label, y.creator.stride, y.creator.padding) == ("Conv2d", (stride, stride), padding)
    for want, got in zip(*results):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-10)


def test_strided_winograd_gradchecks(rng):
    x = ta.tensor(rng.standard_normal((1, 2, 9, 9)), requires_grad=True)
    w = ta.tensor(rng.standard_normal((2, 2, 5, 5)), requires_grad=True)
    b = ta.tensor(rng.standard_normal(2), requires_grad=True)
    assert ta.gradcheck(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, algorithm="winograd"), x, w, b)


def test_the_first_layer_computes_no_image_gradient(rng, monkeypatch):
    """conv1's images need no gradient: no correlation of gy with the flipped filters runs."""
    calls = []
    monkeypatch.setattr(winograd, "correlate", lambda *a, original=winograd.correlate, **kw: calls.append(1) or original(*a, **kw))
    w = ta.tensor(rng.standard_normal((4, 3, 11, 11)), requires_grad=True)
    y = F.conv2d(ta.tensor(rng.standard_normal((2, 3, 23, 23))), w, stride=4, algorithm="winograd")
    calls.clear()
    y.backward(np.ones(y.shape))
    assert calls == [] and w.grad is not None


def test_float32_alexnet_conv1_by_space_to_depth_stays_within_its_measured_error(rng):
    """One image through AlexNet's conv1 in float32, max relative error of y and gW against float64
    im2col: 3.7-4.4e-6 and 6.6-7.4e-6 measured on seeds 0-2 (F(5x5, 3x3) over 48 channels; float32
    im2col's: 4.4-5.7e-7). The tolerance is about 3x the worst."""
    x, w = rng.standard_normal((1, 3, 227, 227)), rng.standard_normal((96, 3, 11, 11)) * 0.05
    b, gy = rng.standard_normal(96), rng.standard_normal((1, 96, 55, 55))
    results = []
    for dtype, algorithm in (("float64", "im2col"), ("float32", "auto")):
        W = ta.tensor(w, dtype=dtype, requires_grad=True)
        y = F.conv2d(ta.tensor(x, dtype=dtype), W, ta.tensor(b, dtype=dtype), stride=4, algorithm=algorithm)
        y.backward(gy.astype(dtype))
        results.append((y.numpy(), W.grad))
    assert type(y.creator) is SpaceToDepthWinograd2d
    errors = [np.abs(got - want).max() / np.abs(want).max() for want, got in zip(*results)]
    assert max(errors) < 2e-5, errors
