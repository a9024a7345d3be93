"""Slow, obviously correct loop versions of the operations, on NumPy arrays: to read and to test against.

Each function follows its formula one output pixel at a time, the way the paper states it; the fast
operations in this package must agree with these to the last digits. Nothing here is used in training.
"""
import numpy as np

from .im2col import conv_outsize, pad2d


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def _geometry(x_shape, k, s, p):
    """Kernel, stride, padding as pairs and the output size (OH, OW)."""
    (KH, KW), (SH, SW), (PH, PW) = _pair(k), _pair(s), _pair(p)
    OH, OW = conv_outsize(x_shape[2], KH, SH, PH), conv_outsize(x_shape[3], KW, SW, PW)
    return (KH, KW), (SH, SW), (PH, PW), (OH, OW)


def conv2d_reference(x, w, b=None, stride=1, padding=0, groups=1):
    """y[n, o, oh, ow] = b[o] + sum_{c,i,j} w[o, c, i, j] x_pad[n, g*Cg + c, oh*SH + i, ow*SW + j].

    x (N, C, H, W), w (O, C/groups, KH, KW), b (O,) -> (N, O, OH, OW); g = o // (O/groups).
    """
    O, Cg = w.shape[:2]
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = _geometry(x.shape, w.shape[2:], stride, padding)
    x = pad2d(x, PH, PW)
    y = np.zeros((x.shape[0], O, OH, OW), x.dtype)
    for o in range(O):
        c0 = o // (O // groups) * Cg  # first input channel of filter o's group
        for oh in range(OH):
            for ow in range(OW):
                field = x[:, c0:c0 + Cg, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW]
                y[:, o, oh, ow] = (field * w[o]).sum(axis=(1, 2, 3))
    return y if b is None else y + b.reshape(-1, 1, 1)


def conv2d_backward_reference(x, w, gy, stride=1, padding=0, groups=1):
    """Gradients (gx, gW, gb) of conv2d_reference for the output gradient gy (N, O, OH, OW).

    Each output pixel sends gy * w back to its receptive field (gx) and gy * field to its filter (gW).
    """
    O, Cg = w.shape[:2]
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = _geometry(x.shape, w.shape[2:], stride, padding)
    H, W = x.shape[2:]
    x = pad2d(x, PH, PW)
    gx, gW = np.zeros_like(x), np.zeros_like(w)
    for o in range(O):
        c0 = o // (O // groups) * Cg
        for oh in range(OH):
            for ow in range(OW):
                at = (slice(None), slice(c0, c0 + Cg), slice(oh * SH, oh * SH + KH), slice(ow * SW, ow * SW + KW))
                g = gy[:, o, oh, ow].reshape(-1, 1, 1, 1)
                gx[at] += g * w[o]
                gW[o] += (g * x[at]).sum(axis=0)
    return gx[:, :, PH:PH + H, PW:PW + W], gW, gy.sum(axis=(0, 2, 3))


def max_pool2d_reference(x, k, s=None, p=0):
    """y[n, c, oh, ow] = max over the KH x KW window at (oh*SH, ow*SW) of x padded with -inf."""
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = _geometry(x.shape, k, k if s is None else s, p)
    x = pad2d(x, PH, PW, -np.inf)
    y = np.empty(x.shape[:2] + (OH, OW), x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            y[:, :, oh, ow] = x[:, :, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW].max(axis=(2, 3))
    return y


def max_pool2d_backward_reference(x, gy, k, s=None, p=0):
    """gx of max_pool2d_reference: each gy goes whole to its window's maximum.

    Tie rule: of equal maxima, the first in row-major window order (np.argmax's) takes it all.
    """
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = _geometry(x.shape, k, k if s is None else s, p)
    N, C, H, W = x.shape
    x = pad2d(x, PH, PW, -np.inf)
    gx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for oh in range(OH):
                for ow in range(OW):
                    i, j = np.unravel_index(np.argmax(x[n, c, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW]), (KH, KW))
                    gx[n, c, oh * SH + i, ow * SW + j] += gy[n, c, oh, ow]
    return gx[:, :, PH:PH + H, PW:PW + W]


def avg_pool2d_reference(x, k, s=None, p=0):
    """y[n, c, oh, ow] = mean of the KH x KW window of x zero-padded (padding counts in the mean)."""
    (KH, KW), (SH, SW), (PH, PW), (OH, OW) = _geometry(x.shape, k, k if s is None else s, p)
    x = pad2d(x, PH, PW)
    y = np.empty(x.shape[:2] + (OH, OW), x.dtype)
    for oh in range(OH):
        for ow in range(OW):
            y[:, :, oh, ow] = x[:, :, oh * SH:oh * SH + KH, ow * SW:ow * SW + KW].mean(axis=(2, 3))
    return y


def lrn_reference(x, n, k, alpha, beta):
    """b_i = a_i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(C-1, i+n/2)} a_j^2)^beta (paper 3.3), channel by channel."""
    C = x.shape[1]
    y = np.empty_like(x)
    for i in range(C):
        window_sum = np.zeros_like(x[:, i])
        for j in range(max(0, i - n // 2), min(C - 1, i + n // 2) + 1):
            window_sum += x[:, j] ** 2
        y[:, i] = x[:, i] / (k + alpha * window_sum) ** beta
    return y
