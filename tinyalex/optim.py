"""The paper's optimiser (stochastic gradient descent with momentum and weight decay) and schedules."""
import collections.abc
import functools
import math
import numbers
import sys

import numpy as np

from . import backend, threads

# What a number of an optimiser's or schedule's state may be: (said in errors, Python type, least, most).
# Rates stop short of inf, and NaN fails every comparison, so either would poison every later step.
_RATE = ("a finite number >= 0", float, 0.0, sys.float_info.max)
_COUNT = ("an integer >= 0", int, 0, math.inf)
_METRIC = ("a number, not NaN", float, -math.inf, math.inf)  # a best metric is ±inf until the first epoch

CPU_BLOCK = 1 << 17  # elements of a parameter that SGD.step updates at a time on the CPU (512 KB of float32)


def _number(where, name, value, rule):
    """``value`` as a Python float or int when it is one number as ``rule`` asks; else TypeError or ValueError.

    Accepts Python and NumPy scalars and 0-d arrays (a state read back from an ``.npz``); refuses
    bools, strings, sequences, and floats where an integer is asked, which ``float()``/``int()`` take.
    """
    what, kind, low, high = rule
    if isinstance(value, (np.ndarray, np.generic)) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Integral if kind is int else numbers.Real):
        raise TypeError(f"{where}: {name} should be {what}, got {value!r:.60}")
    if not low <= value <= high:  # compared before conversion: float(10**400) would overflow
        raise ValueError(f"{where}: {name} should be {what}, got {value!r:.60}")
    return kind(value)


def _check_keys(where, state, names):
    """Refuse a ``state`` that is not a mapping with exactly the keys ``names`` (TypeError, ValueError)."""
    if not isinstance(state, collections.abc.Mapping):
        raise TypeError(f"{where}: the state should be a dict, got {type(state).__name__}")
    missing, unexpected = (sorted(keys, key=str) for keys in (set(names) - set(state), set(state) - set(names)))
    if missing or unexpected:
        raise ValueError(f"{where}: the state does not match: missing {missing or 'none'}, "
                         f"unexpected {unexpected or 'none'}")


class SGD:
    """Stochastic gradient descent exactly as the AlexNet paper states it (section 5):

        v_{i+1} = 0.9 v_i - 0.0005 eps w_i - eps dL/dw |_{w_i}
        w_{i+1} = w_i + v_{i+1}

    with momentum 0.9, weight decay 0.0005 and learning rate eps (0.01 at the start in the paper,
    divided by 10 three times). Weight decay enters the velocity scaled by the learning rate, as in
    this rule; "it reduces the model's training error", not only regularises.

    ``params``: the tensors to update (``model.parameters()``); one whose ``grad`` is None is left
    alone. ``lr`` may be changed between steps (the schedules below do). The update runs in place on
    the raw arrays; on the CPU in blocks shared out among the threads (``threads``), each with a
    scratch block of its own, elsewhere through one reused scratch buffer.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=5e-4):
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: got an empty parameter list")
        for p in self.params:
            if not getattr(p, "requires_grad", False):
                raise TypeError(f"SGD: expected Tensors that require grad, got {p!r}")
        self.lr, self.momentum, self.weight_decay = (
            _number("SGD", name, value, _RATE)
            for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)))
        self.velocity = []
        for p in self.params:
            with backend.on_device(p.device):
                self.velocity.append(backend.xp(p.data).zeros_like(p.data))
        self._scratch = {}

    def zero_grad(self):
        """Forget the gradients of all parameters (call between steps: backward adds to them)."""
        for p in self.params:
            p.grad = None

    def step(self):
        """One update of every parameter that has a gradient."""
        blocks = []  # (w, g, v) blocks of the CPU's parameters, updated after the loop
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            p.mark_modified()  # a graph that saved the old weights can no longer be walked
            w, g, v = p.data, p.grad, self._velocity(i)
            if p.device != "cpu" or not (w.flags.c_contiguous and v.flags.c_contiguous):
                with backend.on_device(p.device):  # CuPy runs kernels on the current device, not the array's
                    self._update(w, g, v, self._scratch_for(p))
                continue
            # Block by block on the CPU: a block of w, g, v and the scratch (512 KB each) stays in the
            # core's cache through the five passes, so memory is crossed once, not five times (1.8x on fc6).
            w, g, v = (a.reshape(-1) for a in (w, g, v))
            blocks += [(w[b], g[b], v[b]) for b in (slice(a, a + CPU_BLOCK) for a in range(0, w.size, CPU_BLOCK))]
        # the blocks shared out among the threads: every value's update is its own, so any cut gives the
        # same bits (the update of AlexNet's 61 M parameters, one thread -> two: 115.5 -> 67.9 ms, BENCHMARKS.md)
        if blocks:
            parts = threads.cut(0, len(blocks), min(threads.count(), len(blocks)))
            threads.in_parallel([functools.partial(self._update_blocks, blocks[part]) for part in parts])

    def _update_blocks(self, blocks):
        """The rule on each (w, g, v) of ``blocks`` in turn, with a scratch block of this call's own."""
        scratch = {}  # one block a dtype, made once per call (not per block: setdefault's default would be)
        for w, g, v in blocks:
            if w.dtype not in scratch:
                scratch[w.dtype] = np.empty(CPU_BLOCK, w.dtype)
            self._update(w, g, v, scratch[w.dtype][:w.size])

    def _update(self, w, g, v, s):
        """The rule above on arrays of one shape, in place (``s``: scratch of that shape)."""
        xp = backend.xp(w)
        xp.multiply(w, self.weight_decay * self.lr, out=s)
        v *= self.momentum
        v -= s                           # 0.9 v - 0.0005 eps w
        xp.multiply(g, self.lr, out=s)
        v -= s                           # ... - eps dL/dw
        w += v

    def _velocity(self, i):
        # the model may have been moved (model.to) after the optimiser was made
        p, v = self.params[i], self.velocity[i]
        if backend.device_of(v) != p.device or v.dtype != p.dtype:
            with backend.on_device(p.device):  # moved first, so that the cast is made on p's device
                v = self.velocity[i] = backend.to_device(v, p.device).astype(p.dtype, copy=False)
        return v

    def _scratch_for(self, p):
        """A view of shape p.shape into one buffer per (device, dtype), as large as the largest parameter."""
        key = (p.device, p.dtype)
        if key not in self._scratch:
            size = max(q.size for q in self.params if (q.device, q.dtype) == key)
            with backend.on_device(p.device):
                self._scratch[key] = backend.xp(p.data).empty(size, p.dtype)
        return self._scratch[key][:p.size].reshape(p.shape)

    def state_dict(self):
        """{"lr", "momentum", "weight_decay": floats, "velocity.i": NumPy array}: enough to resume exactly."""
        state = {"lr": self.lr, "momentum": self.momentum, "weight_decay": self.weight_decay}
        state.update({f"velocity.{i}": backend.to_numpy(v).copy() for i, v in enumerate(self.velocity)})
        return state

    def load_state_dict(self, state):
        """Resume from a ``state_dict()``, all or nothing: a bad field raises and leaves the optimiser as it was.

        Every field is checked, and every velocity copied to its parameter's device, before any is
        assigned: a half-restored optimiser (new velocities, old lr) would train on silently.
        Velocities may be of any float dtype and are cast to their parameter's, as
        ``Module.load_state_dict`` casts weights (a float32 run resumes in float64). Raises
        TypeError or ValueError saying what was expected and what came.
        """
        where, rates = "SGD.load_state_dict", ("lr", "momentum", "weight_decay")
        _check_keys(where, state, [*rates, *(f"velocity.{i}" for i in range(len(self.params)))])
        lr, momentum, weight_decay = (_number(where, name, state[name], _RATE) for name in rates)
        velocity = []
        for i, p in enumerate(self.params):
            value = state[f"velocity.{i}"]
            if not (isinstance(value, np.ndarray) or backend.is_gpu_array(value)):
                raise TypeError(f"{where}: velocity.{i} should be an array, got {type(value).__name__}")
            if value.dtype.kind != "f" or tuple(value.shape) != p.shape:
                raise ValueError(f"{where}: velocity.{i} should be a float array of shape {p.shape} "
                                 f"(parameter {i}), got {value.dtype} {tuple(value.shape)}")
            # astype copies: step() updates velocities in place and must not write into the caller's state
            velocity.append(backend.to_device(backend.to_numpy(value).astype(p.dtype), p.device))
        self.lr, self.momentum, self.weight_decay, self.velocity = lr, momentum, weight_decay, velocity


class _Schedule:
    """A learning-rate schedule acting on ``optimizer.lr``; its counters are its state.

    ``_state`` maps each state field to the rule its value must follow (_RATE, _COUNT, _METRIC).
    """

    _state = {}

    def state_dict(self):
        return {name: getattr(self, name) for name in self._state}

    def load_state_dict(self, state):
        """Resume from a ``state_dict()``, all or nothing: every field is checked before any is set."""
        where = f"{type(self).__name__}.load_state_dict"
        _check_keys(where, state, self._state)
        values = {name: _number(where, name, state[name], rule) for name, rule in self._state.items()}
        for name, value in values.items():
            setattr(self, name, value)


class ReduceOnPlateau(_Schedule):
    """Multiply the learning rate by ``factor`` when a validation metric stops improving.

    The paper "divide[d] the learning rate by 10 when the validation error rate stopped improving
    with the current learning rate" (section 5), by hand, three times. Here "stopped" means
    ``patience`` epochs in a row without a new best (lower for ``mode="min"``, higher for "max").
    Call ``step(metric)`` once per epoch; it returns True when it lowered the rate.
    """

    _state = {"best": _METRIC, "bad_epochs": _COUNT, "reductions": _COUNT}

    def __init__(self, optimizer, factor=0.1, patience=3, mode="min", min_lr=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceOnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor}")
        patience = _number("ReduceOnPlateau", "patience", patience, _COUNT)
        self.optimizer, self.factor, self.patience, self.mode, self.min_lr = optimizer, factor, patience, mode, min_lr
        self.best, self.bad_epochs, self.reductions = float("inf") if mode == "min" else -float("inf"), 0, 0

    def step(self, metric):
        metric = float(metric)
        if metric < self.best if self.mode == "min" else metric > self.best:
            self.best, self.bad_epochs = metric, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs <= self.patience or self.optimizer.lr <= self.min_lr:
            return False
        self.optimizer.lr = max(self.optimizer.lr * self.factor, self.min_lr)
        self.bad_epochs, self.reductions = 0, self.reductions + 1
        return True


class StepLR(_Schedule):
    """lr = base_lr * gamma^(epoch // step_size): a fixed step schedule. Call ``step()`` after each epoch."""

    _state = {"base_lr": _RATE, "epoch": _COUNT}

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive number of epochs, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.epoch = float(optimizer.lr), 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
