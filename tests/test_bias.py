"""A convolution's bias gradient: each map's gy summed over the images and pixels, on any threads."""
import numpy as np
import pytest

from tinyalex import threads
from tinyalex.functional.bias import bias_gradient


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_bias_gradient_sums_each_map_over_images_and_pixels_on_any_threads(rng, workers):
    gy = rng.standard_normal((7, 8, 64, 64))
    with threads.workers(workers):
        assert len(threads.slices(gy)) == workers  # the parts are really cut
        gb = bias_gradient(gy)
    loop = np.array([sum(gy[n, o].sum() for n in range(7)) for o in range(8)])
    np.testing.assert_allclose(gb, loop, rtol=1e-12)
    assert gb.shape == (8,) and gb.dtype == gy.dtype


def test_bias_gradient_of_a_strided_gy_and_in_float32(rng):
    gy = rng.standard_normal((6, 5, 40, 40))
    with threads.workers(2):
        strided = bias_gradient(gy.transpose(0, 1, 3, 2))  # not C-contiguous: reshaped by a copy
        single = bias_gradient(gy.astype(np.float32))
    np.testing.assert_allclose(strided, gy.sum(axis=(0, 2, 3)), rtol=1e-12)
    assert single.dtype == np.float32
    np.testing.assert_allclose(single, gy.sum(axis=(0, 2, 3)), rtol=1e-4, atol=1e-3)


def test_bias_gradient_of_no_images_is_zero():
    assert np.array_equal(bias_gradient(np.zeros((0, 3, 4, 4))), np.zeros(3))
