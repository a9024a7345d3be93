"""The bias's gradient of a convolution, the sum of gy over the images and the pixels of each map."""
import functools

import numpy as np

from .. import backend, threads


def bias_gradient(gy):
    """gb[o] = sum_{n, oh, ow} gy[n, o, oh, ow]: (N, O, OH, OW) -> (O,).

    On the CPU each thread sums its part of the batch as one product with a vector of ones, its
    gy[images] seen as an (n*O, OH*OW) matrix, then the n images' sums: NumPy's ``sum`` over the
    axes (0, 2, 3) runs on one core, 2.5-4x slower on the layers' shapes than the products on two
    (BENCHMARKS.md; a four-layer CNN's conv1 backward 6.4-6.5 -> 5.6-5.7 ms inside training steps).
    The products add in the BLAS's order, not NumPy's pairwise one: the same float32 sum to within
    rounding.
    """
    xp, O = backend.xp(gy), gy.shape[1]
    if xp is not np:
        return gy.sum(axis=(0, 2, 3))
    ones = np.ones(gy.shape[2] * gy.shape[3], gy.dtype)

    def part(images):
        g = gy[images]
        return np.matmul(g.reshape(-1, ones.size), ones).reshape(g.shape[0], O).sum(axis=0)

    sums = threads.in_parallel([functools.partial(part, images) for images in threads.slices(gy)], gemm=True)
    return sum(sums[1:], sums[0])
