"""Exercise 2: conv2d forward and backward, with groups (paper sections 3.2 and 3.5, Figure 2).

    y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oh*SH + i - PH, ow*SW + j - PW]

where g = o // (O/groups) is the group of filter o and Cg = C/groups. The paper splits layers 2, 4 and
5 between two GPUs: each filter sees only the kernel maps of its own GPU, which is groups=2.
Use your im2col/col2im from exercise 1 (copy them into this file): the forward is one matrix product
per group, w_g (O/G, Cg*KH*KW) @ col_g (Cg*KH*KW, N*OH*OW), and the backward is

    gw = gy_mat @ col^T,    gcol = w^T @ gy_mat,    gx = col2im(gcol),    gb = gy summed over n, oh, ow.

Grade it:  tinyalex grade 02_conv2d.py
"""
import numpy as np


def conv2d_forward(x, w, b, stride=(1, 1), padding=(0, 0), groups=1):
    """Convolution: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> (y (N, O, OH, OW), cache).

    stride = (SH, SW) and padding = (PH, PW) are pairs; OH = (H + 2*PH - KH) // SH + 1 (floor).
    cache: whatever conv2d_backward needs (e.g. the columns, w, x.shape and the settings).

    Hints: with groups G, input channels [g*Cg, (g+1)*Cg) and filters [g*O/G, (g+1)*O/G) form group g;
    im2col's rows are channel-major, so group g's rows of col are one contiguous block.
    """
    raise NotImplementedError("conv2d_forward not implemented")


def conv2d_backward(gy, cache):
    """Gradients of conv2d: gy (N, O, OH, OW), cache -> (gx (N, C, H, W), gw like w, gb (O,)).

    Hints: gb sums gy over N, OH and OW; gw and gx need the same grouping as the forward; gx is col2im of
    the columns' gradient, so overlapping windows add up.
    """
    raise NotImplementedError("conv2d_backward not implemented")
