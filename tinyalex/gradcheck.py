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

Several outputs (a tuple or list of tensors, e.g. ``F.split``) are checked one by one, each with its
own random v (as ``torch.autograd.gradcheck`` checks each output), and the report names the output.

Kinks: where f is not differentiable the two sides of the difference see different slopes and the
central difference agrees with no backward: ReLU at 0, max pooling with tied values in a window, |x|
at 0. So an entry that fails is looked at once more, with phi at 0, +-eps and +-2 eps (Chainer's
``detect_nondifferentiable`` asks the same question). The four one-sided slopes between them change
evenly for a smooth phi (by about eps phi'' each); at a kink within 2 eps of the point they jump. Such
an entry is reported as not differentiable, with its two one-sided slopes, instead of as a wrong
backward; the check still does not pass (``NondifferentiableError``): draw inputs away from kinks
(shift ReLU inputs away from 0; tie-free values for max pooling).
"""
from dataclasses import dataclass, field

import numpy as np

from . import backend
from .tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised by ``gradcheck`` when backward and finite differences disagree; the message is the report."""


class NondifferentiableError(GradcheckError):
    """Raised by ``gradcheck`` when every disagreement is at a kink, where no backward can be judged."""


@dataclass
class InputReport:
    """How backward and finite differences compare for one input.

    ``worst_index`` is the entry of the input (full mode) or the number of the random direction (fast
    mode) that exceeds the tolerance by most; ``analytic`` and ``numeric`` are the values there.
    ``n_kinks`` entries failed where the function is not differentiable (not counted in ``n_failed``);
    ``kink_index`` is the first, ``kink_slopes`` its (left, right) one-sided slopes. ``output`` is the
    number of the output checked when ``fn`` returns several, else None.
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
    n_kinks: int = 0
    kink_index: tuple = None
    kink_slopes: tuple = None
    output: int = None

    @property
    def passed(self):
        return self.n_failed == 0 and self.n_kinks == 0

    def __str__(self):
        verdict = ", ".join([f"FAILED at {self.n_failed} of {self.n_compared}"] * bool(self.n_failed)
                            + [f"not differentiable at {self.n_kinks} of {self.n_compared}"] * bool(self.n_kinks))
        text = (f"{'' if self.output is None else f'output {self.output}, '}input {self.position} {self.shape}: "
                f"{verdict or 'ok'}; max abs error {self.max_abs_error:.3e}, max rel error {self.max_rel_error:.3e}; "
                f"worst at {self.worst_index}: analytic {self.analytic:.10g} vs numeric {self.numeric:.10g}")
        if self.n_kinks:
            left, right = self.kink_slopes
            text += (f"; a kink at {self.kink_index}: one-sided slopes {left:.6g} (left) and {right:.6g} (right), "
                     "so no backward can be judged there: draw inputs away from it")
        return text


@dataclass
class Report:
    """Per-input results of a check; ``passed`` is True when every checked input agrees."""

    mode: str
    inputs: list = field(default_factory=list)

    @property
    def passed(self):
        return all(r.passed for r in self.inputs)

    @property
    def only_kinks(self):
        """True when the check failed only where the function is not differentiable."""
        return not self.passed and not any(r.n_failed for r in self.inputs)

    def __str__(self):
        return "\n".join([f"gradcheck ({self.mode}):"] + [f"  {r}" for r in self.inputs])


def gradcheck(fn, *inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, check=None,
              fast_mode=False, n_directions=4, seed=0, grad_output=None):
    """Check ``fn``'s backward against central differences; True, or a GradcheckError with a report.

    Args:
        fn: takes the tensors ``inputs`` and returns one Tensor of any shape, or a tuple or list of them.
        inputs: Tensors (constants such as integer labels may be among them). Every floating input must
            be float64 (see the module docstring for why float32 is not enough).
        eps: the finite-difference step.
        atol, rtol: an entry passes when |analytic - numeric| <= atol + rtol * |numeric|.
        raise_exception: raise GradcheckError on failure (default); otherwise return False.
        check: indices of the inputs to check; by default every input with ``requires_grad``.
        fast_mode: compare v^T J u for ``n_directions`` random unit directions u per input instead of
            every entry of v^T J (for large inputs: 2 * n_directions forward passes, not 2 * size).
        seed: seeds the random v (and u); the same seed repeats the same check.
        grad_output: v itself (an array or Tensor of the output's shape; one per output for several)
            instead of a random one.

    Raises NondifferentiableError (a GradcheckError) when the only disagreements are at kinks.
    The given tensors are not modified: the check works on copies.
    """
    report = gradcheck_report(fn, *inputs, eps=eps, atol=atol, rtol=rtol, check=check, fast_mode=fast_mode,
                              n_directions=n_directions, seed=seed, grad_output=grad_output)
    if not report.passed and raise_exception:
        raise (NondifferentiableError if report.only_kinks else GradcheckError)(str(report))
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

    ys, single = _call(fn, xs)
    vs = _grad_outputs(grad_output, ys, single, rng)
    report = Report("fast, v^T J u" if fast_mode else "full, v^T J")
    for k, v in enumerate(vs):
        if k:  # the first call's graph serves output 0; each further output needs a graph of its own
            ys = _call(fn, xs)[0]
        for x in xs:
            x.grad = None
        if ys[k].requires_grad:  # else the output does not depend on the inputs: its gradients are 0
            ys[k].backward(v)

        def phi():
            with no_grad():
                return float(backend.xp(v).sum(v * _call(fn, xs)[0][k].data))

        with backend.on_device(ys[k].device):  # new arrays (zeros, perturbed inputs, products) where the data is
            for i in checked:
                x = xs[i].data
                gx = xs[i].grad if xs[i].grad is not None else backend.xp(x).zeros_like(x)
                moves = _directional(x, gx, rng, n_directions) if fast_mode else _entrywise(x, gx)
                report.inputs.append(_compare(i, x.shape, moves, phi, eps, atol, rtol, None if single else k))
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
    """fn's outputs as a list, and whether it returned one Tensor (not a tuple or list)."""
    y = fn(*xs)
    single = isinstance(y, Tensor)
    ys = [y] if single else list(y) if isinstance(y, (tuple, list)) else None
    if not ys or not all(isinstance(t, Tensor) for t in ys):
        raise TypeError(f"gradcheck: fn must return a Tensor or a tuple or list of Tensors, got {type(y).__name__}")
    for k, t in enumerate(ys):
        if t.dtype != np.float64:
            what = "" if single else f" as output {k}"
            raise TypeError(f"gradcheck: fn returned a {t.dtype} tensor{what}; it must compute in float64")
    return ys, single


def _grad_outputs(grad_output, ys, single, rng):
    """One v per output: ``grad_output`` (one array, or one per output) or random ones."""
    if grad_output is None:
        given = [None] * len(ys)
    elif single:
        given = [grad_output]
    elif isinstance(grad_output, (tuple, list)) and len(grad_output) == len(ys):
        given = list(grad_output)
    else:
        raise ValueError(f"gradcheck: fn returns {len(ys)} outputs; grad_output must be a list of as many arrays")
    vs = []
    for y, v in zip(ys, given):
        if v is None:
            v = rng.standard_normal(y.shape)
        v = v.data if isinstance(v, Tensor) else v
        if tuple(v.shape) != y.shape:
            raise ValueError(f"gradcheck: grad_output has shape {tuple(v.shape)}, the output has shape {y.shape}")
        vs.append(backend.to_device(np.asarray(v, np.float64) if not backend.is_gpu_array(v) else v, y.device))
    return vs


def _entrywise(x, gx):
    """(index, analytic, move) for every entry of x: ``move(t)`` sets the entry to its value + t; the
    entry is restored before the next one."""
    for index in np.ndindex(*x.shape):
        original = x[index].copy()

        def move(t):
            x[index] = original + t
        yield index, float(gx[index]), move
        x[index] = original


def _directional(x, gx, rng, n_directions):
    """(k, <g, u_k>, move) for random unit directions u_k: ``move(t)`` sets x to its value + t u_k."""
    xp = backend.xp(x)
    original = x.copy()
    for k in range(n_directions):
        u = rng.standard_normal(x.shape)
        u = backend.to_device(u / np.linalg.norm(u), backend.device_of(x))

        def move(t):
            x[...] = original + t * u
        yield (k,), float(xp.sum(gx * u)), move
        x[...] = original


def _one_sided_slopes(phi_at, plus, minus, eps):
    """The slopes of phi between -2 eps, -eps, 0, eps and 2 eps (phi at +-eps already known)."""
    values = [phi_at(-2 * eps), minus, phi_at(0.0), plus, phi_at(2 * eps)]
    return [(b - a) / eps for a, b in zip(values, values[1:])]


def _is_kink(slopes, atol, rtol):
    """Do the slopes jump (a kink) rather than change evenly (a smooth phi, by about eps phi'' each)?"""
    changes = [b - a for a, b in zip(slopes, slopes[1:])]
    return max(changes) - min(changes) > atol + rtol * max(abs(s) for s in slopes)


def _compare(position, shape, moves, phi, eps, atol, rtol, output):
    worst, excess_max, max_abs, max_rel, n_failed, n_compared = ((), 0.0, 0.0), -np.inf, 0.0, 0.0, 0, 0
    kinks = []
    for index, a, move in moves:
        def phi_at(t):
            move(t)
            return phi()
        n_compared += 1
        plus, minus = phi_at(eps), phi_at(-eps)
        n = (plus - minus) / (2 * eps)
        err = abs(a - n)
        excess = err - (atol + rtol * abs(n))
        if excess > 0:
            slopes = _one_sided_slopes(phi_at, plus, minus, eps)
            if _is_kink(slopes, atol, rtol):
                kinks.append((index, (slopes[1], slopes[2])))
                continue
        max_abs = max(max_abs, err)
        max_rel = max(max_rel, err / max(abs(a), abs(n)) if err else 0.0)
        n_failed += excess > 0
        if excess > excess_max:
            worst, excess_max = (index, a, n), excess
    index, a, n = worst
    kink_index, kink_slopes = kinks[0] if kinks else (None, None)
    return InputReport(position, tuple(shape), max_abs, max_rel, index, a, n, n_failed, n_compared,
                       len(kinks), kink_index, kink_slopes, output)
