"""Exercise 5: dropout in the paper's form and the inverted form (paper section 4.2)."""
import numpy as np

from ..checks import Case, Check, Mistake, close, layer_runs, rand
from . import Exercise, Stub

TEXT = """\
Exercise 5: dropout, both forms (paper section 4.2).

Each hidden unit is kept with probability 1 - p and set to zero with probability p (p = 0.5 in the
paper's first two fully connected layers). The expected output must not change between training and
testing, so something scales by 1 - p:

    mode "paper":     train y = x * m,              test y = x * (1 - p)  ("multiply their outputs by 0.5")
    mode "inverted":  train y = x * m / (1 - p),    test y = x            (what PyTorch does)

p is the probability of DROPPING. The mask m (1 = keep, 0 = drop, x's shape) is given to you, so the
grader can compare exactly; in a network it would be drawn as rng.random(x.shape) >= p.
"""

FORWARD_DOC = """\
Dropout: x (any shape), p in [0, 1), mask (x's shape, 1 = keep) -> (y (x's shape), cache).

mode is "inverted" or "paper"; training=False is test time (the mask is not used then).
"""

BACKWARD_DOC = """\
Gradient of dropout: gy, cache -> gx (gy's shape).

Hint: y is x times a fixed array (the scaled mask, or the test-time factor); so is gx = gy times it.
"""


def cases(rng, n_random=12):
    out = []
    for number in range(n_random):
        shape = tuple(int(d) for d in rng.integers(1, 5, size=int(rng.integers(1, 5))))
        p = (0.5, 0.25, 0.8, 0.0)[number % 4]
        mode, training = ("inverted", "paper")[number % 2], number % 6 < 4
        mask = (rng.random(shape) >= p).astype(float)
        options = dict(p=p, mask=mask, mode=mode, training=training)
        out.append(Case(f"x {shape}, p={p}, mode={mode!r}, " + ("training" if training else "test"),
                        dict(x=rand(rng, *shape), gy=rand(rng, *shape), options=options),
                        frozenset({mode, "training" if training else "test"}), int(np.prod(shape))))
    return out


run_forward, run_backward, run_finite_differences = layer_runs("dropout", ("x",), ("gx",))


def _gives(factor, modes=("inverted", "paper"), training=True):
    """A detector: the answer is x times ``factor(mask, p)`` in these modes (training or test)."""
    def detect(got, case, device):
        o = case.args["options"]
        return (o["mode"] in modes and o["training"] == training and o["p"] > 0
                and close(got["y"], case.args["x"] * factor(o["mask"], o["p"])))
    return detect


MISTAKES = (
    Mistake("scaled twice: inverted dropout divides the kept values by 1 - p once, in training",
            _gives(lambda m, p: m / (1 - p) ** 2, ("inverted",))),
    Mistake("not scaled: inverted dropout divides the kept values by 1 - p in training, so that test time "
            "needs no change", _gives(lambda m, p: m, ("inverted",))),
    Mistake("p is the probability of dropping: kept values are divided by 1 - p, not by p",
            _gives(lambda m, p: m / p, ("inverted",))),
    Mistake("the paper's dropout does not scale in training; it multiplies by 1 - p at test time",
            _gives(lambda m, p: m / (1 - p), ("paper",))),
    Mistake("at test time the paper multiplies every output by 1 - p ('multiply their outputs by 0.5'), "
            "and uses no mask", _gives(lambda m, p: 1.0 + 0 * m, ("paper",), training=False)),
    Mistake("at test time inverted dropout is the identity: the scaling already happened in training",
            _gives(lambda m, p: (1 - p) + 0 * m, ("inverted",), training=False)),
    Mistake("at test time no mask is applied: every unit is present", _gives(lambda m, p: m, training=False)),
)

EXERCISE = Exercise(
    name="dropout", number=5, title="dropout, paper and inverted", text=TEXT,
    stubs=(Stub("dropout_forward", '(x, p, mask, mode="inverted", training=True)', FORWARD_DOC),
           Stub("dropout_backward", "(gy, cache)", BACKWARD_DOC)),
    checks=(Check("dropout forward in both modes, training and test", cases, run_forward, mistakes=MISTAKES),
            Check("dropout backward matches the engine", cases, run_backward),
            Check("dropout backward agrees with finite differences", lambda rng: cases(rng, 4),
                  run_finite_differences)),
)
