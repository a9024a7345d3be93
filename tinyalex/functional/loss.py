"""Softmax and the training objective: "maximizes the multinomial logistic regression objective" (paper 3.5).

All three subtract the largest logit before exponentiating: softmax is unchanged by a shift, and
e^(x - max) <= 1 never overflows, so logits of 1e4 are as safe as logits of 1.
"""
import numpy as np

from .. import backend
from ..tensor import Function, Tensor
from . import checks


def _shifted_log_softmax(x, axis):
    z = x - x.max(axis=axis, keepdims=True)
    return z - backend.xp(x).log(backend.xp(x).exp(z).sum(axis=axis, keepdims=True))


class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        y = backend.xp(x).exp(_shifted_log_softmax(x, self.axis))
        self.save_for_backward(y=y)
        return y

    def backward(self, gy):
        y = self.saved.y
        return (y * (gy - (gy * y).sum(axis=self.axis, keepdims=True)),)


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        y = _shifted_log_softmax(x, self.axis)
        self.save_for_backward(y=y)
        return y

    def backward(self, gy):
        return (gy - backend.xp(gy).exp(self.saved.y) * gy.sum(axis=self.axis, keepdims=True),)


def _softmax_op(fn, name, x, axis):
    (x,) = checks.tensors(x)
    checks.floating(name, x)
    if not -x.ndim <= axis < x.ndim:
        raise ValueError(f"{name}: axis {axis} is out of range for a {x.ndim}-D input of shape {x.shape}")
    return fn(axis)(x)


def softmax(x, axis=-1):
    """p_i = e^(x_i) / sum_j e^(x_j) along ``axis``: the paper's "1000-way softmax" (section 3.5).

    Backward: gx = p * (gy - sum_j gy_j p_j). Any shape -> same shape.
    """
    return _softmax_op(Softmax, "softmax", x, axis)


def log_softmax(x, axis=-1):
    """log p_i = x_i - log sum_j e^(x_j) along ``axis``, computed without forming p.

    Backward: gx = gy - p * sum_j gy_j. Any shape -> same shape.
    """
    return _softmax_op(LogSoftmax, "log_softmax", x, axis)


class SoftmaxCrossEntropy(Function):
    def forward(self, logits, labels):
        log_p = _shifted_log_softmax(logits, 1)
        xp = backend.xp(logits)
        rows = xp.arange(logits.shape[0])
        self.save_for_backward(log_p=log_p, rows=rows, labels=labels)
        return xp.asarray(-log_p[rows, labels].sum() / logits.shape[0])

    def backward(self, gy):
        log_p, rows, labels = self.saved.log_p, self.saved.rows, self.saved.labels
        g = backend.xp(log_p).exp(log_p)
        g[rows, labels] -= 1  # softmax - onehot, without building the one-hot matrix
        return g * (gy / log_p.shape[0]), None


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of the softmax of ``logits`` against integer class ``labels``:

        L = -(1/N) sum_n log softmax(logits_n)[labels_n]
          = (1/N) sum_n (log sum_j e^(logits_nj) - logits_n,labels_n)

    the negative log-likelihood the paper's net minimises (section 3.5, "multinomial logistic
    regression"). One fused op, so the backward is the simple and exact (softmax - onehot) / N.

    Shapes: logits (N, K) float; labels (N,) integers in [0, K) (a NumPy/CuPy array, list or
    integer Tensor; moved to the logits' device) -> a scalar tensor of shape ().
    """
    (logits,) = checks.tensors(logits)
    checks.floating("softmax_cross_entropy", logits)
    checks.ndim("softmax_cross_entropy", logits, 2, "logits", layout="N, classes")
    labels = labels.data if isinstance(labels, Tensor) else labels
    if not hasattr(labels, "dtype"):
        labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: labels must be integer class indices, got dtype {labels.dtype}")
    N, K = logits.shape
    if tuple(labels.shape) != (N,):
        raise ValueError(f"softmax_cross_entropy: labels must have shape ({N},) for logits of shape "
                         f"{logits.shape}, got {tuple(labels.shape)}")
    if N == 0:
        raise ValueError("softmax_cross_entropy: the batch is empty (the mean of no losses is undefined)")
    # Labels already on a GPU are not range-checked: reading min/max back would stall the GPU once
    # per step (and CuPy wraps an index out of range around instead of raising). Labels on the host
    # are checked before they move (and every data set here checks its labels when it loads them).
    if not backend.is_gpu_array(labels) and (labels.min() < 0 or labels.max() >= K):
        raise ValueError(f"softmax_cross_entropy: labels must be in [0, {K}), got values from "
                         f"{int(labels.min())} to {int(labels.max())}")
    labels = backend.to_device(labels, logits.device)
    return SoftmaxCrossEntropy()(logits, Tensor(labels))
