"""Exercise 6: softmax cross-entropy, forward and backward (paper sections 3.5 and 5).

The last layer feeds a 1000-way softmax, and the net maximises the multinomial logistic regression
objective: the mean log-probability of the correct label. As a loss to minimise, over a batch of N:

    L = -(1/N) sum_n log softmax(z_n)[y_n],    softmax(z)_k = e^(z_k) / sum_j e^(z_j)
    dL/dz_nk = (softmax(z_n)_k - [k == y_n]) / N

e^z overflows for z > 709 in float64: subtract max_k z_nk from row n first (softmax does not change).

Grade it:  tinyalex grade 06_softmax_cross_entropy.py
"""
import numpy as np


def softmax_cross_entropy_forward(logits, labels):
    """Mean cross-entropy: logits (N, K), labels (N,) ints in [0, K) -> (loss (a float), cache).

    Hint: log softmax(z)_k = z_k - m - log sum_j e^(z_j - m) with m = max_j z_j: stable for huge logits.
    """
    raise NotImplementedError("softmax_cross_entropy_forward not implemented")


def softmax_cross_entropy_backward(gloss, cache):
    """Gradient of the loss: gloss (a float, dL_total/dloss), cache -> glogits (N, K).

    Hint: (softmax - onehot(labels)) / N, times gloss.
    """
    raise NotImplementedError("softmax_cross_entropy_backward not implemented")
