"""Exercise 2: conv2d forward and backward with groups (paper sections 3.2 and 3.5)."""
from ..checks import Case, Check, Pattern, layer_runs, rand
from . import Exercise, Stub
from .im2col import OVERWRITE, PADDING, STRIDE, geometry, out_hw, tags, window_label

TEXT = """\
Exercise 2: conv2d forward and backward, with groups (paper sections 3.2 and 3.5, Figure 2).

    y[n, o, oh, ow] = b[o] + sum_{c, i, j} w[o, c, i, j] * x[n, g*Cg + c, oh*SH + i - PH, ow*SW + j - PW]

where g = o // (O/groups) is the group of filter o and Cg = C/groups. The paper splits layers 2, 4 and
5 between two GPUs: each filter sees only the kernel maps of its own GPU, which is groups=2.
Use your im2col/col2im from exercise 1 (copy them into this file): the forward is one matrix product
per group, w_g (O/G, Cg*KH*KW) @ col_g (Cg*KH*KW, N*OH*OW), and the backward is

    gw = gy_mat @ col^T,    gcol = w^T @ gy_mat,    gx = col2im(gcol),    gb = gy summed over n, oh, ow.
"""

FORWARD_DOC = """\
Convolution: x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> (y (N, O, OH, OW), cache).

stride = (SH, SW) and padding = (PH, PW) are pairs; OH = (H + 2*PH - KH) // SH + 1 (floor).
cache: whatever conv2d_backward needs (e.g. the columns, w, x.shape and the settings).

Hints: with groups G, input channels [g*Cg, (g+1)*Cg) and filters [g*O/G, (g+1)*O/G) form group g;
im2col's rows are channel-major, so group g's rows of col are one contiguous block.
"""

BACKWARD_DOC = """\
Gradients of conv2d: gy (N, O, OH, OW), cache -> (gx (N, C, H, W), gw like w, gb (O,)).

Hints: gb sums gy over N, OH and OW; gw and gx need the same grouping as the forward; gx is col2im of
the columns' gradient, so overlapping windows add up.
"""


def cases(rng, n_random=10):
    out = []
    for number, s in enumerate(geometry(rng, n_random)):
        G = 2 if number % 3 == 1 else 1
        C, O = s["C"] * G, int(rng.integers(1, 4)) * G
        x_shape, w_shape = (s["N"], C, s["H"], s["W"]), (O, C // G, s["KH"], s["KW"])
        options = dict(stride=(s["SH"], s["SW"]), padding=(s["PH"], s["PW"]), groups=G)
        label = window_label({**s, "C": C}) + f", {O} filters, groups {G}"
        inputs = dict(x=rand(rng, *x_shape), w=rand(rng, *w_shape), b=rand(rng, O), gy=rand(rng, s["N"], O, *out_hw(s)))
        out.append(Case(label, dict(inputs, options=options), tags(s) | ({"groups"} if G > 1 else set()),
                        s["N"] * C * s["H"] * s["W"] * O))
    return out


def small_cases(rng):
    return cases(rng, n_random=2)[:6]


run_forward, run_backward, run_finite_differences = layer_runs("conv2d", ("x", "w", "b"), ("gx", "gw", "gb"))


GROUPS = Pattern("groups", "only groups=2 fails: filter o sees only input channels of its own group "
                           "g = o // (O/G), i.e. channels [g*C/G, (g+1)*C/G) (paper Figure 2: one group per GPU)")

EXERCISE = Exercise(
    name="conv2d", number=2, title="conv2d forward and backward, with groups", text=TEXT,
    stubs=(Stub("conv2d_forward", "(x, w, b, stride=(1, 1), padding=(0, 0), groups=1)", FORWARD_DOC),
           Stub("conv2d_backward", "(gy, cache)", BACKWARD_DOC)),
    checks=(Check("conv2d forward matches the engine", cases, run_forward, patterns=(GROUPS, PADDING, STRIDE)),
            Check("conv2d backward matches the engine's gradients", cases, run_backward,
                  patterns=(GROUPS, OVERWRITE, PADDING, STRIDE)),
            Check("conv2d backward agrees with finite differences", small_cases, run_finite_differences)),
)
