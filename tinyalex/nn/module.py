"""Module: a layer or a network that owns parameters, buffers and sub-modules.

Assigning a Tensor that requires grad to an attribute registers it as a parameter, assigning a
Module registers a sub-module (as in PyTorch), so ``parameters()``, ``state_dict()``, ``to(device)``
and ``train()/eval()`` reach everything without bookkeeping in the layers. Buffers are raw arrays
that are state but not learned (BatchNorm's running statistics); ops update them in place.
"""
import numpy as np

from .. import backend
from .. import graph
from ..tensor import Tensor

_call_stack = []  # (module, path) of each module being called, kept only while the graph is watched


def current_path():
    """Module path of the innermost module being called (``columns.0.conv1``), "" outside any or at the
    outermost one; known only while a ``graph.Watcher`` (a ``trace()``) is active."""
    return _call_stack[-1][1] if _call_stack else ""


def _path_in_caller(m):
    """``m``'s path: the calling module's path and m's name below it (found by identity, so a network
    that calls a grandchild directly, as TwoColumnNet calls ``columns[k].conv1``, still names it);
    m's class name when it is not below its caller."""
    if not _call_stack:
        return ""
    caller, path = _call_stack[-1]
    name = next((n for n, c in caller.named_modules() if c is m and n), type(m).__name__)
    return f"{path}.{name}" if path else name


class Module:
    """Base class of layers and networks: ``module(x)`` calls ``forward(x)``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ---- registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning {name!r}")
        if isinstance(value, Tensor) and value.requires_grad:
            table = self._parameters
        elif isinstance(value, Module):
            table = self._modules
        elif name in self._buffers and value is not None:
            table = self._buffers  # a new array for a running statistic is still that statistic
        else:
            table = None
        for other in (self._parameters, self._buffers, self._modules):
            if other is not table:
                other.pop(name, None)
        if table is None:
            object.__setattr__(self, name, value)
        else:
            table[name] = value
            self.__dict__.pop(name, None)

    def __getattr__(self, name):  # called only when normal lookup fails
        for table in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(table, {})
            if name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name, array):
        """Keep a raw array as state that is saved and moved but not learned."""
        for table in (self._parameters, self._modules):
            table.pop(name, None)
        self.__dict__.pop(name, None)
        self._buffers[name] = array

    # ---- walking the tree
    def named_modules(self, prefix=""):
        """(qualified name, module) for this module and all below it, depth first."""
        yield prefix, self
        for name, m in self._modules.items():
            yield from m.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_parameters(self):
        """(qualified name, Tensor), e.g. ``("columns.0.conv1.weight", ...)``."""
        for prefix, m in self.named_modules():
            for name, p in m._parameters.items():
                yield (f"{prefix}.{name}" if prefix else name), p

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self):
        for prefix, m in self.named_modules():
            for name, b in m._buffers.items():
                yield (f"{prefix}.{name}" if prefix else name), b

    @property
    def buffers(self):
        """Buffers by qualified name (running statistics), as raw arrays."""
        return dict(self.named_buffers())

    def num_parameters(self):
        """Number of learned values (the paper's "60 million parameters")."""
        return sum(p.size for p in self.parameters())

    # ---- modes, devices, gradients
    def train(self, mode=True):
        """Training mode (dropout drops, batch norm uses batch statistics); returns self."""
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode: dropout off (or scaling, in paper mode), batch norm uses running stats."""
        return self.train(False)

    def to(self, device=None, dtype=None):
        """Move parameters, their gradients and buffers to ``device`` and/or cast them to ``dtype``.

        Works in place (the same Tensor objects, so an optimiser built earlier still holds them) and
        returns self. Casting to float64 is how gradient checks run a whole network.
        """
        device = None if device is None else backend.parse_device(device)
        if device is not None:
            backend.module_for(device)  # a clear error now if the device does not exist

        def convert(a):
            if a is None:
                return None
            if dtype is not None:
                with backend.on_device(backend.device_of(a)):  # the cast stays where the array is
                    a = a.astype(dtype, copy=False)
            return a if device is None else backend.to_device(a, device)

        for m in self.modules():
            for p in m._parameters.values():
                p.data, p.grad = convert(p.data), convert(p.grad)
            for name, b in m._buffers.items():
                m._buffers[name] = convert(b)
        return self

    @property
    def device(self):
        """Device of the parameters; ValueError when they are spread over several devices."""
        devices = sorted({p.device for p in self.parameters()} | {backend.device_of(b) for b in self.buffers.values()})
        if len(devices) > 1:
            raise ValueError(f"{type(self).__name__}: parameters are on several devices ({', '.join(devices)})")
        return devices[0] if devices else "cpu"

    def zero_grad(self):
        """Forget accumulated gradients (the next backward starts from nothing)."""
        for p in self.parameters():
            p.grad = None

    # ---- state
    def _state_arrays(self):
        """(qualified name, raw array) of every parameter and buffer: what a checkpoint holds."""
        yield from ((name, p.data) for name, p in self.named_parameters())
        yield from self.named_buffers()

    def state_dict(self):
        """Parameters and buffers as {qualified name: NumPy array}, copied (a snapshot)."""
        return {name: backend.to_numpy(a).copy() for name, a in self._state_arrays()}

    def load_state_dict(self, state, strict=True):
        """Copy arrays from ``state`` ({name: array}) into the parameters and buffers, in place; all or nothing.

        Values are cast to each parameter's dtype and copied to its device. A name the model lacks,
        or a model name ``state`` lacks, is an error when ``strict``; a wrong shape, or a value that is
        not an array of real numbers, always is. Every value is checked and cast before any is
        assigned, so a refused state leaves the model exactly as it was (a checkpoint's restore relies
        on this). Returns ``(missing, unexpected)`` name lists.
        """
        targets = dict(self._state_arrays())
        missing = sorted(set(targets) - set(state))
        unexpected = sorted(set(state) - set(targets))
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict: {type(self).__name__} state does not match: "
                             f"missing {missing or 'none'}, unexpected {unexpected or 'none'}")
        values = {}
        for name in sorted(set(targets) & set(state)):
            target, value = targets[name], np.asarray(backend.to_numpy(state[name]))
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: {name!r} has shape {value.shape} in the state "
                                 f"but {target.shape} in the model")
            if value.dtype.kind not in "biuf":  # the cast would fail on strings, drop the imaginary part of complex
                raise ValueError(f"load_state_dict: {name!r} should be an array of real numbers, got {value.dtype}")
            values[name] = value.astype(target.dtype, copy=False)
        for name, value in values.items():
            device = backend.device_of(targets[name])
            with backend.on_device(device):
                targets[name][...] = backend.to_device(value, device)
        for name, p in self.named_parameters():
            if name in values:
                p.mark_modified()
        return missing, unexpected

    # ---- calling and printing
    def forward(self, *inputs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *inputs):
        watched = bool(graph.watchers)  # module paths are for watchers: a plain run does not look them up
        if watched:
            _call_stack.append((self, _path_in_caller(self)))
        try:
            output = self.forward(*inputs)
        finally:
            if watched:
                _call_stack.pop()
        if watched:
            for watcher in graph.watchers:
                watcher.on_module(self, inputs, output)
        return output

    def extra_repr(self):
        """Configuration shown in the repr, e.g. ``3, 96, kernel_size=11, stride=4``."""
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        if not lines:
            return f"{type(self).__name__}({self.extra_repr()})"
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class Sequential(Module):
    """Modules applied one after another: ``Sequential(a, b, c)`` or ``Sequential({"conv1": a, ...})``.

    Children are named "0", "1", ... or by the dict's keys; ``seq[i]`` and ``seq["name"]`` index them.
    """

    def __init__(self, *modules):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], dict) else \
            ((str(i), m) for i, m in enumerate(modules))
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: entry {name!r} is a {type(m).__name__}, not a Module")
            setattr(self, name, m)

    def __getitem__(self, key):
        return self._modules[key] if isinstance(key, str) else list(self._modules.values())[key]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def names(self):
        return list(self._modules)

    def forward(self, x):
        for m in self._modules.values():
            x = m(x)
        return x


class ModuleList(Sequential):
    """A list of modules (the two columns of AlexNet) that are registered but not chained."""

    def forward(self, *inputs):
        raise TypeError("ModuleList is a container, not a layer: call its entries")

