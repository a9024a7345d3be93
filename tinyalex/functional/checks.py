"""Input checks shared by the operations: a user's mistake gets a message naming the op."""
import numbers

from ..tensor import Tensor, as_tensor, same_device  # noqa: F401  (the core's device check, for the ops)


def floating(op, *tensors):
    """Raise TypeError unless every tensor is float32 or float64 (float16 and integers are refused)."""
    for t in tensors:
        if t is not None and t.dtype.name not in ("float32", "float64"):
            raise TypeError(f"{op}: expected a float32 or float64 tensor, got {t.dtype}")


def same_dtype(op, *tensors):
    """Raise TypeError unless input, weight and bias (None skipped) share one dtype: a float64 weight
    would silently turn a float32 network's activations into float64."""
    dtypes = [t.dtype for t in tensors if t is not None]
    if len(set(dtypes)) > 1:
        raise TypeError(f"{op}: input, weight and bias must share one dtype, got {', '.join(map(str, dtypes))}")


def ndim(op, t, n, what="input", layout=None):
    """Raise ValueError unless ``t`` has ``n`` dimensions."""
    if t.ndim != n:
        hint = f" ({layout})" if layout else ""
        raise ValueError(f"{op}: expected a {n}-D {what}{hint}, got shape {t.shape}")


def pair(op, name, value):
    """``k`` or ``(kh, kw)`` -> ``(kh, kw)`` of Python ints (NumPy integers too); negative values are refused."""
    v = (value, value) if isinstance(value, numbers.Integral) else \
        tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(v) != 2 or not all(isinstance(i, numbers.Integral) for i in v):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    if min(v) < 0:
        raise ValueError(f"{op}: {name} must not be negative, got {value!r}")
    return tuple(int(i) for i in v)


def tensors(*xs):
    """Inputs as tensors (arrays and numbers are wrapped as constants)."""
    first = next((x for x in xs if isinstance(x, Tensor)), None)
    return [None if x is None else as_tensor(x, like=first) for x in xs]
