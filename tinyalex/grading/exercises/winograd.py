"""Exercise 9: Winograd's minimal filtering F(2x2, 3x3), one tile and a whole layer (Lavin and Gray 2016)."""
import numpy as np

from ...functional.winograd import cook_toom
from .. import solutions
from ..checks import Case, Check, Mistake, Pattern, close, compare, on, rand
from . import Exercise, Stub

TEXT = """\
Exercise 9: Winograd's minimal filtering F(2x2, 3x3) (Lavin and Gray 2016; lesson 13).

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
"""

TILE_DOC = """\
F(2x2, 3x3) of one tile: d (4, 4), g (3, 3) -> Y (2, 2), the correlation

    Y[i, j] = sum_{u, v} g[u, v] * d[i + u, j + v]          (i, j in 0, 1; u, v in 0, 1, 2)

computed as A^T [ (G g G^T) * (B^T d B) ] A with the matrices at the top of this file, not by the sum.
A correlation, as in every deep-learning library: the filter is not flipped.
"""

CONV_DOC = """\
A stride-1 3x3 layer without padding or bias by F(2x2, 3x3): x (N, C, H, W), w (O, C, 3, 3) ->
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

# a filter that is one 1 at (u, v) picks d[u:u+2, v:v+2]: the cases that show a flipped or transposed answer
TILE_FIXED = [("a filter with one 1 at (0, 0)", (0, 0)), ("a filter with one 1 at (0, 2)", (0, 2)),
              ("a filter with one 1 at (2, 1)", (2, 1))]


def tile_cases(rng, n_random=8):
    out = []
    for number, (label, (u, v)) in enumerate(TILE_FIXED):
        g = np.zeros((3, 3))
        g[u, v] = 1.0
        out.append(Case(f"d (4, 4), {label}", dict(d=rand(rng, 4, 4), g=g), frozenset(), number))
    for number in range(n_random):
        integers = number % 2 == 0  # small integers: a wrong coefficient shows as a wrong digit
        d, g = (rng.integers(-3, 4, size=s).astype(float) if integers else rand(rng, *s) for s in ((4, 4), (3, 3)))
        out.append(Case(f"d (4, 4), g (3, 3), {'small integers' if integers else 'normal values'}",
                        dict(d=d, g=g), frozenset(), len(TILE_FIXED) + number))
    return out


def run_tile(student, case, device):
    arrays = case.args["d"], case.args["g"]
    return [compare("Y", student.winograd_tile(*on(device, *arrays)), solutions.winograd_tile(*on(device, *arrays)))]


def conv_cases(rng, n_random=8):
    fixed = [(1, 1, 3, 3, 1), (1, 1, 4, 4, 1), (1, 2, 5, 5, 1), (2, 1, 4, 7, 2), (1, 3, 6, 6, 2), (2, 2, 3, 8, 3),
             (1, 1, 9, 4, 1)]
    shapes = fixed + [tuple(int(v) for v in (rng.integers(1, 3), rng.integers(1, 4), rng.integers(3, 10),
                                             rng.integers(3, 10), rng.integers(1, 4))) for _ in range(n_random)]
    out = []
    for N, C, H, W, O in shapes:
        tags = ({"odd"} if (H - 2) % 2 or (W - 2) % 2 else set()) | ({"channels"} if C > 1 else set())
        out.append(Case(f"x {(N, C, H, W)}, w {(O, C, 3, 3)} -> y {(N, O, H - 2, W - 2)}",
                        dict(x=rand(rng, N, C, H, W), w=rand(rng, O, C, 3, 3)), frozenset(tags), N * C * H * W * O))
    return out


def run_conv(student, case, device):
    arrays = case.args["x"], case.args["w"]
    return [compare("y", student.winograd_conv2d(*on(device, *arrays)),
                    solutions.winograd_conv2d(*on(device, *arrays)))]


def _convolution(got, case, device):
    """The answer is a convolution: the filter turned by 180 degrees."""
    if "Y" in got:
        return close(got["Y"], solutions.winograd_tile(case.args["d"], case.args["g"][::-1, ::-1]))
    return close(got["y"], solutions.winograd_conv2d(case.args["x"], case.args["w"][:, :, ::-1, ::-1]))


def _transposed(got, case, device):
    Y = got["Y"]
    return not close(Y, Y.T) and close(Y.T, solutions.winograd_tile(case.args["d"], case.args["g"]))


def _halves_dropped(got, case, device):
    """The halves left out altogether: the engine's G has none (rows [1, 1, 1], [1, -1, 1]), its B^T holds them."""
    AT, G, BT = cook_toom(2, 3)
    BT = BT * np.array([[1], [2], [2], [1]])
    d, g = case.args["d"], case.args["g"]
    return close(got["Y"], AT @ ((G @ g @ G.T) * (BT @ d @ BT.T)) @ AT.T)


CONVOLUTION = Mistake("your answer is a convolution (the filter turned by 180 degrees); a conv layer correlates: "
                      "Y[i, j] = sum g[u, v] d[i + u, j + v], and G g G^T takes g as it is", _convolution)
TRANSPOSED = Mistake("rows and columns are swapped: B^T d B transforms d's columns (B^T d) then its rows (. B), "
                     "and Y = A^T M A; check which side each matrix multiplies on", _transposed)
HALVES = Mistake("the middle rows of G are [1/2, 1/2, 1/2] and [1/2, -1/2, 1/2]: without the halves each of the "
                 "two middle products is twice too large", _halves_dropped)
ODD = Pattern("odd", "only maps whose output size H - 2 or W - 2 is odd fail: the last tile row or column covers "
                     "one output past the map; pad x with zeros to a whole number of tiles and cut y to (H - 2, W - 2)")
CHANNELS = Pattern("channels", "only inputs with several channels fail: y sums over the input channels, so add "
                               "U[o, c] * V[n, c] over c (before or after the transform back: it is linear)")

EXERCISE = Exercise(
    name="winograd", number=9, title="Winograd's minimal filtering F(2x2, 3x3)", text=TEXT,
    stubs=(Stub("winograd_tile", "(d, g)", TILE_DOC), Stub("winograd_conv2d", "(x, w)", CONV_DOC)),
    checks=(Check("F(2x2, 3x3) of one 4x4 tile is its 3x3 correlation", tile_cases, run_tile,
                  mistakes=(CONVOLUTION, TRANSPOSED, HALVES)),
            Check("winograd_conv2d of a layer matches the engine's convolution (remainder tiles included)",
                  conv_cases, run_conv, mistakes=(CONVOLUTION,), patterns=(ODD, CHANNELS))),
)
