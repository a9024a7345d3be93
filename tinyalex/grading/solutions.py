"""The instructor's answers: every exercise function, delegating to the engine.

``tinyalex grade --solution NAME`` grades this file through the same path as a student's file (so it
imports like one: absolute imports only; it is the one file allowed to import tinyalex there), which
tests the grader itself. Nothing here repeats the
engine's arithmetic: forwards call the engine's op on tensors and keep the graph as the cache;
backwards walk it with ``Tensor.backward``.
"""
import math

import numpy as np

from tinyalex import backend, functional as F, nn, optim
from tinyalex.functional.winograd import Winograd2d
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
    return F.im2col(x, KH, KW, SH, SW, PH, PW)


def col2im(col, x_shape, KH, KW, SH, SW, PH, PW):
    return F.col2im(col, x_shape, KH, KW, SH, SW, PH, PW)


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


def sgd_step(w, g, v, lr, momentum=0.9, weight_decay=5e-4):
    param = tensor(w, device=backend.device_of(w), requires_grad=True)
    param.grad = g.copy()
    opt = optim.SGD([param], lr)
    opt.load_state_dict({"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "velocity.0": v})
    opt.step()
    return param.data, opt.velocity[0]


def winograd_conv2d(x, w):
    """The engine's F(2x2, 3x3) (``Winograd2d`` with m = 2), stride 1, no padding."""
    xt, wt = (tensor(a, device=backend.device_of(a)) for a in (x, w))
    return Winograd2d((0, 0), 1, 2)(xt, wt).data


def winograd_tile(d, g):
    return winograd_conv2d(d[None, None], g[None, None])[0, 0]


def receptive_field(layers):
    """Measured, not computed: back-propagate from one output unit through all-ones 1-D convolutions
    and count the input pixels that its gradient reaches."""
    width = sum(k * math.prod(s for _, s in layers[:i]) for i, (k, _) in enumerate(layers))  # enough pixels
    x = tensor(np.ones((1, 1, 1, width)), requires_grad=True)
    y = x
    for k, s in layers:
        y = F.conv2d(y, np.ones((1, 1, 1, k)), stride=(1, s))
    y[..., 0].sum().backward()
    return int((x.grad != 0).sum())


def vgg_parameter_count(cfg, in_channels=3, image_size=224, fc=(4096, 4096), num_classes=1000):
    """Counted on the engine's layers (built without drawing weights, so 144 M parameters cost nothing)."""
    layers, channels, size = [], in_channels, image_size
    with nn.init.deferred():
        for item in cfg:
            if item == "M":
                size //= 2
                continue
            out, k = item if isinstance(item, tuple) else (item, 3)
            layers.append(nn.Conv2d(channels, out, k, padding=k // 2))
            channels = out
        widths = [channels * size * size, *fc, num_classes]
        layers += [nn.Linear(a, b) for a, b in zip(widths, widths[1:])]
    return sum(p.size for layer in layers for p in layer.parameters())
