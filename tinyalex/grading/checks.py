"""The grader's building blocks: cases, checks, verdicts and the hints for classic mistakes.

A ``Check`` states one claim ("col2im adds overlapping windows", "conv2d's backward agrees with
finite differences"). It makes a list of ``Case``s (random shapes and edge cases, seeded), runs the
student's functions on each and returns ``Verdict``s: the student's answer against the engine's, or
against central differences. The smallest failing case is reported with its errors, and a hint when
the answer matches a known mistake (``Mistake``) or when only cases with one edge feature fail
(``Pattern``: e.g. only overlapping windows, the signature of col2im writing ``=`` instead of ``+=``).
"""
import dataclasses
from typing import Callable

import numpy as np

from .. import backend
from ..gradcheck import gradcheck_report
from ..tensor import Function, Tensor
from . import solutions


class StudentError(Exception):
    """The student's code raised, exited or returned something unusable (the message says which)."""


@dataclasses.dataclass
class Case:
    """One set of inputs. ``label`` shows shapes and settings; ``tags`` its edge features."""

    label: str
    args: dict
    tags: frozenset = frozenset()
    size: int = 0  # cases run smallest first, so the first failure is the smallest failing case


@dataclasses.dataclass
class Verdict:
    """One compared output (``what``: "col", "gx", ...) of one case."""

    what: str
    ok: bool
    max_abs: float = 0.0
    max_rel: float = 0.0
    detail: str = ""
    got: object = None


@dataclasses.dataclass
class Mistake:
    """A classic mistake: ``detect(got, case, device)`` is True when the outputs ``got`` (a dict
    what -> NumPy array) are what the mistake would give."""

    hint: str
    detect: Callable


@dataclasses.dataclass
class Pattern:
    """A hint for when every failing case has ``tag`` while some case without it passes."""

    tag: str
    hint: str


@dataclasses.dataclass
class Check:
    name: str
    cases: Callable  # rng -> list of Case
    run: Callable  # (student, case, device) -> list of Verdict
    mistakes: tuple = ()
    patterns: tuple = ()


# ------------------------------------------------------------------ comparing
RTOL, ATOL = 1e-6, 1e-8  # float64 answers that follow the same formula agree far better than this


def as_numpy(a, what):
    """A student's output as a float64 NumPy array, or a StudentError naming what came instead."""
    if isinstance(a, (int, float, np.number)) or backend.is_gpu_array(a) or isinstance(a, np.ndarray):
        return np.asarray(backend.to_numpy(a), dtype=np.float64)
    raise StudentError(f"{what} should be an array, got {kind(a)}")


def as_shaped(a, shape, what):
    """``as_numpy``, and a StudentError unless the shape is ``shape``."""
    a = as_numpy(a, what)
    if a.shape != tuple(shape):
        raise StudentError(f"{what} has shape {a.shape}, expected {tuple(shape)}")
    return a


def compare(what, got, want, rtol=RTOL, atol=ATOL):
    """Verdict on ``got`` against ``want`` entrywise: |got - want| <= atol + rtol |want|."""
    got, want = as_numpy(got, what), np.asarray(backend.to_numpy(want), dtype=np.float64)
    if got.shape != want.shape:
        return Verdict(what, False, np.inf, np.inf, f"{what} has shape {got.shape}, expected {want.shape}", got)
    err = np.abs(got - want)
    err = np.where(np.isfinite(err), err, np.inf)  # a NaN answer is as wrong as can be
    if not err.size:
        return Verdict(what, True, got=got)
    bad = err > atol + rtol * np.abs(want)
    max_abs, max_rel = float(err.max()), float((err / (np.abs(want) + atol)).max())
    detail = ""
    if bad.any():
        where = np.unravel_index(int(np.argmax(np.where(bad, err, -1))), err.shape)
        at = f"{what}[{', '.join(str(int(i)) for i in where)}]" if where else what
        detail = f"{at} = {got[where]:.8g}, expected {want[where]:.8g} ({int(bad.sum())} of {bad.size} wrong)"
    return Verdict(what, not bad.any(), max_abs, max_rel, detail, got)


def close(a, b):
    """Whether two outputs agree to the grader's tolerance (used to recognise a mistake's answer)."""
    return compare("", a, b).ok


def compare_all(got, want, names):
    """Verdicts for a tuple of outputs (``got`` checked to be a tuple of the right length)."""
    if not isinstance(got, (tuple, list)) or len(got) != len(want):
        raise StudentError(f"expected {len(want)} results ({', '.join(names)}), got {kind(got)}"
                           + (f" of length {len(got)}" if isinstance(got, (tuple, list)) else ""))
    return [compare(n, g, w) for n, g, w in zip(names, got, want)]


def unpack_pair(result, fn_name):
    """A forward's ``(out, cache)``, or a StudentError saying what came instead."""
    if not isinstance(result, tuple) or len(result) != 2:
        raise StudentError(f"{fn_name} should return (out, cache), got {kind(result)}")
    return result


# ------------------------------------------------------------------ a layer against the engine
def layer_forward(student, name, arrays, options, device, what="y"):
    """Verdict on the student's ``name_forward`` output against the engine's (via ``solutions``)."""
    got, _ = unpack_pair(getattr(student, f"{name}_forward")(*on(device, *arrays), **options), f"{name}_forward")
    want, _ = getattr(solutions, f"{name}_forward")(*on(device, *arrays), **options)
    return [compare(what, got, want)]


def layer_backward(student, name, arrays, options, gy, names, device):
    """Verdicts on the student's ``name_backward`` gradients (``names``) against the engine's for the
    upstream gradient ``gy``."""
    _, cache = unpack_pair(getattr(student, f"{name}_forward")(*on(device, *arrays), **options), f"{name}_forward")
    got = getattr(student, f"{name}_backward")(*on(device, gy), cache)
    _, engine_cache = getattr(solutions, f"{name}_forward")(*on(device, *arrays), **options)
    want = getattr(solutions, f"{name}_backward")(*on(device, gy), engine_cache)
    if len(names) == 1:
        got, want = (got,), (want,)
    return compare_all(got, want, names)


def layer_runs(name, inputs, grads, out="y"):
    """The three runs of a layer exercise, for cases whose args hold the arrays ``inputs``, the upstream
    gradient "gy" and the layer's "options": the forward against the engine, the backward against the
    engine's gradients ``grads``, and the backward against finite differences."""
    def arrays(case):
        return [case.args[k] for k in inputs]

    def forward(student, case, device):
        return layer_forward(student, name, arrays(case), case.args["options"], device, out)

    def backward(student, case, device):
        return layer_backward(student, name, arrays(case), case.args["options"], case.args["gy"], grads, device)

    def differences(student, case, device):
        return finite_differences(student, name, arrays(case), inputs, device, **case.args["options"])
    return forward, backward, differences


# ------------------------------------------------------------------ finite differences
class StudentOp(Function):
    """A student's forward/backward pair as an engine Function, so the gradient checker can run it."""

    def __init__(self, forward, backward, name, **options):
        self.forward_fn, self.backward_fn, self.name, self.options = forward, backward, name, options

    def forward(self, *arrays):
        out, cache = unpack_pair(self.forward_fn(*arrays, **self.options), f"{self.name}_forward")
        self.save_for_backward(cache=cache)
        return backend.to_device(as_numpy(out, f"{self.name}_forward's output"), backend.device_of(arrays[0]))

    def backward(self, gy):
        grads = self.backward_fn(gy, self.saved.cache)
        grads = grads if isinstance(grads, tuple) else (grads,)
        if len(grads) != len(self.inputs):
            raise StudentError(f"{self.name}_backward should return {len(self.inputs)} gradient(s), got {len(grads)}")
        return tuple(as_input(g, t, f"{self.name}_backward") for g, t in zip(grads, self.inputs))


def as_input(g, edge, fn_name):
    """A student's gradient as an array shaped and placed like the input ``edge`` of the graph."""
    g = as_numpy(g, f"{fn_name}'s gradient")
    if g.shape != edge.shape:
        raise StudentError(f"{fn_name} returned a gradient of shape {g.shape} for an input of shape {edge.shape}")
    return backend.to_device(g, edge.device)


def finite_differences(student, name, arrays, names, device, seed=0, **options):
    """Verdicts of the engine's gradient checker on the student's ``name_forward``/``name_backward``.

    The check is independent of the engine's own layer: the student's backward must agree with central
    differences of the student's forward (float64, the checker's default tolerances).
    """
    op = lambda *ts: StudentOp(getattr(student, f"{name}_forward"), getattr(student, f"{name}_backward"),
                               name, **options)(*ts)
    tensors = [Tensor(backend.to_device(np.asarray(a, np.float64), device), requires_grad=True) for a in arrays]
    report = gradcheck_report(op, *tensors, seed=seed)
    return [Verdict(f"{n} (finite differences)", r.passed, r.max_abs_error, r.max_rel_error,
                    "" if r.passed else f"backward gives {r.analytic:.8g}, finite differences {r.numeric:.8g} "
                    f"at {n}{list(r.worst_index)} ({r.n_failed} of {r.n_compared} wrong)")
            for n, r in zip(names, report.inputs)]


# ------------------------------------------------------------------ running a check
def run_check(check, student, rng, device):
    """Run every case of ``check``; the result is a JSON-able dict for the report."""
    cases = sorted(check.cases(rng), key=lambda c: c.size)
    outcomes = []  # (case, verdicts or None, error message or None)
    for case in cases:
        try:
            outcomes.append((case, check.run(student, case, device), None))
        except StudentError as e:
            outcomes.append((case, None, str(e)))
            if "not implemented" in str(e) or "is not defined" in str(e):
                break  # every other case would say the same
    failed = [(c, v, e) for c, v, e in outcomes if e is not None or not all(x.ok for x in v)]
    result = {"check": check.name, "passed": not failed, "cases": len(cases),
              "failed": len(cases) - len(outcomes) + len(failed)}  # cases not run count as failed
    if not failed:
        return result
    case, verdicts, error = failed[0]
    if error is not None:
        result["error"] = error
        if len(outcomes) > 1:
            result["smallest"] = case.label
        return result
    result["smallest"] = case.label
    bad = [v for v in verdicts if not v.ok]
    result.update(max_abs=max(v.max_abs for v in bad), max_rel=max(v.max_rel for v in bad),
                  detail="; ".join(v.detail for v in bad if v.detail))
    hint = _hint(check, case, verdicts, outcomes, device)
    if hint:
        result["hint"] = hint
    return result


def _hint(check, case, verdicts, outcomes, device):
    got = {v.what: v.got for v in verdicts}
    for mistake in check.mistakes:
        try:
            if mistake.detect(got, case, device):
                return mistake.hint
        except (StudentError, KeyError, ValueError):
            continue  # the mistake's test does not apply to this answer
    for pattern in check.patterns:
        fails = [c for c, v, e in outcomes if e is None and not all(x.ok for x in v)]
        passes_without = any(pattern.tag not in c.tags for c, v, e in outcomes if e is None and all(x.ok for x in v))
        if fails and passes_without and all(pattern.tag in c.tags for c in fails):
            return pattern.hint
    return None


# ------------------------------------------------------------------ the student's functions
class Student:
    """The student's functions, called in their own process: ``call(name, args, kwargs)`` sends the
    inputs there and returns the worker's reply (``runner.Worker.call``). A result comes back as plain
    values and arrays; an exception, a missing function or a stub becomes a StudentError naming the
    function (and the line of the student's file)."""

    def __init__(self, call, file_name, memory_mb):
        self.call, self.file_name, self.memory_mb = call, file_name, memory_mb

    def __getattr__(self, name):
        def remote(*args, **kwargs):
            reply = self.call(name, args, kwargs)
            if "result" in reply:
                return reply["result"]
            if "missing" in reply:
                raise StudentError(f"{name} is not defined in {self.file_name}")
            if "not_implemented" in reply:
                raise StudentError(f"{name} not implemented")
            over = f" (over the memory limit of {self.memory_mb} MB)" if reply["raised"] == "MemoryError" else ""
            raise StudentError(f"{name} raised {reply['raised']}: {reply['message']}{reply['where']}{over}")
        return remote


def kind(a):
    """The type's name of a student's result, also for an object that stayed in the student's process."""
    return getattr(a, "type_name", type(a).__name__)


def rand(rng, *shape):
    """Standard normal float64 values (for inputs, weights and upstream gradients)."""
    return rng.standard_normal(shape)


def on(device, *arrays):
    """Fresh copies of the case's arrays on ``device`` (whoever changes them in place changes a copy)."""
    return [backend.to_device(np.array(a), device) for a in arrays]
