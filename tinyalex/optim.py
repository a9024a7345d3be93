"""The paper's optimiser (stochastic gradient descent with momentum and weight decay) and schedules."""
from . import backend


class SGD:
    """Stochastic gradient descent exactly as the AlexNet paper states it (section 5):

        v_{i+1} = 0.9 v_i - 0.0005 eps w_i - eps dL/dw |_{w_i}
        w_{i+1} = w_i + v_{i+1}

    with momentum 0.9, weight decay 0.0005 and learning rate eps (0.01 at the start in the paper,
    divided by 10 three times). Weight decay enters the velocity scaled by the learning rate, as in
    this rule; "it reduces the model's training error", not only regularises.

    ``params``: the tensors to update (``model.parameters()``); one whose ``grad`` is None is left
    alone. ``lr`` may be changed between steps (the schedules below do). The update runs in place on
    the raw arrays through one reused scratch buffer, so a step allocates nothing.
    """

    def __init__(self, params, lr, momentum=0.9, weight_decay=5e-4):
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD: got an empty parameter list")
        for p in self.params:
            if not getattr(p, "requires_grad", False):
                raise TypeError(f"SGD: expected Tensors that require grad, got {p!r}")
        for name, value in (("lr", lr), ("momentum", momentum), ("weight_decay", weight_decay)):
            if value < 0:
                raise ValueError(f"SGD: {name} must not be negative, got {value}")
        self.lr, self.momentum, self.weight_decay = lr, momentum, weight_decay
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
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            w, g, v = p.data, p.grad, self._velocity(i)
            xp, s = backend.xp(w), self._scratch_for(p)
            with backend.on_device(p.device):  # CuPy runs kernels on the current device, not the array's
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
        names = sorted(k for k in state if k.startswith("velocity."))
        if len(names) != len(self.params):
            raise ValueError(f"SGD.load_state_dict: the state holds {len(names)} velocities "
                             f"for {len(self.params)} parameters")
        for i, p in enumerate(self.params):
            value = backend.to_numpy(state[f"velocity.{i}"])
            if tuple(value.shape) != p.shape:
                raise ValueError(f"SGD.load_state_dict: velocity.{i} has shape {tuple(value.shape)}, "
                                 f"parameter {i} has {p.shape}")
            self.velocity[i] = backend.to_device(value.astype(p.dtype), p.device)
        self.lr, self.momentum, self.weight_decay = (float(state[k]) for k in ("lr", "momentum", "weight_decay"))


class _Schedule:
    """A learning-rate schedule acting on ``optimizer.lr``; its counters are its state."""

    _state = ()

    def state_dict(self):
        return {name: getattr(self, name) for name in self._state}

    def load_state_dict(self, state):
        for name in self._state:
            setattr(self, name, type(getattr(self, name))(state[name]))


class ReduceOnPlateau(_Schedule):
    """Multiply the learning rate by ``factor`` when a validation metric stops improving.

    The paper "divide[d] the learning rate by 10 when the validation error rate stopped improving
    with the current learning rate" (section 5), by hand, three times. Here "stopped" means
    ``patience`` epochs in a row without a new best (lower for ``mode="min"``, higher for "max").
    Call ``step(metric)`` once per epoch; it returns True when it lowered the rate.
    """

    _state = ("best", "bad_epochs", "reductions")

    def __init__(self, optimizer, factor=0.1, patience=3, mode="min", min_lr=0.0):
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceOnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if not 0 < factor < 1:
            raise ValueError(f"ReduceOnPlateau: factor must be in (0, 1), got {factor}")
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

    _state = ("base_lr", "epoch")

    def __init__(self, optimizer, step_size, gamma=0.1):
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be a positive number of epochs, got {step_size}")
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr, self.epoch = float(optimizer.lr), 0

    def step(self):
        self.epoch += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.epoch // self.step_size)
