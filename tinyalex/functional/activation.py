"""Nonlinearities: the paper's ReLU (section 3.1) and the saturating tanh and sigmoid it replaced."""
from .. import backend, threads
from ..tensor import Function
from . import checks


def _unary(fn, op, x):
    """``fn(x)`` for a floating tensor (an array or number is wrapped), refused by name otherwise."""
    (x,) = checks.tensors(x)
    checks.floating(op, x)
    return fn(x)


class ReLU(Function):
    """Both passes element-wise, over parts of the batch on threads (``threads.over_batch``)."""

    def forward(self, x):
        xp = backend.xp(x)
        y = xp.empty_like(x)
        # y itself is returned and saved (the engine watches it for changes in place); a number has
        # no batch to cut, so the parts run over atleast_1d's one-value view of it
        x1, y1 = xp.atleast_1d(x, y)
        threads.over_batch(x1, lambda i: xp.maximum(x1[i], 0, out=y1[i]))
        self.save_for_backward(y=y)
        return y

    def backward(self, gy):
        xp, y = backend.xp(gy), self.saved.y
        gx = xp.empty(y.shape, gy.dtype)
        gy1, y1, gx1 = xp.atleast_1d(gy, y, gx)
        # at x == 0 the derivative is taken as 0 (the kink: gradcheck must keep inputs away from it)
        threads.over_batch(y1, lambda i: xp.multiply(gy1[i], y1[i] > 0, out=gx1[i]))
        return (gx,)


def relu(x):
    """Rectified linear unit f(x) = max(0, x) (paper section 3.1). Any shape -> same shape."""
    return _unary(ReLU(), "relu", x)


class Tanh(Function):
    def forward(self, x):
        y = backend.xp(x).tanh(x)
        self.save_for_backward(y=y)
        return y

    def backward(self, gy):
        y = self.saved.y
        return (gy * (1 - y * y),)


def tanh(x):
    """f(x) = tanh(x), the saturating unit of paper Figure 1; f'(x) = 1 - f(x)^2. Same shape."""
    return _unary(Tanh(), "tanh", x)


class Sigmoid(Function):
    def forward(self, x):
        xp = backend.xp(x)
        y = 0.5 * (xp.tanh(0.5 * x) + 1)  # = 1 / (1 + e^-x) without overflow for large |x|
        self.save_for_backward(y=y)
        return y

    def backward(self, gy):
        y = self.saved.y
        return (gy * y * (1 - y),)


def sigmoid(x):
    """f(x) = 1 / (1 + e^-x) (paper section 3.1 mentions it with tanh); f' = f (1 - f). Same shape."""
    return _unary(Sigmoid(), "sigmoid", x)
