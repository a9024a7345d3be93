"""The recorded graph: when it is recorded (``no_grad``), what it keeps of each input (``Edge``), who
watches the calls (``Watcher``), and the reverse walk that applies the chain rule (``backward``).

The graph keeps the arrays that each Function saved and nothing else: of an intermediate tensor it
keeps where the tensor came from (an ``Edge``), not its values, so an activation that no backward
needs (the convolution's output before the ReLU, which keeps its own output) is freed as soon as
the forward pass moves on, as in PyTorch. This module knows tensors only by their attributes, so
``tensor.py`` builds on it without an import going back.
"""
import contextlib
import time

from . import backend

_grad_enabled = True
watchers = []  # the active Watchers; empty in normal runs, so nothing is timed


@contextlib.contextmanager
def no_grad():
    """Inside this context no graph is recorded (evaluation, optimiser updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled():
    return _grad_enabled


class Watcher:
    """Sees every call of an op (and of a module) while active: ``with watcher: ...`` (Chainer's FunctionHook).

    Subclasses override what they need (each default does nothing):
      ``on_forward(fn, inputs, outputs, seconds)``: after a Function's forward, with its input and
          output tensors;
      ``on_backward(fn, grad_outputs, grad_inputs, seconds)``: after its backward, with the raw
          gradients that arrived (shaped like the outputs) and those it returned (one per input,
          None where none);
      ``on_module(module, inputs, output)``: after an ``nn.Module`` call (layer tables).
    ``seconds`` is wall time once the device finished: while a watcher is active a GPU is waited for
    after every op, so the time is the op's work, not its launch. The watcher is removed on leaving
    the block, also after an error.
    """

    def on_forward(self, fn, inputs, outputs, seconds):
        pass

    def on_backward(self, fn, grad_outputs, grad_inputs, seconds):
        pass

    def on_module(self, module, inputs, output):
        pass

    def __enter__(self):
        watchers.append(self)
        return self

    def __exit__(self, *exc):
        watchers.remove(self)
        return False


def clock(device):
    """Wall time once ``device`` has finished its queued work: GPU kernels run asynchronously, so
    without the wait a watcher would time an op's launch, not its work."""
    backend.synchronize(device)
    return time.perf_counter()


class Edge:
    """What the graph keeps of one input of a Function: where its gradient goes, not its values.

    ``creator`` and ``slot`` name the output it was (None for a leaf); ``leaf`` is the leaf tensor
    itself when it requires grad (backward adds to its ``.grad``); ``shape``, ``dtype``, ``device``
    and ``requires_grad`` describe it. Keeping the input Tensor instead would keep every activation
    of the network alive until the graph dies, whether or not a backward needs it.
    """

    __slots__ = ("creator", "slot", "leaf", "shape", "dtype", "device", "requires_grad")

    def __init__(self, t):
        self.creator, self.slot, self.requires_grad = t.creator, t.slot, t.requires_grad
        self.leaf = t if t.creator is None and t.requires_grad else None
        self.shape, self.dtype, self.device = t.shape, t.dtype, t.device

    @property
    def key(self):
        """Key of this tensor's gradient during the walk (its creator's identity and output slot)."""
        return id(self.creator), self.slot

    def __repr__(self):
        return f"Edge(shape={self.shape}, creator={type(self.creator).__name__ if self.creator else None})"


def _topological_order(root):
    """Functions reachable from ``root``, each after all functions that consume its outputs."""
    order, seen = [], set()
    stack = [(root.creator, False)] if root.creator is not None else []
    while stack:  # iterative depth-first search: deep networks would overflow Python's recursion
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        stack.append((fn, True))
        stack.extend((t.creator, False) for t in fn.inputs if t.creator is not None and id(t.creator) not in seen)
    return order[::-1]


def backward(root, grad):
    """Reverse-mode walk from ``root`` with dL/d(root) = ``grad`` (a raw array)."""
    if root.creator is None:
        with backend.on_device(root.device):
            _accumulate_leaf(root, grad)
        return
    grads = {(id(root.creator), root.slot): grad}
    for fn in _topological_order(root):
        # an output that no later op used (and that is not the root) gets no gradient here
        outs = [grads.pop((id(fn), slot), None) for slot in range(len(fn.output_specs))]
        if all(g is None for g in outs):
            continue
        if getattr(fn, "saved", ()) is None:
            raise RuntimeError(f"backward: the graph through {fn.label} was already walked and its saved arrays "
                               "freed; run the forward pass again to back-propagate again")
        _check_versions(fn)
        if any(g is None for g in outs):  # an output nobody used (one half of a split): its gradient is 0
            like = next(g for g in outs if g is not None)
            xp = backend.xp(like)
            with backend.on_device(backend.device_of(like)):
                outs = [xp.zeros(shape, dtype) if g is None else g for g, (shape, dtype) in zip(outs, fn.output_specs)]
        start = clock(fn.inputs[0].device) if watchers else 0.0
        with backend.on_device(fn.inputs[0].device):
            in_grads = fn.backward(*outs)
        if not isinstance(in_grads, tuple):
            in_grads = (in_grads,)
        if len(in_grads) != len(fn.inputs):
            raise RuntimeError(f"{fn.label}.backward returned {len(in_grads)} gradients for {len(fn.inputs)} inputs")
        for watcher in watchers:
            watcher.on_backward(fn, outs, in_grads, clock(fn.inputs[0].device) - start)
        fn.saved = None  # free what forward kept; the graph cannot be walked twice
        with backend.on_device(fn.inputs[0].device):  # the sums below are new arrays on the inputs' device
            for t, g in zip(fn.inputs, in_grads):
                if g is None or not t.requires_grad:
                    continue
                if g.shape != t.shape:
                    raise RuntimeError(f"{fn.label}.backward gave a gradient of shape {g.shape} "
                                       f"for an input of shape {t.shape}")
                if t.creator is None:
                    # a new array that reaches one input only, and no watcher has seen, is taken as it is
                    owned = fn.new_grads and not watchers and sum(h is g for h in in_grads) == 1
                    _accumulate_leaf(t.leaf, g, owned)
                else:
                    key = t.key
                    grads[key] = grads[key] + g if key in grads else g


def _check_versions(fn):
    """Refuse to run ``fn.backward`` on saved arrays that were changed in place after its forward."""
    n_in = len(fn.inputs)
    for i, version, count in fn.versions:
        if version.count != count:
            what = f"input {i} {fn.inputs[i].shape}" if i < n_in else f"output {i - n_in} {fn.output_specs[i - n_in][0]}"
            raise RuntimeError(f"backward: {what} of {fn.label}, which its backward needs, was changed in place "
                               f"after the forward pass (version {count}, now {version.count}); run the forward "
                               "pass again after changing it")


def _accumulate_leaf(t, g, owned=False):
    """Add g to t.grad; a first gradient is copied, unless ``owned`` (nothing else holds g)."""
    if t.requires_grad:
        t.grad = (g if owned else g.copy()) if t.grad is None else t.grad + g
