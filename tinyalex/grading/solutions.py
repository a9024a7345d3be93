"""The instructor's answers: every exercise function, delegating to the engine.

``tinyalex grade --solution NAME`` grades this file through the same path as a student's, which
tests the grader itself (so it imports like a student's file: absolute imports only). Nothing here repeats the engine's arithmetic: forwards call the engine's op
on tensors and keep the graph as the cache; backwards walk it with ``Tensor.backward``.
"""
import numpy as np

from tinyalex import backend, functional as F
from tinyalex.functional import conv
from tinyalex.tensor import tensor


def _forward(op, *arrays, **options):
    """Run an engine op on tensors made from ``arrays``; the cache is (output, inputs)."""
    inputs = [tensor(a, device=backend.device_of(a), requires_grad=True) for a in arrays]
    y = op(*inputs, **options)
    return y.data, (y, inputs)


def _backward(gy, cache):
    y, inputs = cache
    y.backward(gy)
    grads = tuple(t.grad for t in inputs)
    return grads[0] if len(grads) == 1 else grads


def im2col(x, KH, KW, SH, SW, PH, PW):
    return conv.im2col(x, KH, KW, SH, SW, PH, PW)


def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    return conv.col2im(col, x_shape, KH, KW, SH, SW, PH, PW)


def conv2d_forward(x, w, b, stride=1, padding=0, groups=1):
    return _forward(F.conv2d, x, w, b, stride=stride, padding=padding, groups=groups)


def max_pool_forward(x, kernel_size=3, stride=2):
    return _forward(F.max_pool2d, x, kernel_size=kernel_size, stride=stride)


def lrn_forward(x, n=5, k=2.0, alpha=1e-4, beta=0.75):
    return _forward(F.lrn, x, n=n, k=k, alpha=alpha, beta=beta)


def dropout_forward(x, p, mask, mode="inverted", training=True):
    return _forward(F.dropout, x, p=p, training=training, mode=mode, mask=mask)


def softmax_cross_entropy_forward(logits, labels):
    return _forward(lambda z: F.softmax_cross_entropy(z, labels), logits)


conv2d_backward = max_pool_backward = lrn_backward = dropout_backward = softmax_cross_entropy_backward = _backward
