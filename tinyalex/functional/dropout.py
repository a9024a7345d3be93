"""Dropout (paper section 4.2): each hidden unit is zeroed with probability p during training."""
import numpy as np

from .. import backend
from ..tensor import Function, Tensor
from . import checks

MODES = ("inverted", "paper")


class Dropout(Function):
    """y = x * w for a fixed array w (the scaled mask, or the test-time factor); gx = gy * w."""

    def __init__(self, w):
        self.w = w

    def forward(self, x):
        return x * self.w

    def backward(self, gy):
        return (gy * self.w,)


def dropout(x, p=0.5, training=True, mode="inverted", seed=None, mask=None):
    """Zero each value with probability ``p`` in training; keep the expected output the same at test time.

    With m_i ~ Bernoulli(1 - p) (1 = kept):
        mode="inverted" (default, as PyTorch):  train y = x * m / (1 - p),  test y = x
        mode="paper"   (paper section 4.2):     train y = x * m,            test y = x * (1 - p)
    The paper uses p = 0.5 in the first two fully connected layers and multiplies "the outputs by
    0.5" at test time; the inverted form scales in training instead, so a trained net runs unchanged.

    ``p`` is the probability of *dropping* (as in PyTorch). The mask comes from the engine's
    generator (``ta.manual_seed``), from ``seed`` when given (the same seed, the same mask), or is
    ``mask`` itself (an array or Tensor of 0/1 with x's shape: a fixed mask makes dropout an ordinary
    differentiable function, so it can be gradient-checked). Any shape -> same shape.
    """
    (x,) = checks.tensors(x)
    checks.floating("dropout", x)
    check_arguments("dropout", p, mode)
    xp = backend.xp(x.data)
    with backend.on_device(x.device):
        if not training:
            return x if mode == "inverted" else Dropout(xp.asarray(1 - p, x.dtype))(x)
        keep = _mask(x, p, seed, mask)
        scale = 1 / (1 - p) if mode == "inverted" else 1.0
        return Dropout(keep.astype(x.dtype) * xp.asarray(scale, x.dtype))(x)


def check_arguments(op, p, mode):
    """Raise ValueError unless ``p`` is a probability in [0, 1) and ``mode`` one of MODES."""
    if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 <= p < 1:
        raise ValueError(f"{op}: p (the probability of dropping) must be in [0, 1), got {p!r}")
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")


def _mask(x, p, seed, mask):
    if mask is not None:
        mask = mask.data if isinstance(mask, Tensor) else mask if hasattr(mask, "shape") else np.asarray(mask)
        mask = backend.to_device(mask, x.device)
        if tuple(mask.shape) != x.shape:
            raise ValueError(f"dropout: mask must have the input's shape {x.shape}, got {tuple(mask.shape)}")
        return mask
    generator = backend.default_generator if seed is None else backend.Generator(seed)
    return generator.for_device(x.device).random(x.shape) >= p
