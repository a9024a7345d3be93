"""Finite-difference gradient checker: does an op's backward agree with its forward?

For a function y = f(x_1, ..., x_m) and a fixed random v of y's shape, backward computes the
vector-Jacobian product g_k = v^T (dy/dx_k) for every input, in one reverse pass. The same numbers
come from the forward pass alone, by central differences of the scalar phi = <v, f(x)>:

    g_k[i]  ~  (phi(x_k + eps e_i) - phi(x_k - eps e_i)) / (2 eps)        (error O(eps^2))

A random v makes the check directional: one reverse pass tests every output at once, and a wrong
entry of the Jacobian would have to cancel against the others for every random v to go unnoticed.
The fast mode goes one step further for large inputs and compares v^T J u for a few random unit
directions u, two forward passes each, instead of one pair per entry of x_k.

Why float64: the difference quotient loses the digits that phi(x + eps) and phi(x - eps) share.
With eps = 1e-6 and float64 (16 digits) about 10 digits survive; in float32 (7 digits) the
round-off alone, ~1e-7 / 1e-6, is as large as the derivative. So inputs must be float64: cast with
``t.astype("float64")`` (and build the op's parameters in float64 too).

Kinks: where f is not differentiable the two sides of the difference see different slopes and the
check fails although backward is right: ReLU at 0, max pooling with tied values in a window, |x| at 0.
Draw inputs away from them (e.g. shift ReLU inputs away from 0; tie-free values for max pooling).
"""
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when backward and finite differences disagree; the message is the report."""


@dataclass
class InputReport:
    """How backward and finite differences compare for one input.

    ``worst_index`` is the entry of the input (full mode) or the number of the random direction (fast
    mode) that exceeds the tolerance by most; ``analytic`` and ``numeric`` are the values there.
    """

    position: int
    shape: tuple
    max_abs_error: float
    max_rel_error: float
    worst_index: tuple
    analytic: float
    numeric: float
    n_failed: int
    n_compared: int

    @property
    def passed(self):
        return self.n_failed == 0

    def __str__(self):
        verdict = "ok" if self.passed else f"FAILED at {self.n_failed} of {self.n_compared}"
        return (f"input {self.position} {self.shape}: {verdict}; max abs error {self.max_abs_error:.3e}, "
                f"max rel error {self.max_rel_error:.3e}; worst at {self.worst_index}: "
                f"analytic {self.analytic:.10g} vs numeric {self.numeric:.10g}")


@dataclass
class Report:
    """Per-input results of a check; ``passed`` is True when every checked input agrees."""

    mode: str
    inputs: list = field(default_factory=list)

    @property
    def passed(self):
        return all(r.passed for r in self.inputs)

    def __str__(self):
        return "\n".join([f"gradcheck ({self.mode}):"] + [f"  {r}" for r in self.inputs])


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, check=None,
              fast_mode=False, n_directions=4, seed=0, grad_output=None):
    """Check ``fn``'s backward against central differences; True, or a GradcheckError with a report.

    Args:
        fn: takes the tensors ``inputs`` and returns one Tensor of any shape.
        inputs: Tensors (constants such as integer labels may be among them). Every floating input must
            be float64 (see the module docstring for why float32 is not enough).
        eps: the finite-difference step.
        atol, rtol: an entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
        raise_exception: raise GradcheckError on failure (default); otherwise return False.
        check: indices of the inputs to check; by default every input with ``requires_grad``.
        fast_mode: compare v^T J u for ``n_directions`` random unit directions u per input instead of
            every entry of v^T J (for large inputs: 2 * n_directions forward passes, not 2 * size).
        seed: seeds the random v (and u); the same seed repeats the same check.
        grad_output: v itself (an array or Tensor of the output's shape) instead of a random one.

    The given tensors are not modified: the check works on copies.
    """
    report = gradcheck_report(fn, *inputs, eps=eps, atol=atol, rtol=rtol, check=check, fast_mode=fast_mode,
                              n_directions=n_directions, seed=seed, grad_output=grad_output)
    if not report.passed and raise_exception:
        raise GradcheckError(str(report))
    return report.passed


def gradcheck_report(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, check=None, fast_mode=False,
                     n_directions=4, seed=0, grad_output=None):
    """The per-input ``Report`` behind ``gradcheck`` (same arguments, never raises on a mismatch)."""
    checked = _checked_positions(inputs, check)
    rng = np.random.default_rng(seed)
    xs = []
    for i, t in enumerate(inputs):
        with backend.on_device(t.device):  # CuPy copies onto the current device, not the array's
            xs.append(Tensor(t.data.copy(), requires_grad=i in checked))

    y = _call(fn, xs)
    v = _grad_output(grad_output, y, rng)
    y.backward(v)
    def phi():
        with no_grad():
            return float(backend.xp(v).sum(v * _call(fn, xs).data))

    report = Report("fast, v^T J u" if fast_mode else "full, v^T J")
    with backend.on_device(y.device):  # new arrays (zeros, perturbed inputs, products) where the data is
        analytic = {i: xs[i].grad if xs[i].grad is not None else backend.xp(xs[i].data).zeros_like(xs[i].data)
                    for i in checked}
        for i in checked:
            x = xs[i].data
            if fast_mode:
                pairs = _directional(x, analytic[i], phi, eps, rng, n_directions)
            else:
                pairs = _entrywise(x, analytic[i], phi, eps)
            report.inputs.append(_compare(i, x.shape, pairs, atol, rtol))
    return report


def _checked_positions(inputs, check):
    for i, t in enumerate(inputs):
        if not isinstance(t, Tensor):
            raise TypeError(f"gradcheck: input {i} must be a Tensor, got {type(t).__name__}")
        if t.dtype.kind == "f" and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} is {t.dtype}; finite differences need float64 "
                            f"(in float32 round-off is as large as the derivative): pass t.astype('float64')")
    if check is None:
        checked = [i for i, t in enumerate(inputs) if t.requires_grad]
    else:
        checked = sorted(set(check))
        bad = [i for i in checked if not (isinstance(i, int) and 0 <= i < len(inputs))
               or inputs[i].dtype.kind != "f"]
        if bad:
            raise ValueError(f"gradcheck: check must name floating inputs among 0..{len(inputs) - 1}, got {bad}")
    if not checked:
        raise ValueError("gradcheck: no input to check: give inputs with requires_grad=True or check=[...]")
    return checked


def _call(fn, xs):
    y = fn(*xs)
    if not isinstance(y, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(y).__name__}")
    if y.dtype != np.float64:
        raise TypeError(f"gradcheck: fn returned a {y.dtype} tensor; it must compute in float64")
    return y


def _grad_output(grad_output, y, rng):
    if grad_output is None:
        v = rng.standard_normal(y.shape)
    else:
        v = grad_output.data if isinstance(grad_output, Tensor) else grad_output
        if tuple(v.shape) != y.shape:
            raise ValueError(f"gradcheck: grad_output has shape {tuple(v.shape)}, the output has shape {y.shape}")
    return backend.to_device(np.asarray(v, np.float64) if not backend.is_gpu_array(v) else v, y.device)


def _entrywise(x, gx, phi, eps):
    """(index, analytic, numeric) for every entry of x, perturbing it in place and restoring it."""
    for index in np.ndindex(*x.shape):
        original = x[index].copy()
        x[index] = original + eps
        plus = phi()
        x[index] = original - eps
        minus = phi()
        x[index] = original
        yield index, float(gx[index]), (plus - minus) / (2 * eps)


def _directional(x, gx, phi, eps, rng, n_directions):
    """(k, <g, u_k>, numeric d phi / d u_k) for random unit directions u_k."""
    xp = backend.xp(x)
    original = x.copy()
    for k in range(n_directions):
        u = rng.standard_normal(x.shape)
        u = backend.to_device(u / np.linalg.norm(u), backend.device_of(x))
        x[...] = original + eps * u
        plus = phi()
        x[...] = original - eps * u
        minus = phi()
        x[...] = original
        yield (k,), float(xp.sum(gx * u)), (plus - minus) / (2 * eps)


def _compare(position, shape, pairs, atol, rtol):
    worst, excess_max, max_abs, max_rel, n_failed, n_compared = ((), 0.0, 0.0), -np.inf, 0.0, 0.0, 0, 0
    for index, a, n in pairs:
        n_compared += 1
        err = abs(a - n)
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(abs(a), abs(n)) if err else 0.0)
        excess = err - (atol + rtol * abs(n))
        n_failed += excess > 0
        if excess > excess_max:
            worst, excess_max = (index, a, n), excess
    index, a, n = worst
    return InputReport(position, tuple(shape), max_abs, max_rel, index, a, n, n_failed, n_compared)
