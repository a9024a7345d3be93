"""Exercise 3: overlapping max pooling, forward and backward (paper section 3.4)."""
from ..checks import Case, Check, Pattern, layer_runs, rand
from . import Exercise, Stub
from .im2col import STRIDE, geometry, out_hw, tags, window_label

TEXT = """\
Exercise 3: overlapping max pooling, forward and backward (paper section 3.4).

    y[n, c, oh, ow] = max_{0 <= i < KH, 0 <= j < KW} x[n, c, oh*SH + i, ow*SW + j]

The paper pools 3x3 windows at stride 2 (z = 3 > s = 2): neighbouring windows overlap, which cut the
top-1 error by 0.4% against 2x2 windows at stride 2. The backward sends each output's gradient whole
to the input that won its window; a pixel that wins several overlapping windows collects all their
gradients. Ties: of equal maxima in one window the FIRST in row-major window order (smallest i, then
smallest j) wins, as np.argmax picks it. No padding in this exercise.
"""

FORWARD_DOC = """\
Max pooling: x (N, C, H, W) -> (y (N, C, OH, OW), cache), OH = (H - KH) // SH + 1 (floor).

kernel_size = (KH, KW) and stride = (SH, SW) are pairs.
Hints: your im2col with C folded into N (x.reshape(N*C, 1, H, W)) puts every window in a column;
argmax over the column's rows gives the winner (first maximum on ties) and max gives y.
"""

BACKWARD_DOC = """\
Gradient of max pooling: gy (N, C, OH, OW), cache -> gx (N, C, H, W).

Hints: put gy into the winner's row of a zero column matrix and col2im it back: overlapping windows
add up. With ties only ONE input per window (the first maximum) gets the gradient.
"""


def cases(rng, n_random=10, ties=True):
    out = []
    for number, s in enumerate(geometry(rng, n_random)):
        s = {**s, "PH": 0, "PW": 0}
        if s["KH"] > s["H"] or s["KW"] > s["W"]:
            continue
        x_shape = (s["N"], s["C"], s["H"], s["W"])
        tie = ties and number % 3 == 2
        x = rng.integers(0, 3, x_shape).astype(float) if tie else rand(rng, *x_shape)  # 3 values: many ties
        options = dict(kernel_size=(s["KH"], s["KW"]), stride=(s["SH"], s["SW"]))
        out.append(Case(window_label(s).replace(", padding 0x0", "") + (", tied values" if tie else ""),
                        dict(x=x, gy=rand(rng, s["N"], s["C"], *out_hw(s)), options=options),
                        tags(s) | ({"ties"} if tie else set()), x.size * s["KH"] * s["KW"]))
    return out


def tie_free_cases(rng):
    return cases(rng, n_random=2, ties=False)[:6]  # finite differences are wrong at ties (a kink)


run_forward, run_backward, run_finite_differences = layer_runs("max_pool", ("x",), ("gx",))


TIES = Pattern("ties", "only inputs with tied maxima fail: send each window's gradient to ONE input, the first "
                       "maximum in row-major window order (what np.argmax returns), not to every tied one")
OVERLAP = Pattern("overlap", "only overlapping windows fail: a pixel that wins several windows must collect "
                             "all their gradients (add with +=, or col2im, instead of assigning)")

EXERCISE = Exercise(
    name="max_pool", number=3, title="overlapping max pooling", text=TEXT,
    stubs=(Stub("max_pool_forward", "(x, kernel_size=(3, 3), stride=(2, 2))", FORWARD_DOC),
           Stub("max_pool_backward", "(gy, cache)", BACKWARD_DOC)),
    checks=(Check("max pooling forward matches the engine (3x3/2 overlapping, ties)", cases, run_forward,
                  patterns=(STRIDE,)),
            Check("max pooling backward routes gradients to the winners", cases, run_backward,
                  patterns=(TIES, OVERLAP, STRIDE)),
            Check("max pooling backward agrees with finite differences (tie-free inputs)", tie_free_cases,
                  run_finite_differences)),
)
