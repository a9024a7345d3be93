"""Exercise 5: dropout, both forms (paper section 4.2).

Each hidden unit is kept with probability 1 - p and set to zero with probability p (p = 0.5 in the
paper's first two fully connected layers). The expected output must not change between training and
testing, so something scales by 1 - p:

    mode "paper":     train y = x * m,              test y = x * (1 - p)  ("multiply their outputs by 0.5")
    mode "inverted":  train y = x * m / (1 - p),    test y = x            (what PyTorch does)

p is the probability of DROPPING. The mask m (1 = keep, 0 = drop, x's shape) is given to you, so the
grader can compare exactly; in a network it would be drawn as rng.random(x.shape) >= p.

Grade it:  tinyalex grade 05_dropout.py
"""
import numpy as np


def dropout_forward(x, p, mask, mode="inverted", training=True):
    """Dropout: x (any shape), p in [0, 1), mask (x's shape, 1 = keep) -> (y (x's shape), cache).

    mode is "inverted" or "paper"; training=False is test time (the mask is not used then).
    """
    raise NotImplementedError("dropout_forward not implemented")


def dropout_backward(gy, cache):
    """Gradient of dropout: gy, cache -> gx (gy's shape).

    Hint: y is x times a fixed array (the scaled mask, or the test-time factor); so is gx = gy times it.
    """
    raise NotImplementedError("dropout_backward not implemented")
