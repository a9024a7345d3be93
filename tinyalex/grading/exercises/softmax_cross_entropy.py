"""Exercise 6: softmax cross-entropy, the paper's objective (section 3.5 / 5), forward and backward."""
import numpy as np

from .. import solutions
from ..checks import Case, Check, Mistake, Pattern, close, layer_runs, rand
from . import Exercise, Stub

TEXT = """\
Exercise 6: softmax cross-entropy, forward and backward (paper sections 3.5 and 5).

The last layer feeds a 1000-way softmax, and the net maximises the multinomial logistic regression
objective: the mean log-probability of the correct label. As a loss to minimise, over a batch of N:

    L = -(1/N) sum_n log softmax(z_n)[y_n],    softmax(z)_k = e^(z_k) / sum_j e^(z_j)
    dL/dz_nk = (softmax(z_n)_k - [k == y_n]) / N

e^z overflows for z > 709 in float64: subtract max_k z_nk from row n first (softmax does not change).
"""

FORWARD_DOC = """\
Mean cross-entropy: logits (N, K), labels (N,) ints in [0, K) -> (loss (a float), cache).

Hint: log softmax(z)_k = z_k - m - log sum_j e^(z_j - m) with m = max_j z_j: stable for huge logits.
"""

BACKWARD_DOC = """\
Gradient of the loss: gloss (a float, dL_total/dloss), cache -> glogits (N, K).

Hint: (softmax - onehot(labels)) / N, times gloss.
"""


def cases(rng, n_random=12):
    out = []
    for number in range(n_random):
        N, K = int(rng.integers(1, 7)), int(rng.integers(2, 11))
        large = number % 4 == 3
        logits = rand(rng, N, K) * (3 if not large else 1) + (1000.0 if large else 0.0)
        out.append(Case(f"logits ({N}, {K})" + (" around 1000" if large else ""),
                        dict(logits=logits, options=dict(labels=rng.integers(0, K, N)), gy=float(rng.uniform(0.5, 2))),
                        frozenset({"large"} if large else ()), N * K))
    return out


run_forward, run_backward, run_finite_differences = layer_runs("softmax_cross_entropy", ("logits",), ("glogits",),
                                                                    out="loss")


def _scaled(factor):
    def detect(got, case, device):
        _, cache = solutions.softmax_cross_entropy_forward(case.args["logits"], **case.args["options"])
        want = solutions.softmax_cross_entropy_backward(case.args["gy"], cache)
        return close(got["glogits"], want * factor(case))
    return detect


OVERFLOW = Pattern("large", "only huge logits fail: e^1000 overflows to inf; subtract each row's maximum before "
                            "exponentiating (softmax does not change) and use log-sum-exp")
MISTAKES = (Mistake("the loss is the MEAN over the batch: divide the gradient by N",
                    _scaled(lambda c: len(c.args["logits"]))),
            Mistake("multiply by the upstream gradient gloss (chain rule)", _scaled(lambda c: 1 / c.args["gy"])),
            Mistake("the gradient is softmax MINUS the one-hot labels (the sign is flipped)", _scaled(lambda c: -1)))
NONFINITE = Mistake("your loss is not finite for huge logits: subtract each row's maximum before exponentiating",
                    lambda got, case, device: not np.isfinite(got["loss"]).all())

EXERCISE = Exercise(
    name="softmax_cross_entropy", number=6, title="softmax cross-entropy", text=TEXT,
    stubs=(Stub("softmax_cross_entropy_forward", "(logits, labels)", FORWARD_DOC),
           Stub("softmax_cross_entropy_backward", "(gloss, cache)", BACKWARD_DOC)),
    checks=(Check("softmax cross-entropy forward (stable for huge logits)", cases, run_forward,
                  mistakes=(NONFINITE,), patterns=(OVERFLOW,)),
            Check("softmax cross-entropy backward is (softmax - onehot) / N", cases, run_backward,
                  mistakes=MISTAKES, patterns=(OVERFLOW,)),
            Check("softmax cross-entropy backward agrees with finite differences", lambda rng: cases(rng, 3),
                  run_finite_differences)),
)
