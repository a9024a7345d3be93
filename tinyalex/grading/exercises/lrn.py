"""Exercise 4: local response normalisation, forward and backward (paper section 3.3)."""
import numpy as np

from .. import solutions
from ..checks import Case, Check, Mistake, close, layer_runs, rand
from . import Exercise, Stub

TEXT = """\
Exercise 4: local response normalisation, forward and backward (paper section 3.3).

    b_i = a_i / (k + alpha * sum_{j = max(0, i - n//2)}^{min(C-1, i + n//2)} a_j^2) ^ beta

at every pixel of every image, where a_i is channel i. The paper uses k = 2, n = 5, alpha = 1e-4,
beta = 0.75. Careful: alpha multiplies the plain sum over the n neighbours. PyTorch and Caffe divide
alpha by n; the paper does not.
"""

FORWARD_DOC = """\
LRN across channels: x (N, C, H, W) -> (y (N, C, H, W), cache); n is odd.

Hints: square x, sum it over a sliding window of n channels (a cumulative sum along axis 1, or a loop
over the n offsets with slices clipped at the first and last channel), then s = k + alpha * sum and
y = x * s ** -beta. Keep s for the backward.
"""

BACKWARD_DOC = """\
Gradient of LRN: gy (N, C, H, W), cache -> gx (N, C, H, W).

With s_i = k + alpha * sum_{j in window(i)} a_j^2 (and j in window(i) exactly when i in window(j)):

    gx_i = gy_i s_i^-beta - 2 alpha beta a_i sum_{j in window(i)} gy_j a_j s_j^(-beta - 1)

Hint: the second term is the same channel-window sum as in the forward, applied to gy * a * s^(-beta-1).
"""

PARAMS = [dict(n=5, k=2.0, alpha=1e-4, beta=0.75), dict(n=5, k=1.0, alpha=1.0, beta=0.75),
          dict(n=3, k=1.0, alpha=0.5, beta=0.75), dict(n=1, k=2.0, alpha=1.0, beta=0.5),
          dict(n=7, k=1.5, alpha=0.3, beta=1.0)]


def cases(rng, n_random=12):
    out = []
    for number in range(n_random):
        params = PARAMS[number % len(PARAMS)]
        shape = (int(rng.integers(1, 3)), int(rng.integers(1, 9)), int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        out.append(Case(f"x {shape}, " + ", ".join(f"{k}={v:g}" for k, v in params.items()),
                        dict(x=rand(rng, *shape), gy=rand(rng, *shape), options=params),
                        size=int(np.prod(shape))))
    return out


run_forward, run_backward, run_finite_differences = layer_runs("lrn", ("x",), ("gx",))


def _alpha_over_n(got, case, device):
    options = dict(case.args["options"])
    options["alpha"] /= options["n"]
    return options["n"] > 1 and close(got["y"], solutions.lrn_forward(case.args["x"], **options)[0])


def _diagonal_only(got, case, device):
    y, _ = solutions.lrn_forward(case.args["x"], **case.args["options"])
    return close(got["gx"], case.args["gy"] * y / case.args["x"])  # y / x = s^-beta: the i = j term alone


ALPHA_OVER_N = Mistake("your output is the LRN with alpha divided by n (PyTorch's and Caffe's convention); the "
                       "paper's alpha multiplies the plain sum of squares", _alpha_over_n)
DIAGONAL = Mistake("your gradient has only the i = j term gy_i s_i^-beta: every a_j in the window also "
                   "changes s_i, which adds -2 alpha beta a_i sum_j gy_j a_j s_j^(-beta-1)", _diagonal_only)

EXERCISE = Exercise(
    name="lrn", number=4, title="local response normalisation", text=TEXT,
    stubs=(Stub("lrn_forward", "(x, n=5, k=2.0, alpha=1e-4, beta=0.75)", FORWARD_DOC),
           Stub("lrn_backward", "(gy, cache)", BACKWARD_DOC)),
    checks=(Check("LRN forward is the paper's formula (alpha not divided by n)", cases, run_forward,
                  mistakes=(ALPHA_OVER_N,)),
            Check("LRN backward matches the engine's gradient", cases, run_backward, mistakes=(DIAGONAL,)),
            Check("LRN backward agrees with finite differences", lambda rng: cases(rng, 5), run_finite_differences)),
)
