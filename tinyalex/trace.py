"""Step through a forward and backward pass: every op, its shapes, its time, what its values look like.

    with ta.trace() as t:
        loss = F.softmax_cross_entropy(model(x), labels)
        loss.backward()
    print(t.table())

Each call of a Function inside the block adds a ``Record``, named by the op and by the path of the module
that called it (``columns.0.conv1``: the first column's conv1), so one column can be followed through
the network: in the forward pass the mean and standard
deviation of what it computed (are activations dying, exploding?), in the backward pass the norm of the
gradients it sent to its inputs (are they vanishing?). Times are wall-clock; on a GPU the engine waits
for each op to finish while a trace is on, so the time is the op's work, not its launch.
"""
import math
import weakref
from dataclasses import dataclass

from . import backend
from .nn.module import current_path
from .graph import Watcher


@dataclass
class Record:
    """One call of one op. In the backward phase the "inputs" are the gradients that arrive
    (shaped like the op's outputs) and the "outputs" the gradients it returns (one per input)."""

    phase: str          # "forward" or "backward"
    name: str           # the Function's label, e.g. "Conv2d"
    input_shapes: list  # shapes (None where an op returns no gradient for an input)
    output_shapes: list
    device: str
    seconds: float
    module: str = ""        # path of the module that called the op ("" outside any, or at the top)
    mean: float = None      # forward: of all output values
    std: float = None
    grad_norm: float = None  # backward: L2 norm of all returned gradients together


def _shapes(arrays):
    return [None if a is None else tuple(a.shape) for a in arrays]


def _moments(arrays):
    """Mean and standard deviation of all values of ``arrays`` taken together (computed in float64)."""
    n = sum(a.size for a in arrays)
    if n == 0:
        return None, None
    xp = backend.xp(arrays[0])
    with backend.on_device(backend.device_of(arrays[0])):  # the sums run where the arrays are
        mean = sum(float(xp.sum(a, dtype="float64")) for a in arrays) / n
        var = sum(float(xp.sum((a.astype("float64") - mean) ** 2)) for a in arrays) / n
    return mean, math.sqrt(var)


class Trace(Watcher):
    """Watcher of every Function call while active (use ``tinyalex.trace()``); ``records`` in call order."""

    def __init__(self):
        self.records = []
        self._paths = weakref.WeakKeyDictionary()  # Function -> module path, for its backward row

    def on_forward(self, fn, inputs, outputs, seconds):
        values = [o.data for o in outputs if o.dtype.kind == "f"]
        mean, std = _moments(values) if values else (None, None)
        device = inputs[0].device if inputs else outputs[0].device
        path = self._paths[fn] = current_path()
        self.records.append(Record("forward", fn.label, [t.shape for t in inputs], [o.shape for o in outputs],
                                   device, seconds, path, mean=mean, std=std))

    def on_backward(self, fn, grad_outputs, grad_inputs, seconds):
        given = [g for g in grad_inputs if g is not None]
        with backend.on_device(fn.inputs[0].device):  # where backward returned its gradients
            norm = math.sqrt(sum(float(backend.xp(g).sum(g.astype("float64") ** 2)) for g in given)) if given else None
        self.records.append(Record("backward", fn.label, _shapes(grad_outputs), _shapes(grad_inputs),
                                   fn.inputs[0].device, seconds, self._paths.get(fn, ""), grad_norm=norm))

    def table(self):
        """The records as a printable text table, with the total time of each phase at the foot."""
        head = ("#", "phase", "op", "module", "inputs", "outputs", "device", "ms", "mean", "std", "|grad|")
        rows = [head] + [(str(i), r.phase, r.name, r.module or "-", _format_shapes(r.input_shapes),
                          _format_shapes(r.output_shapes), r.device, f"{1e3 * r.seconds:.3f}",
                          _number(r.mean), _number(r.std), _number(r.grad_norm))
                         for i, r in enumerate(self.records)]
        widths = [max(len(row[c]) for row in rows) for c in range(len(head))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
        lines.insert(1, "-" * len(lines[0]))
        totals = {p: sum(r.seconds for r in self.records if r.phase == p) for p in ("forward", "backward")}
        lines.append(", ".join(f"{p} {1e3 * s:.3f} ms" for p, s in totals.items()))
        return "\n".join(lines)


def _format_shapes(shapes):
    return " ".join("-" if s is None else "x".join(map(str, s)) or "scalar" for s in shapes)


def _number(v):
    return "" if v is None else f"{v:.4g}"


def trace():
    """Record every op of the forward and backward passes run inside ``with tinyalex.trace() as t:``."""
    return Trace()
