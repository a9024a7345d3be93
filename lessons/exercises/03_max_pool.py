"""Exercise 3: overlapping max pooling, forward and backward (paper section 3.4).

    y[n, c, oh, ow] = max_{0 <= i < KH, 0 <= j < KW} x[n, c, oh*SH + i, ow*SW + j]

The paper pools 3x3 windows at stride 2 (z = 3 > s = 2): neighbouring windows overlap, which cut the
top-1 error by 0.4% against 2x2 windows at stride 2. The backward sends each output's gradient whole
to the input that won its window; a pixel that wins several overlapping windows collects all their
gradients. Ties: of equal maxima in one window the FIRST in row-major window order (smallest i, then
smallest j) wins, as np.argmax picks it. No padding in this exercise.

Grade it:  tinyalex grade 03_max_pool.py
"""
import numpy as np


def max_pool_forward(x, kernel_size=(3, 3), stride=(2, 2)):
    """Max pooling: x (N, C, H, W) -> (y (N, C, OH, OW), cache), OH = (H - KH) // SH + 1 (floor).

    kernel_size = (KH, KW) and stride = (SH, SW) are pairs.
    Hints: your im2col with C folded into N (x.reshape(N*C, 1, H, W)) puts every window in a column;
    argmax over the column's rows gives the winner (first maximum on ties) and max gives y.
    """
    raise NotImplementedError("max_pool_forward not implemented")


def max_pool_backward(gy, cache):
    """Gradient of max pooling: gy (N, C, OH, OW), cache -> gx (N, C, H, W).

    Hints: put gy into the winner's row of a zero column matrix and col2im it back: overlapping windows
    add up. With ties only ONE input per window (the first maximum) gets the gradient.
    """
    raise NotImplementedError("max_pool_backward not implemented")
