"""Elementwise arithmetic, matrix products, shape changes and channel concat/split: Tensor's operators.

Each op is a Function (forward/backward on raw arrays) plus a lowercase wrapper. Elementwise ops
broadcast as NumPy does; their backward sums the gradient back over the broadcast axes.
"""
import math
import sys

import numpy as np

from .. import backend, threads
from ..tensor import Function, ToDevice, bind_operators, to_device  # noqa: F401  (F.to_device: the move is the core's)
from . import checks


def unbroadcast(g, shape):
    """Sum ``g`` down to ``shape``: the adjoint of NumPy broadcasting."""
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


# ------------------------------------------------------------------ elementwise
class Add(Function):
    def forward(self, a, b):
        self.save_for_backward(a_shape=a.shape, b_shape=b.shape)
        return a + b

    def backward(self, gy):
        return unbroadcast(gy, self.saved.a_shape), unbroadcast(gy, self.saved.b_shape)


class Sub(Function):
    def forward(self, a, b):
        self.save_for_backward(a_shape=a.shape, b_shape=b.shape)
        return a - b

    def backward(self, gy):
        return unbroadcast(gy, self.saved.a_shape), unbroadcast(-gy, self.saved.b_shape)


class Mul(Function):
    def forward(self, a, b):
        self.save_for_backward(a=a, b=b)
        return a * b

    def backward(self, gy):
        (a, b), (need_ga, need_gb) = (self.saved.a, self.saved.b), self.needs_input_grad
        return (unbroadcast(gy * b, a.shape) if need_ga else None,
                unbroadcast(gy * a, b.shape) if need_gb else None)


class Div(Function):
    def forward(self, a, b):
        self.save_for_backward(a=a, b=b)
        return a / b

    def backward(self, gy):
        (a, b), (need_ga, need_gb) = (self.saved.a, self.saved.b), self.needs_input_grad
        return (unbroadcast(gy / b, a.shape) if need_ga else None,
                unbroadcast(-gy * a / (b * b), b.shape) if need_gb else None)


def _binary(fn, a, b):
    """``fn(a, b)`` with an integer operand cast to the float one's dtype (NumPy would make
    int64 * float32 float64); an integer tensor is a constant, so the cast loses no gradient."""
    a, b = checks.tensors(a, b)
    checks.same_device(fn.label, a, b)
    kinds = a.dtype.kind + b.dtype.kind
    if "f" in kinds and kinds != "ff":
        a, b = (t if t.dtype.kind == "f" else t.astype(u.dtype) for t, u in ((a, b), (b, a)))
    return fn(a, b)


def add(a, b):
    """a + b (broadcasting)."""
    return _binary(Add(), a, b)


def sub(a, b):
    """a - b (broadcasting)."""
    return _binary(Sub(), a, b)


def mul(a, b):
    """a * b elementwise (broadcasting)."""
    return _binary(Mul(), a, b)


def div(a, b):
    """a / b elementwise (broadcasting)."""
    return _binary(Div(), a, b)


# ------------------------------------------------------------------ reductions
class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.save_for_backward(shape=x.shape)
        return backend.xp(x).asarray(x.sum(axis=self.axis, keepdims=self.keepdims))

    def backward(self, gy):
        shape = self.saved.shape
        if self.axis is not None and not self.keepdims:
            axes = (self.axis,) if isinstance(self.axis, int) else self.axis
            gy = gy.reshape([1 if i in [a % len(shape) for a in axes] else n for i, n in enumerate(shape)])
        return (backend.xp(gy).broadcast_to(gy, shape).copy(),)


def sum(x, axis=None, keepdims=False):  # noqa: A001 - the name users expect
    """Sum over ``axis`` (all axes by default)."""
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    """Mean over ``axis`` (all axes by default)."""
    s = sum(x, axis, keepdims)
    return mul(s, s.size / x.size)


# ------------------------------------------------------------------ matrix products
# The products below run on tinyalex's threads (threads.matmul), with NumPy's BLAS at one thread
class MatMul(Function):
    def forward(self, a, b):
        self.save_for_backward(a=a, b=b)
        return threads.matmul(a, b)

    def backward(self, gy):
        (a, b), (need_ga, need_gb) = (self.saved.a, self.saved.b), self.needs_input_grad
        return threads.matmul(gy, b.T) if need_ga else None, threads.matmul(a.T, gy) if need_gb else None


def matmul(a, b):
    """a @ b for 2-D a (M, K) and b (K, N) -> (M, N)."""
    a, b = checks.tensors(a, b)
    checks.floating("matmul", a, b)
    checks.same_device("matmul", a, b)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"matmul: expected (M, K) @ (K, N), got {a.shape} @ {b.shape}")
    return MatMul()(a, b)


class Linear(Function):
    new_grads = True  # the products and the sum below are new arrays

    def forward(self, x, w, b=None):
        self.save_for_backward(x=x, w=w)
        y = threads.matmul(x, w.T)
        if b is not None:
            y += b
        return y

    def backward(self, gy):
        (x, w), need = (self.saved.x, self.saved.w), self.needs_input_grad
        gx, gW = threads.matmul(gy, w) if need[0] else None, threads.matmul(gy.T, x) if need[1] else None
        return (gx, gW) if len(need) == 2 else (gx, gW, gy.sum(axis=0) if need[2] else None)


def linear(x, w, b=None):
    """Fully connected layer: y = x W^T + b.

    Shapes: x (N, in), w (out, in), b (out,) -> y (N, out). (Paper section 3.5: fc6, fc7, fc8.)
    """
    x, w, b = checks.tensors(x, w, b)
    checks.floating("linear", x, w, b)
    checks.same_dtype("linear", x, w, b)
    checks.ndim("linear", x, 2, layout="N, in_features")
    checks.ndim("linear", w, 2, "weight", layout="out_features, in_features")
    if x.shape[1] != w.shape[1]:
        raise ValueError(f"linear: input has {x.shape[1]} features but the weight {w.shape} expects {w.shape[1]}")
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"linear: bias must have shape ({w.shape[0]},), got {b.shape}")
    checks.same_device("linear", x, w, b)
    return Linear()(x, w) if b is None else Linear()(x, w, b)


# ------------------------------------------------------------------ shapes
class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(shape)

    def forward(self, x):
        self.save_for_backward(shape=x.shape)
        return x.reshape(self.shape)

    def backward(self, gy):
        return (gy.reshape(self.saved.shape),)


def reshape(x, shape):
    """The same values in another shape (one entry may be -1)."""
    shape = tuple(shape)
    known = math.prod(n for n in shape if n != -1)
    free = shape.count(-1)
    if not (free == 0 and known == x.size or free == 1 and known > 0 and x.size % known == 0):
        raise ValueError(f"reshape: cannot arrange the {x.size} values of shape {tuple(x.shape)} as {shape} "
                         "(the sizes must multiply to the same count; at most one -1)")
    return Reshape(shape)(x)


def flatten(x):
    """(N, C, H, W) -> (N, C*H*W): the step from the last pooling layer to fc6."""
    if x.ndim < 2:
        raise ValueError(f"flatten: expected at least 2 dimensions (N, ...), got shape {x.shape}")
    return reshape(x, (x.shape[0], -1))


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = axes

    def forward(self, x):
        return x.transpose(self.axes)

    def backward(self, gy):
        # negative axes count from the end: argsort needs them as positions
        inverse = None if self.axes is None else tuple(np.argsort([a % gy.ndim for a in self.axes]))
        return (gy.transpose(inverse),)


def transpose(x, axes=None):
    """Permute axes (reverse them by default)."""
    return Transpose(axes)(x)


class GetItem(Function):
    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.save_for_backward(shape=x.shape, dtype=x.dtype)
        return x[self.index]

    def backward(self, gy):
        xp = backend.xp(gy)
        gx = xp.zeros(self.saved.shape, self.saved.dtype)
        xp.add.at(gx, self.index, gy)  # repeated indices add up
        return (gx,)


def getitem(x, index):
    """x[index]; the gradient flows back to the selected entries."""
    return GetItem(index)(x)


# ------------------------------------------------------------------ columns: concat / split
class Concat(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        self.save_for_backward(sizes=[x.shape[self.axis] for x in xs])
        return backend.xp(xs[0]).concatenate(xs, axis=self.axis)

    def backward(self, gy):
        xp = backend.xp(gy)
        edges = np.cumsum(self.saved.sizes)[:-1].tolist()
        return tuple(xp.split(gy, edges, axis=self.axis))


def concat(xs, axis=1):
    """Join tensors along ``axis`` (channels by default): where the two columns meet (paper 3.2)."""
    xs = checks.tensors(*xs)
    if not xs:
        raise ValueError("concat: expected at least one tensor")
    checks.same_device("concat", *xs)
    ref = xs[0].shape
    if not -len(ref) <= axis < len(ref):
        raise ValueError(f"concat: axis {axis} is out of range for {len(ref)}-D tensors of shape {ref}")
    for t in xs[1:]:
        if t.ndim != len(ref) or any(a != b for i, (a, b) in enumerate(zip(t.shape, ref)) if i != axis % len(ref)):
            raise ValueError(f"concat: shapes {ref} and {t.shape} differ outside axis {axis}")
    return Concat(axis)(*xs)


class Split(Function):
    def __init__(self, sections, axis):
        self.sections, self.axis = sections, axis

    def forward(self, x):
        return tuple(backend.xp(x).split(x, self.sections, axis=self.axis))

    def backward(self, *gys):
        return (backend.xp(gys[0]).concatenate(gys, axis=self.axis),)


def split(x, sections, axis=1):
    """Split into ``sections`` equal parts (an int) or at the given indices (a list) along ``axis``.

    With ``sections=2`` on the channel axis it hands each column its half of the maps (paper 3.2).
    """
    if isinstance(sections, int) and x.shape[axis] % sections:
        raise ValueError(f"split: axis {axis} of size {x.shape[axis]} cannot be split into {sections} equal parts")
    return Split(sections, axis)(x)


bind_operators(sys.modules[__name__])
