"""Exercise 1: im2col and col2im (paper section 3.5, "Details of learning" and Figure 2).

A convolution slides every filter over every receptive field. im2col copies each receptive field into
one column of a matrix, so that the whole layer becomes ONE matrix product: w (O, C*KH*KW) @ col.
col2im goes back: it is the adjoint (transpose) of im2col, not its inverse. Where windows overlap
(stride < kernel, like AlexNet's 3x3 pooling at stride 2 or its 11x11 filters at stride 4), a pixel
sits in several columns and receives the SUM of all of them. That is exactly what the backward pass of
a convolution needs: dL/dx = col2im(dL/dcol).

Output size (floor rounding): OH = (H + 2*PH - KH) // SH + 1, OW = (W + 2*PW - KW) // SW + 1.
Work on raw NumPy arrays. No Python loops over N, C or pixels: loop over the KH*KW kernel offsets and
copy one strided slice per offset.

Grade it:  tinyalex grade 01_im2col.py
"""
import numpy as np


def im2col(x, KH, KW, SH, SW, PH, PW):
    """Receptive fields as columns: x (N, C, H, W) -> col (C*KH*KW, N*OH*OW).

    Column n*OH*OW + oh*OW + ow holds what output pixel (oh, ow) of image n sees; row (c*KH + i)*KW + j
    holds input channel c at kernel offset (i, j), i.e. padded pixel (oh*SH + i, ow*SW + j):

        col[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_padded[n, c, oh*SH + i, ow*SW + j]

    x is padded with PH zero rows above and below and PW zero columns left and right.

    Hints: np.pad for the zeros; build col as an array of shape (C, KH, KW, N, OH, OW) and reshape it at
    the end; for one offset (i, j) the pixels are the strided slice
    x_padded[:, :, i : i + SH*(OH-1) + 1 : SH, j : j + SW*(OW-1) + 1 : SW].
    """
    raise NotImplementedError("im2col not implemented")


def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    """The adjoint of im2col: col (C*KH*KW, N*OH*OW) -> x (N, C, H, W), ADDING overlapping windows.

    Every entry of col is added onto the pixel it was copied from by im2col; padding is cut off at the
    end. So that sum(im2col(x) * col) == sum(x * col2im(col, x.shape, ...)) for all x and col.

    Hints: start from zeros of the padded shape; for each offset (i, j) add (+=, not =) one slice; where
    windows overlap, '=' would keep only the last window's value.
    """
    raise NotImplementedError("col2im not implemented")
