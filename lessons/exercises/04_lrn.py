"""Exercise 4: local response normalisation, forward and backward (paper section 3.3).

    b_i = a_i / (k + alpha * sum_{j = max(0, i - n//2)}^{min(C-1, i + n//2)} a_j^2) ^ beta

at every pixel of every image, where a_i is channel i. The paper uses k = 2, n = 5, alpha = 1e-4,
beta = 0.75. Careful: alpha multiplies the plain sum over the n neighbours. PyTorch and Caffe divide
alpha by n; the paper does not.

Grade it:  tinyalex grade 04_lrn.py
"""
import numpy as np


def lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
    """LRN across channels: x (N, C, H, W) -> (y (N, C, H, W), cache); n is odd.

    Hints: square x, sum it over a sliding window of n channels (a cumulative sum along axis 1, or a loop
    over the n offsets with slices clipped at the first and last channel), then s = k + alpha * sum and
    y = x * s ** -beta. Keep s for the backward.
    """
    raise NotImplementedError("lrn_forward not implemented")


def lrn_backward(gy, cache):
    """Gradient of LRN: gy (N, C, H, W), cache -> gx (N, C, H, W).

    With s_i = k + alpha * sum_{j in window(i)} a_j^2 (and j in window(i) exactly when i in window(j)):

        gx_i = gy_i s_i^-beta - 2 alpha beta a_i sum_{j in window(i)} gy_j a_j s_j^(-beta - 1)

    Hint: the second term is the same channel-window sum as in the forward, applied to gy * a * s^(-beta-1).
    """
    raise NotImplementedError("lrn_backward not implemented")
