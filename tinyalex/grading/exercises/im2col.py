"""Exercise 1: im2col and col2im, the data movement under every convolution (paper section 3.5)."""
import numpy as np

from ... import functional as F
from ..checks import Case, Check, Pattern, as_shaped, compare, on, rand
from . import Exercise, Stub

TEXT = """\
Exercise 1: im2col and col2im (paper section 3.5, "Details of learning" and Figure 2).

A convolution slides every filter over every receptive field. im2col copies each receptive field into
one column of a matrix, so that the whole layer becomes ONE matrix product: w (O, C*KH*KW) @ col.
col2im goes back: it is the adjoint (transpose) of im2col, not its inverse. Where windows overlap
(stride < kernel, like AlexNet's 3x3 pooling at stride 2 or its 11x11 filters at stride 4), a pixel
sits in several columns and receives the SUM of all of them. That is exactly what the backward pass of
a convolution needs: dL/dx = col2im(dL/dcol).

Output size (floor rounding): OH = (H + 2*PH - KH) // SH + 1, OW = (W + 2*PW - KW) // SW + 1.
Work on raw NumPy arrays. No Python loops over N, C or pixels: loop over the KH*KW kernel offsets and
copy one strided slice per offset.
"""

IM2COL_DOC = """\
Receptive fields as columns: x (N, C, H, W) -> col (C*KH*KW, N*OH*OW).

Column n*OH*OW + oh*OW + ow holds what output pixel (oh, ow) of image n sees; row (c*KH + i)*KW + j
holds input channel c at kernel offset (i, j), i.e. padded pixel (oh*SH + i, ow*SW + j):

    col[(c*KH + i)*KW + j, (n*OH + oh)*OW + ow] = x_padded[n, c, oh*SH + i, ow*SW + j]

x is padded with PH zero rows above and below and PW zero columns left and right.

Hints: np.pad for the zeros; build col as an array of shape (C, KH, KW, N, OH, OW) and reshape it at
the end; for one offset (i, j) the pixels are the strided slice
x_padded[:, :, i : i + SH*(OH-1) + 1 : SH, j : j + SW*(OW-1) + 1 : SW].
"""

COL2IM_DOC = """\
The adjoint of im2col: col (C*KH*KW, N*OH*OW) -> x (N, C, H, W), ADDING overlapping windows.

Every entry of col is added onto the pixel it was copied from by im2col; padding is cut off at the
end. So that sum(im2col(x) * col) == sum(x * col2im(col, x.shape, ...)) for all x and col.

Hints: start from zeros of the padded shape; for each offset (i, j) add (+=, not =) one slice; where
windows overlap, '=' would keep only the last window's value.
"""


def geometry(rng, n_random=10, max_size=7):
    """Window settings: fixed edge cases (stride > kernel, padding, 1x1, batch 1) and random ones,
    as dicts N, C, H, W, KH, KW, SH, SW, PH, PW."""
    fixed = [(1, 1, 4, 4, 2, 2, 2, 2, 0, 0), (1, 2, 5, 5, 3, 3, 2, 2, 0, 0), (2, 1, 5, 6, 2, 2, 3, 3, 0, 0),
             (1, 2, 5, 5, 3, 3, 1, 1, 1, 1), (2, 2, 4, 5, 1, 1, 1, 1, 0, 0), (1, 1, 6, 5, 3, 2, 2, 1, 1, 0),
             (2, 2, 7, 7, 3, 3, 2, 2, 0, 0), (1, 1, 4, 4, 4, 4, 1, 1, 0, 0)]
    settings = [dict(zip(("N", "C", "H", "W", "KH", "KW", "SH", "SW", "PH", "PW"), f)) for f in fixed]
    while len(settings) < len(fixed) + n_random:
        s = dict(N=int(rng.integers(1, 4)), C=int(rng.integers(1, 4)), H=int(rng.integers(2, max_size + 1)),
                 W=int(rng.integers(2, max_size + 1)), KH=int(rng.integers(1, 5)), KW=int(rng.integers(1, 5)),
                 SH=int(rng.integers(1, 5)), SW=int(rng.integers(1, 5)), PH=int(rng.integers(0, 3)),
                 PW=int(rng.integers(0, 3)))
        if s["KH"] <= s["H"] + 2 * s["PH"] and s["KW"] <= s["W"] + 2 * s["PW"]:
            settings.append(s)
    return settings


def tags(s):
    """Edge features of a window setting (names used by the hints)."""
    t = set()
    if s["SH"] < s["KH"] or s["SW"] < s["KW"]:
        t.add("overlap")
    if s["SH"] > s["KH"] or s["SW"] > s["KW"]:
        t.add("stride>kernel")
    if s["PH"] or s["PW"]:
        t.add("padding")
    return frozenset(t)


def window_label(s):
    return (f"x {(s['N'], s['C'], s['H'], s['W'])}, kernel {s['KH']}x{s['KW']}, stride {s['SH']}x{s['SW']}, "
            f"padding {s['PH']}x{s['PW']}")


def window_args(s):
    return s["KH"], s["KW"], s["SH"], s["SW"], s["PH"], s["PW"]


def out_hw(s):
    """(OH, OW) of a window setting."""
    return (F.conv_outsize(s["H"], s["KH"], s["SH"], s["PH"]), F.conv_outsize(s["W"], s["KW"], s["SW"], s["PW"]))


def col_shape(s):
    OH, OW = out_hw(s)
    return s["C"] * s["KH"] * s["KW"], s["N"] * OH * OW


def cases(rng):
    out = []
    for s in geometry(rng):
        x_shape = (s["N"], s["C"], s["H"], s["W"])
        out.append(Case(window_label(s), dict(s=s, x=rand(rng, *x_shape), col=rand(rng, *col_shape(s))),
                        tags(s), int(np.prod(x_shape)) * s["KH"] * s["KW"]))
    return out


def run_im2col(student, case, device):
    s, (x,) = case.args["s"], on(device, case.args["x"])
    return [compare("col", student.im2col(x, *window_args(s)), F.im2col(x, *window_args(s)))]


def run_col2im(student, case, device):
    s, (col,) = case.args["s"], on(device, case.args["col"])
    x_shape = case.args["x"].shape
    return [compare("x", student.col2im(col, x_shape, *window_args(s)), F.col2im(col, x_shape, *window_args(s)))]


def run_adjoint(student, case, device):
    """<im2col(x), col> = <x, col2im(col)> with the student's own two functions."""
    s, (x, col) = case.args["s"], on(device, case.args["x"], case.args["col"])
    lhs = (as_shaped(student.im2col(x, *window_args(s)), col.shape, "col") * case.args["col"]).sum()
    rhs = (case.args["x"] * as_shaped(student.col2im(col, x.shape, *window_args(s)), x.shape, "x")).sum()
    return [compare("<x, col2im(col)>", rhs, lhs)]


OVERWRITE = Pattern("overlap", "col2im must ADD each window onto its pixels (+=): with '=' a pixel covered "
                               "by overlapping windows keeps only the last one (all non-overlapping cases pass)")
PADDING = Pattern("padding", "only the padded cases fail: pad x with PH zero rows above and below and PW zero "
                             "columns left and right before taking windows (col2im: cut the padding off at the end)")
STRIDE = Pattern("stride>kernel", "only cases with stride > kernel fail: the window for output oh starts at "
                                  "oh*SH, and OH = (H + 2*PH - KH) // SH + 1 (floor)")

EXERCISE = Exercise(
    name="im2col", number=1, title="im2col and col2im", text=TEXT,
    stubs=(Stub("im2col", "(x, KH, KW, SH, SW, PH, PW)", IM2COL_DOC),
           Stub("col2im", "(col, x_shape, KH, KW, SH, SW, PH, PW)", COL2IM_DOC)),
    checks=(Check("im2col copies each receptive field into one column", cases, run_im2col,
                  patterns=(PADDING, STRIDE)),
            Check("col2im adds overlapping windows (the adjoint of im2col)", cases, run_col2im,
                  patterns=(OVERWRITE, PADDING, STRIDE)),
            Check("<im2col(x), col> = <x, col2im(col)> with your two functions", cases, run_adjoint,
                  patterns=(OVERWRITE,))),
)
