"""Per-op lines: each convolution, LRN, pooling, fully connected layer and the loss, timed alone,
forward and backward, at the shapes the network gives it; their FLOPs; where a step's time goes."""
import collections
import copy

import numpy as np

from .. import backend
from ..tensor import tensor
from .clocks import clock, interleaved, pause_for
from .report import row
from .twin import to_torch, twin_of

LINES = {"Conv2d": "conv", "LRN": "lrn", "MaxPool2d": "pool", "Linear": "fc", "SoftmaxCrossEntropy": "softmax-CE"}


def op_lines(tape):
    """The tape's measured ops, named as in the paper: conv1-conv5, then fc6-fc8; an LRN or pooling
    op takes the number of the convolution it follows (lrn1, pool5), and ops that run once per
    column get a letter (lrn1a, lrn1b). Returns [name, function, inputs, outputs] lists."""
    lines, convs, fcs = [], 0, 0
    for fn, inputs, outputs in tape.entries:
        kind = LINES.get(fn.label)
        convs += kind == "conv"
        fcs += kind == "fc"
        if kind is not None:
            number = {"conv": convs, "fc": convs + fcs, "softmax-CE": ""}.get(kind, convs)
            lines.append([f"{kind}{number}", fn, inputs, outputs])
    repeated = collections.Counter(name for name, *_ in lines)
    seen = collections.Counter()
    for line in lines:
        if repeated[line[0]] > 1:
            seen[line[0]] += 1
            line[0] += chr(ord("a") + seen[line[0]] - 1)
    return lines


def gemm_flops(fn, inputs, outputs):
    """(forward, backward) FLOPs of a convolution or linear layer; (0, 0) for the other ops.

    Each output element is a dot product with one filter (``w.size / O`` multiply-adds); backward
    repeats that product once for each of x and w that needs a gradient (the bias is left out).
    """
    if fn.label not in ("Conv2d", "Linear"):
        return 0, 0
    x, w = inputs[:2]
    forward = 2 * outputs[0].size * (w.size // w.shape[0])
    return forward, forward * (x.requires_grad + w.requires_grad)


def step_flops(tape):
    return sum(sum(gemm_flops(fn, inputs, outputs)) for fn, inputs, outputs in tape.entries)


def tinyalex_op_round(measure, fn, inputs, grads):
    """One forward + backward of a fresh copy of a recorded op; {phase: ms}."""
    def one_round():
        f = copy.copy(fn)
        forward_ms, _ = measure(lambda: f(*inputs))
        backward_ms, _ = measure(lambda: f.backward(*grads))
        return {"forward": forward_ms, "backward": backward_ms}
    return one_round


def torch_op_round(torch, measure, fn, inputs, grads):
    """The same op in PyTorch on copies of the same inputs; gradients only for inputs that need them."""
    twin = twin_of(torch, fn)
    xs = [to_torch(torch, t) for t in inputs]
    gys = [torch.from_dlpack(g).clone() for g in grads]
    wanted = [x for x in xs if x.requires_grad]

    def one_round():
        forward_ms, y = measure(lambda: twin(*xs))
        backward_ms, _ = measure(lambda: torch.autograd.grad(y, wanted, gys))
        return {"forward": forward_ms, "backward": backward_ms}
    return one_round


def bench_ops(tape, device, torch, warmup, repeat):
    """Two rows (forward, backward) per measured op of the tape."""
    rng = backend.default_generator.for_device("cpu")
    rows = []
    for name, fn, inputs, outputs in op_lines(tape):
        grads = [tensor(np.asarray(rng.standard_normal(y.shape), y.dtype), device=device).data
                 for y in outputs]
        rounds = {"tinyalex": tinyalex_op_round(clock(device), fn, inputs, grads)}
        if torch is not None:
            rounds["torch"] = torch_op_round(torch, clock(device, torch), fn, inputs, grads)
        medians = interleaved(rounds, warmup, repeat, pause=pause_for(device))
        flops = dict(zip(("forward", "backward"), gemm_flops(fn, inputs, outputs)))
        for phase, short in (("forward", "fwd"), ("backward", "bwd")):
            rows.append(row(f"{name} {short}", {k: v[phase] for k, v in medians.items()}, flops[phase],
                            shape=inputs[0].shape, kind=LINES[fn.label]))
    return rows


def breakdown(ops, step):
    """Where a step's time goes, per framework: ms per kind of op (forward + backward, timed alone)
    and "other", the rest of the step (ReLU, dropout, reshapes, the update, the graph walk)."""
    shares = {}
    for framework, total in step["ms"].items():
        kinds = collections.Counter()
        for r in ops:
            kinds[r["kind"]] += r["ms"][framework]
        shares[framework] = {**kinds, "other": total - sum(kinds.values())}
    return shares
