"""Tensor and Function: the values, the ops on them, and the recording of the graph.

A ``Tensor`` wraps a raw array (NumPy on the CPU, CuPy on a GPU) and remembers the ``Function`` that
made it. A ``Function`` computes on raw arrays: ``forward(*arrays)`` returns the outputs and saves,
by name, what ``backward(*grad_outputs)`` needs to return one gradient per input. ``Tensor.backward``
hands the graph to the walk in ``graph.py``, which visits it in reverse topological order and adds up
(chain rule) the gradients that reach each tensor; leaves that ``requires_grad`` keep theirs in ``.grad``.
The device move (``ToDevice``) is here too: ``Tensor.to`` needs it, and it is part of the core.
"""
import numbers
import operator
import types

import numpy as np

from . import backend, graph
from .graph import Edge, Watcher, backward, is_grad_enabled, no_grad  # noqa: F401  (the core's names)

_ops = None  # tinyalex.functional.basic, which binds itself once on import (bind_operators)


def bind_operators(ops):
    """Give Tensor its operators (+, -, *, /, @, [], sum, reshape, ...): ``ops`` is the module of the
    elementwise and shape ops, which calls this once when it is imported, as tinygrad's ops register
    themselves on Tensor. The core never imports the ops built on it, so there is no import cycle."""
    global _ops
    _ops = ops


def _as_array(data, dtype, device):
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.module_for(device)
    with backend.on_device(device):
        if backend.is_gpu_array(data) or isinstance(data, np.ndarray):
            array = backend.to_device(data, device)
        else:
            array = xp.asarray(data)
        if dtype is None:
            # Python floats become float32, as in PyTorch; arrays keep a float or integer dtype.
            if array.dtype.kind == "f":
                keep = isinstance(data, np.ndarray) or backend.is_gpu_array(data)
                dtype = array.dtype if keep else np.float32
            elif array.dtype.kind in "iub":
                dtype = array.dtype
            else:
                raise TypeError(f"tensor: cannot make a tensor of dtype {array.dtype}")
        return array.astype(dtype, copy=False)


class _Version:
    """A tensor's count of in-place changes, shared with its ``detach()``ed twins."""

    __slots__ = ("count",)

    def __init__(self):
        self.count = 0


class Tensor:
    """An array with a gradient and a device.

    Attributes: ``data`` (the raw NumPy/CuPy array), ``grad`` (a raw array of the same shape, or
    None), ``requires_grad``, ``creator`` (the Function that made it, None for leaves), and the
    read-only ``shape``, ``dtype``, ``device``, ``ndim``.

    Dtypes in arithmetic: the floating inputs of an op (``+``, ``*``, ``-``, ``/``, ``@``, every
    Function) must share one dtype; float32 with float64 is a TypeError, not a silent float64 result.
    A number (``t * 2.0``, ``t + np.float64(1)``) takes the tensor's dtype; an integer tensor or array
    with a float tensor takes the float's dtype. Comparisons (``==``, ``<``, ...) are element-wise and
    give a boolean tensor that is not part of the graph.

    In-place changes: each tensor counts them in ``version`` (``t[i] = v``, an optimiser step, a
    loaded state: ``mark_modified``). A Function remembers the count of every array it saved for
    backward (an input's or its output's) and its backward refuses to run when the count moved: the
    saved values are no longer those the forward pass used (PyTorch's version counter). Writing into
    the raw array (``t.data[...] = v``) is not seen, as in PyTorch: ``.data`` is the way around the
    graph. Rebinding ``t.data = array`` needs no count: the saved array is the old one, unchanged.
    """

    __array_priority__ = 1000  # so `ndarray * Tensor` calls Tensor.__rmul__

    def __init__(self, data, requires_grad=False, creator=None, name=None, slot=0):
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = creator
        self.slot = slot  # which of its creator's outputs this is
        self.name = name
        self._version = _Version()

    # ---- description
    shape = property(lambda self: tuple(self.data.shape))
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: int(self.data.size))
    device = property(lambda self: backend.device_of(self.data))

    def __len__(self):
        return self.data.shape[0]

    def __repr__(self):
        made = f", creator={type(self.creator).__name__}" if self.creator is not None else ""
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor(shape={self.shape}, dtype={self.dtype}, device='{self.device}'{grad}{made})"

    # ---- conversions
    def numpy(self):
        """A NumPy array of the values (a copy from the GPU; the array itself on the CPU)."""
        return backend.to_numpy(self.data)

    def __array__(self, dtype=None, copy=None):
        """What NumPy sees of a CPU tensor: its data (``np.asarray(t)``, ``plt.imshow(t)``). ``dtype``
        and ``copy`` mean what they mean to ``np.array`` (``copy=False`` where a cast needs a copy is a
        ValueError). A GPU tensor refuses, as CuPy does: a silent copy to the host would hide a slow path."""
        if self.device != "cpu":
            raise TypeError(f"Tensor on {self.device}: implicit conversion to a NumPy array is not allowed; "
                            "call .numpy() to copy it to the host")
        return np.array(self.data, dtype=dtype, copy=copy)

    def item(self):
        """The one value as a Python number; ``float(t)``, ``int(t)`` and ``bool(t)`` go through it."""
        if self.size != 1:
            raise ValueError(f"item: only a tensor with one value converts to a Python number, "
                             f"got shape {self.shape}")
        return self.data.item()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __bool__(self):
        if self.size != 1:  # PyTorch's and NumPy's rule: `if t:` over many values has no one meaning
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} ({self.size} values) "
                             "is ambiguous; reduce it first, e.g. bool((t > 0).numpy().all())")
        return bool(self.item())

    def to(self, device):
        """Move to ``device``; differentiable (the gradient moves back)."""
        return to_device(self, device)

    def detach(self):
        """The same data, cut from the graph (and the same count of in-place changes: they share them)."""
        t = Tensor(self.data)
        t._version = self._version
        return t

    # ---- in-place changes
    version = property(lambda self: self._version.count)

    def mark_modified(self):
        """Count an in-place change of ``data``: a graph that saved the old values can no longer be walked."""
        self._version.count += 1

    def __setitem__(self, index, value):
        """``t[index] = value``, in place and counted (see the class docstring)."""
        if self.requires_grad and graph.is_grad_enabled():
            raise RuntimeError("setitem: an in-place change of a tensor that requires grad is not recorded "
                               "in the graph; make it under no_grad(), as an optimiser step does")
        value = value.data if isinstance(value, Tensor) else value
        with backend.on_device(self.device):
            self.data[index] = backend.to_device(value, self.device) if hasattr(value, "shape") else value
        self.mark_modified()

    def astype(self, dtype):
        """A copy with another dtype, cut from the graph (used to switch float32/float64)."""
        with backend.on_device(self.device):
            return Tensor(self.data.astype(dtype), requires_grad=self.requires_grad)

    # ---- autograd
    def backward(self, grad=None):
        """Back-propagate from this tensor.

        ``grad`` is dL/d(self); it may be left out only when the tensor holds a single value (a
        loss), where it is 1. Gradients of leaves that require grad are *added* to their ``.grad``
        (call ``zero_grad`` between steps); saved arrays are freed as the walk passes.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of the graph had "
                               "requires_grad=True, or it was computed under no_grad)")
        xp = backend.xp(self.data)
        if grad is None:
            if self.size != 1:
                raise ValueError(f"backward: grad must be given for a tensor of shape {self.shape}, "
                                 "not a single value")
            with backend.on_device(self.device):
                grad = xp.ones_like(self.data)
        else:
            grad = _as_array(grad, self.dtype, self.device)
            if grad.shape != self.data.shape:
                raise ValueError(f"backward: grad of shape {grad.shape} given for a tensor of shape {self.shape}")
        backward(self, grad)

    # ---- operators (thin wrappers over tinyalex.functional.basic, bound by bind_operators)
    def __add__(self, other): return _ops.add(self, other)
    def __radd__(self, other): return _ops.add(other, self)
    def __sub__(self, other): return _ops.sub(self, other)
    def __rsub__(self, other): return _ops.sub(other, self)
    def __mul__(self, other): return _ops.mul(self, other)
    def __rmul__(self, other): return _ops.mul(other, self)
    def __truediv__(self, other): return _ops.div(self, other)
    def __rtruediv__(self, other): return _ops.div(other, self)
    def __neg__(self): return _ops.mul(self, -1.0)
    def __matmul__(self, other): return _ops.matmul(self, other)
    def __getitem__(self, index): return _ops.getitem(self, index)

    # np.sum(t), np.mean(t), np.transpose(t), np.reshape(t, s) call these methods with NumPy's keywords
    # ---- comparisons: element-wise, as in PyTorch, giving a boolean tensor outside the graph (a step
    # function has no useful gradient). Hashing stays by identity, so tensors are still dict keys and
    # set members; a list of tensors must be searched by identity (`any(p is q for q in ps)`), since
    # `p in ps` would compare values.
    __hash__ = object.__hash__

    def _compare(self, op, other):
        if isinstance(other, Tensor):
            same_device("comparison", self, other)
            other = other.data
        elif hasattr(other, "shape"):
            other = backend.to_device(other, self.device)
        with backend.on_device(self.device):
            return Tensor(op(self.data, other))  # a Python number stays itself: 2.5 is not cut to an int's 2

    def __eq__(self, other): return self._compare(operator.eq, other)
    def __ne__(self, other): return self._compare(operator.ne, other)
    def __lt__(self, other): return self._compare(operator.lt, other)
    def __le__(self, other): return self._compare(operator.le, other)
    def __gt__(self, other): return self._compare(operator.gt, other)
    def __ge__(self, other): return self._compare(operator.ge, other)

    def sum(self, axis=None, keepdims=False, dtype=None, out=None):
        _numpy_keywords("sum", self, dtype, out)
        return _ops.sum(self, axis, keepdims)

    def mean(self, axis=None, keepdims=False, dtype=None, out=None):
        _numpy_keywords("mean", self, dtype, out)
        return _ops.mean(self, axis, keepdims)

    def flatten(self): return _ops.flatten(self)
    def transpose(self, *axes): return _ops.transpose(self, _sizes(axes) or None)

    def reshape(self, *shape, order="C"):
        if order != "C":
            raise ValueError(f"reshape: only order='C' (row-major, NumPy's default) is supported, got {order!r}")
        return _ops.reshape(self, _sizes(shape))

    @property
    def T(self):
        return self.transpose()


def _sizes(args):
    """``f(2, 3)`` or ``f((2, 3))`` -> ``(2, 3)``: both ways NumPy's reshape and transpose take them
    (and ``f(None)`` -> ``()``: ``np.transpose(t)`` passes ``axes=None``)."""
    if len(args) == 1 and (args[0] is None or isinstance(args[0], (tuple, list))):
        return tuple(args[0] or ())
    return args


def _numpy_keywords(method, t, dtype, out):
    """Refuse what NumPy may pass that a differentiable result cannot honour: an ``out`` array to write
    into, or a ``dtype`` other than the tensor's (cast first with ``astype``)."""
    if out is not None:
        raise TypeError(f"{method}: out= is not supported; the result is a new tensor")
    if dtype is not None and np.dtype(dtype) != t.dtype:
        raise TypeError(f"{method}: dtype={np.dtype(dtype)} is not supported on a {t.dtype} tensor; "
                        f"cast first with t.astype({np.dtype(dtype).name!r})")


def same_device(op, *tensors):
    """Raise ValueError naming ``op`` unless the tensors (None skipped) are on one device."""
    devices = sorted({t.device for t in tensors if t is not None})
    if len(devices) > 1:
        raise ValueError(f"{op}: inputs are on different devices ({' and '.join(devices)}); "
                         "move one with .to(device) first")


def tensor(data, dtype=None, device="cpu", requires_grad=False):
    """Make a Tensor from an array-like.

    ``dtype``: None keeps a NumPy/CuPy array's float or integer dtype and makes Python floats
    float32 (as PyTorch does); or name one ("float32", "float64", "int64", ...).
    """
    device = backend.parse_device(device)
    array = _as_array(data, None if dtype is None else np.dtype(dtype), device)
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"tensor: only floating-point tensors can require grad, got {array.dtype}")
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(x, like=None):
    """Tensors pass through; arrays and numbers become constant tensors (on ``like``'s device)."""
    if isinstance(x, Tensor):
        return x
    device = like.device if like is not None else (backend.device_of(x) if hasattr(x, "shape") else "cpu")
    if like is not None and isinstance(x, numbers.Number):
        # a number (Python's or NumPy's) takes the tensor's dtype, so t * 2.0 stays float32; only a
        # fraction with an integer tensor needs a float, PyTorch's default float32
        keeps = like.dtype.kind == "f" or isinstance(x, numbers.Integral)
        return tensor(x, dtype=like.dtype if keeps else np.float32, device=device)
    return tensor(x, device=device)


class Function:
    """One differentiable operation on raw arrays.

    Subclasses define ``forward(*arrays)`` returning an array (or a tuple of arrays) and
    ``backward(*grad_outputs)`` returning a tuple with one gradient (or None) per input. What
    backward needs is kept by name with ``self.save_for_backward(x=x, ...)`` and read back as
    ``self.saved.x``. Configuration (stride, padding, ...) goes to ``__init__``. ``needs_input_grad``
    (one bool per input, set before forward) says which gradients backward must give; the others may
    be None, and a product nobody needs is skipped (the images' gradient at the first layer).
    Calling the function on tensors runs forward and, if any input requires grad, records the graph;
    an input's or output's array saved this way is watched for in-place changes (``versions``, see
    Tensor), one kept as a stray attribute is not.
    """

    crosses_devices = False  # only the device move may take inputs and give outputs on other devices
    # True: every array backward returns is new and held by nothing else, so a leaf may take it as its
    # .grad instead of a copy (fc6's weight gradient is 151 MB: its copy took 22 ms a step)
    new_grads = False

    def save_for_backward(self, **arrays):
        self.saved = types.SimpleNamespace(**arrays)

    def forward(self, *arrays):
        raise NotImplementedError

    def backward(self, *grad_outputs):
        raise NotImplementedError

    @property
    def label(self):
        return type(self).__name__

    def __repr__(self):
        shapes = ", ".join(str(t.shape) for t in getattr(self, "inputs", ()))
        return f"<{self.label}({shapes})>"

    def __call__(self, *inputs):
        tensors = [as_tensor(x) for x in inputs]
        if not self.crosses_devices:
            same_device(self.label, *tensors)
        floats = sorted({t.dtype.name for t in tensors if t.dtype.kind == "f"})
        if len(floats) > 1:
            raise TypeError(f"{self.label}: inputs mix {' and '.join(floats)}; tinyalex does not promote silently "
                            "(a float64 constant would turn a float32 network into float64): cast one with .astype()")
        device = tensors[0].device if tensors else "cpu"
        # known before forward, so that forward saves and backward computes only what is asked for
        self.needs_input_grad = tuple(graph.is_grad_enabled() and t.requires_grad for t in tensors)
        start = graph.clock(device) if graph.watchers else 0.0
        with backend.on_device(device):
            outputs = self.forward(*(t.data for t in tensors))
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        record = graph.is_grad_enabled() and any(t.requires_grad for t in tensors)
        results = tuple(Tensor(o, requires_grad=record, creator=self if record else None, slot=i)
                        for i, o in enumerate(outputs))
        if record:
            self.inputs = [Edge(t) for t in tensors]
            self.output_specs = [(r.shape, r.dtype) for r in results]
            kept = {id(a) for a in vars(getattr(self, "saved", types.SimpleNamespace())).values()}
            self.versions = [(i, t._version, t.version) for i, t in enumerate(tensors + list(results))
                             if id(t.data) in kept]  # the count of each saved array (class Tensor's docstring)
        for watcher in graph.watchers:
            watcher.on_forward(self, tensors, results, graph.clock(device) - start)
        return results[0] if single else results


class ToDevice(Function):
    """A copy to another device whose backward copies the gradient back (paper 3.2's crossings)."""

    crosses_devices = True

    def __init__(self, device):
        self.device = backend.parse_device(device)

    def forward(self, x):
        self.save_for_backward(source=backend.device_of(x))
        return backend.to_device(x, self.device)

    def backward(self, gy):
        return (backend.to_device(gy, self.saved.source),)


def to_device(x, device):
    """Move a tensor to ``device`` ("cpu", "cuda", "cuda:N"); the gradient moves back in backward."""
    device = backend.parse_device(device)
    backend.module_for(device)  # a clear error now if the device does not exist
    return x if x.device == device else ToDevice(device)(x)
