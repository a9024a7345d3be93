"""Exercise 9: Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2016; lesson 13).

A 3x3 correlation (what a conv layer computes) gives a 2x2 block of outputs from a 4x4 tile d of its
input. Directly that is 2*2*3*3 = 36 multiplications; Winograd's algorithm needs 4*4 = 16:

    Y = A^T [ (G g G^T) * (B^T d B) ] A          (* element-wise, Y 2x2)

with the matrices of Lavin and Gray's F(2, 3):

    B^T = [[1,  0, -1,  0],     G = [[  1,    0,   0],     A^T = [[1, 1,  1,  0],
           [0,  1,  1,  0],          [1/2,  1/2, 1/2],            [0, 1, -1, -1]]
           [0, -1,  1,  0],          [1/2, -1/2, 1/2],
           [0,  1,  0, -1]]          [  0,    0,   1]]

The filter's transform U = G g G^T is made once per filter and input channel, the tile's V = B^T d B
once per tile and channel; in a layer the products U * V add up over the input channels before the
one transform back A^T [.] A of each tile and filter. Tiles sit every 2 pixels and overlap by 2.

Grade it:  tinyalex grade 09_winograd.py
"""
import numpy as np


def winograd_tile(d, g):
    """F(2x2, 3x3) of one tile: d (4, 4), g (3, 3) -> Y (2, 2), the correlation

        Y[i, j] = sum_{u, v} g[u, v] * d[i + u, j + v]          (i, j in 0, 1; u, v in 0, 1, 2)

    computed as A^T [ (G g G^T) * (B^T d B) ] A with the matrices at the top of this file, not by the sum.
    A correlation, as in every deep-learning library: the filter is not flipped.
    """
    raise NotImplementedError("winograd_tile not implemented")


def winograd_conv2d(x, w):
    """A stride-1 3x3 layer without padding or bias by F(2x2, 3x3): x (N, C, H, W), w (O, C, 3, 3) ->
    y (N, O, H - 2, W - 2), with y[n, o, i, j] = sum_{c, u, v} w[o, c, u, v] * x[n, c, i + u, j + v].

    Output tile (ti, tj) is y[..., 2ti:2ti+2, 2tj:2tj+2], made from the input tile x[..., 2ti:2ti+4,
    2tj:2tj+4]. When H - 2 or W - 2 is odd, the last tile row or column reaches one output past the map
    (remainder tiles): pad x with zeros at the bottom and right to a whole number of tiles, and cut the
    extra outputs off.

    Hints: U = G w G^T for every filter and channel, shape (O, C, 4, 4); V = B^T d B for every tile, e.g.
    (N, C, TH, TW, 4, 4) from 16 strided slices of the padded x (one per position in the tile);
    M = sum over c of U[o, c] * V[n, c] (np.einsum, or one matrix product (O, C) @ (C, tiles) per tile
    position); then A^T M A per tile, and the 2x2 blocks put side by side into (N, O, 2 TH, 2 TW).
    """
    raise NotImplementedError("winograd_conv2d not implemented")
