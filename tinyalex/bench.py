"""`tinyalex bench`: how fast is a training step, op by op, and how far is it from the machine's limit?

What is measured, for one model at one batch size on one device:

- **peak**: the float32 matrix multiply (sgemm, 2048^3) of the same array module, the practical
  limit of every convolution and fully connected layer (they are GEMMs after im2col);
- **ops**: every convolution, LRN, max-pooling, fully connected layer and the softmax cross-entropy of
  the model, each at the exact shapes it meets in the network, forward and backward timed apart;
- **step**: a whole training step as in the paper (forward, loss, backward, SGD with momentum and
  weight decay), in images/s;
- **memory**: how much a step adds to the process (CPU: peak RSS growth; GPU: memory-pool growth),
  each framework alone in a fresh process so that neither sees the other's allocations.

FLOPs are counted from shapes: a convolution or linear layer is a GEMM of ``y.size * w.size / O``
multiply-adds (each output element reads one filter); FLOPs = 2 x MACs forward, and backward does
one such product for each of x and w that needs a gradient. GFLOP/s is measured against the sgemm
peak above ("% peak").

``--against torch`` builds the same network in PyTorch. It does not re-describe the network: it
records the tape of tinyalex ops that one forward pass of the model calls (through the hooks of
``tensor.py``) and replays that tape with the matching ``torch.nn.functional`` calls on copies of
the same weights, so layers, shapes, groups, LRN constants and dropout rates cannot drift apart.
Both sides run in one process, float32, with the same thread count, in interleaved rounds
(tinyalex, torch, tinyalex, torch, ...) so that the noise of a shared machine falls on both alike;
warm-up rounds are dropped and medians reported. The speed ratio is torch time / tinyalex time:
above 1, tinyalex is faster.

On a GPU the times are taken with CUDA events after a synchronisation (CuPy's for tinyalex,
PyTorch's for torch), TF32 is switched off in PyTorch, as CuPy does by default. That code path is
written to be obviously right but has not been run yet.
"""
import argparse
import collections
import copy
import datetime
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import time
from functools import partial

import numpy as np

from . import backend, models, optim
from .checkpoint import atomic_write
from . import functional as F
from .tensor import _hooks, tensor

# model name -> (image shape (C, H, W), number of classes)
MODELS = {"alexnet-cifar": ((3, 32, 32), 10), "alexnet": ((3, 227, 227), 1000)}
SGEMM_SIZE = 2048
# the paper's update (section 5): momentum 0.9, weight decay 0.0005; the rate does not change the cost
SGD = dict(lr=0.01, momentum=0.9, weight_decay=5e-4)


# ---------------------------------------------------------------- clocks
def clock(device, torch=None):
    """A ``measure(fn) -> (milliseconds, fn())`` for tinyalex (``torch=None``) or PyTorch on ``device``.

    CPU: the wall clock (NumPy and PyTorch CPU calls return when the work is done). GPU: CUDA events
    recorded on the device's current stream around ``fn``, after a synchronisation so that earlier
    queued work is not counted, and read once the end event has completed.
    """
    device = backend.parse_device(device)
    if device == "cpu":
        def measure(fn):
            start = time.perf_counter()
            out = fn()
            return (time.perf_counter() - start) * 1e3, out
        return measure
    if torch is None:
        cp = backend.cupy()
        event, elapsed, on_device = cp.cuda.Event, cp.cuda.get_elapsed_time, partial(backend.on_device, device)
        synchronize = partial(backend.synchronize, device)
    else:
        event, on_device = partial(torch.cuda.Event, enable_timing=True), partial(torch.cuda.device, device)
        synchronize, elapsed = partial(torch.cuda.synchronize, device), lambda start, end: start.elapsed_time(end)

    def measure(fn):
        with on_device():
            synchronize()
            start, end = event(), event()
            start.record()
            out = fn()
            end.record()
            end.synchronize()
        return elapsed(start, end), out
    return measure


# Seconds to wait before each framework's round on a CPU. After a call, NumPy's OpenBLAS threads and
# PyTorch's OpenMP threads spin for up to ~0.1 s waiting for more work, and take the cores from the
# other framework's next call: without the wait PyTorch's 2048^3 sgemm measured 143 ms instead of 94.
# After the wait one untimed round wakes this framework's own threads, as they are in a training step.
CPU_PAUSE_S = 0.2


def interleaved(rounds, warmup, repeat, summary=statistics.median, pause=0.0):
    """Run ``rounds`` = {framework: one_round} in turn, ``warmup + repeat`` times; a summary per phase.

    ``one_round()`` returns {phase: milliseconds}. The first ``warmup`` rounds (caches, allocator
    pools, lazy initialisation) are dropped. Returns {framework: {phase: summary of the ms}}, the
    median unless ``summary`` says otherwise. ``pause``: seconds slept before each round when more
    than one framework takes turns (``CPU_PAUSE_S`` on a CPU), then one untimed round.
    """
    times = {name: {} for name in rounds}
    for r in range(warmup + repeat):
        for name, one_round in rounds.items():
            if len(rounds) > 1 and pause:
                time.sleep(pause)
                one_round()
            for phase, ms in one_round().items():
                if r >= warmup:
                    times[name].setdefault(phase, []).append(ms)
    return {name: {phase: summary(v) for phase, v in phases.items()} for name, phases in times.items()}


def pause_for(device):
    """The pause between two frameworks' rounds: CPU_PAUSE_S on a CPU; none on a GPU (its clock is
    the device's events, after a synchronisation)."""
    return CPU_PAUSE_S if backend.parse_device(device) == "cpu" else 0.0


# ---------------------------------------------------------------- the tape of one forward pass
class Tape:
    """Observer (see ``tensor._hooks``) that records each op a forward pass calls, in call order.

    ``entries`` holds (function, input tensors, output tensors); keeping the tensors themselves
    keeps their ``id`` unique, which is how an output is matched with the later op that reads it.
    """

    def __init__(self):
        self.entries = []

    def on_forward(self, fn, inputs, outputs, seconds):
        self.entries.append((fn, list(inputs), list(outputs)))

    def on_backward(self, fn, grad_outputs, grad_inputs, seconds):
        pass

    def leaves(self):
        """Tensors read by some op but made by none: weights, the images, labels and constants."""
        made = {id(t) for _, _, outputs in self.entries for t in outputs}
        found = {}
        for _, inputs, _ in self.entries:
            found.update((id(t), t) for t in inputs if id(t) not in made)
        return list(found.values())


def record(fn):
    """The tape of the ops that ``fn()`` calls (whatever ``fn`` returns is let go)."""
    tape = Tape()
    _hooks.append(tape)
    try:
        fn()
    finally:
        _hooks.remove(tape)
    return tape


# ---------------------------------------------------------------- the model and its training step
def default_batch(model, device):
    """The paper's batch of 128, but 16 for the full AlexNet on a CPU (a step takes seconds there)."""
    return 16 if model == "alexnet" and backend.parse_device(device) == "cpu" else 128


def build(model, batch, device):
    """(network, SGD optimiser, images, labels) on ``device``: random images and labels.

    The network is built in its one-column form (groups=2 in the column-bound layers): the same
    function as the paper's two columns, and the form to run on a single device.
    """
    (image, classes), rng = MODELS[model], backend.default_generator.for_device("cpu")
    net = models.get(model, num_classes=classes, columns=1)
    net.to(device)
    net.train()
    images = tensor(rng.standard_normal((batch, *image), dtype=np.float32), device=device)
    labels = tensor(rng.integers(0, classes, batch), device=device)
    return net, optim.SGD(net.parameters(), **SGD), images, labels


def loss_of(net, images, labels):
    """The loss the paper minimises (section 3.5): softmax cross-entropy of the net's outputs."""
    return F.softmax_cross_entropy(net(images), labels)


def train_step(net, opt, images, labels):
    """One step of the paper's training (section 5): forward, loss, backward, update."""
    opt.zero_grad()
    loss = loss_of(net, images, labels)
    loss.backward()
    opt.step()
    return loss


# ---------------------------------------------------------------- the PyTorch twin
def torch_ops(torch):
    """tinyalex op label -> ``make(function)``, which returns the same computation as a PyTorch callable.

    The callables read the op's settings now and keep no reference to the tinyalex function (which
    holds the arrays it saved for backward). LRN: PyTorch divides alpha by the window size n (as
    Caffe does) and the paper does not, so the paper's alpha is passed as alpha * n; PyTorch's LRN
    has no groups, so a grouped LRN (one per column) runs on each group of channels and joins them.
    """
    T = torch.nn.functional
    return {
        "Conv2d": lambda fn: partial(T.conv2d, stride=fn.stride, padding=fn.padding, groups=fn.groups),
        "ReLU": lambda fn: T.relu,
        "LRN": lambda fn: grouped(torch, fn.groups, partial(T.local_response_norm, size=fn.n, alpha=fn.alpha * fn.n,
                                                             beta=fn.beta, k=fn.k)),
        "MaxPool2d": lambda fn: partial(T.max_pool2d, kernel_size=fn.kernel_size, stride=fn.stride,
                                        padding=fn.padding),
        "Linear": lambda fn: T.linear,
        "Dropout": lambda fn: partial(T.dropout, p=dropout_p(fn), training=True),
        "Reshape": lambda fn: partial(torch.reshape, shape=fn.shape),
        "Split": lambda fn: lambda x, at=fn.sections, axis=fn.axis: torch.tensor_split(x, at, axis),  # as NumPy
        "Concat": lambda fn: lambda *xs, axis=fn.axis: torch.cat(xs, axis),
        "SoftmaxCrossEntropy": lambda fn: lambda z, t: T.cross_entropy(z, t.long()),
    }


def grouped(torch, groups, f):
    """``f`` applied to each of ``groups`` equal parts of the channels, the results joined again."""
    return f if groups == 1 else lambda x: torch.cat([f(part) for part in torch.chunk(x, groups, 1)], 1)


def dropout_p(fn):
    """The drop probability p of a recorded training-time dropout, whose fixed array w is the mask
    scaled by 1 / (1 - p) (inverted dropout, the default): p = 1 - 1 / max(w)."""
    return 1 - 1 / float(fn.w.max())


def twin_of(torch, fn):
    make = torch_ops(torch).get(fn.label)
    if make is None:
        raise ValueError(f"bench: no PyTorch twin for the tinyalex op {fn.label}; add one to torch_ops")
    return make(fn)


def to_torch(torch, t):
    """A PyTorch copy of a tinyalex tensor (its own memory: PyTorch's updates must not touch ours)."""
    out = torch.from_dlpack(t.data).clone()
    return out.requires_grad_(t.requires_grad) if out.is_floating_point() else out


class TorchTwin:
    """The recorded network replayed in PyTorch, with its own copies of the weights and the batch.

    Tensors are known by the ``id`` they had in the recording; the twin keeps no tinyalex array.
    """

    def __init__(self, torch, tape):
        self.leaves = {id(t): to_torch(torch, t) for t in tape.leaves()}
        self.ops = [(twin_of(torch, fn), [id(t) for t in inputs], [id(t) for t in outputs])
                    for fn, inputs, outputs in tape.entries]
        self.opt = torch.optim.SGD([v for v in self.leaves.values() if v.requires_grad], **SGD)

    def forward(self):
        """The replayed forward pass; returns the loss (the output of the last op)."""
        values = dict(self.leaves)
        for twin, inputs, outputs in self.ops:
            ys = twin(*(values[i] for i in inputs))
            values.update(zip(outputs, ys if isinstance(ys, (tuple, list)) else (ys,)))
        return ys

    def step(self):
        self.opt.zero_grad(set_to_none=True)
        loss = self.forward()
        loss.backward()
        self.opt.step()
        return loss


# ---------------------------------------------------------------- per-op lines
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


def bench_step(net, opt, images, labels, flops, twin, device, torch, warmup, repeat):
    """The training-step row: median ms, images/s and GFLOP/s (``flops``: those of a step's GEMMs)."""
    rounds = {"tinyalex": lambda: {"step": clock(device)(lambda: train_step(net, opt, images, labels))[0]}}
    if twin is not None:
        rounds["torch"] = lambda: {"step": clock(device, torch)(twin.step)[0]}
    medians = {k: v["step"] for k, v in interleaved(rounds, warmup, repeat, pause=pause_for(device)).items()}
    step = row("train step", medians, flops, shape=images.shape)
    step["images_per_s"] = {k: 1e3 * len(images) / ms for k, ms in medians.items()}
    return step


def step_flops(tape):
    return sum(sum(gemm_flops(fn, inputs, outputs)) for fn, inputs, outputs in tape.entries)


def row(name, ms, flops, shape=(), kind=None):
    """One line of the report: median ms per framework, FLOPs, GFLOP/s and the speed ratio."""
    r = {"name": name, "kind": kind, "shape": "x".join(map(str, shape)), "flops": flops, "ms": ms,
         "gflops": {k: flops / v / 1e6 for k, v in ms.items()}}
    if "torch" in ms:
        r["speed_ratio"] = ms["torch"] / ms["tinyalex"]
    return r


# ---------------------------------------------------------------- the matrix-multiply peak
def bench_sgemm(device, torch, warmup, repeat):
    """float32 (2048 x 2048) @ (2048 x 2048) with each framework's own matmul: the practical peak.

    The fastest round is taken, not the median: a limit, which other programs on a shared machine
    can only lower.
    """
    rng = backend.default_generator.for_device("cpu")
    a = tensor(rng.standard_normal((SGEMM_SIZE, SGEMM_SIZE), dtype=np.float32), device=device).data
    xp = backend.xp(a)
    rounds = {"tinyalex": lambda: {"sgemm": clock(device)(lambda: xp.matmul(a, a))[0]}}
    if torch is not None:
        ta = torch.from_dlpack(a).clone()
        rounds["torch"] = lambda: {"sgemm": clock(device, torch)(lambda: ta @ ta)[0]}
    fastest = interleaved(rounds, warmup, repeat, summary=min, pause=pause_for(device))
    return row(f"sgemm {SGEMM_SIZE}^3", {k: v["sgemm"] for k, v in fastest.items()}, 2 * SGEMM_SIZE ** 3)


# ---------------------------------------------------------------- memory of a step, in a fresh process
def _proc_status(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _reset_peak_rss():
    """Reset this process's peak resident size (VmHWM) to its current size; OSError where Linux does
    not allow it: no /proc, or a /proc/self/clear_refs that a container mounts read-only."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def step_memory(framework, model, batch, device, threads):
    """Bytes that two training steps add to a process holding the model, the batch and the optimiser.

    CPU: the peak resident memory during the steps (the high-water mark, reset just before them)
    minus the resident memory before them; it counts activations, saved buffers, gradients and
    momentum. The process runs with glibc's mmap threshold fixed low, so that every large array is
    its own mapping, handed back to the system when freed: resident memory then follows live arrays
    rather than the allocator's caches. GPU: growth of the memory pool (CuPy's pool size, PyTorch's
    peak reserved memory), both of which keep freed blocks.
    """
    torch = import_torch(threads) if framework == "torch" else None
    backend.manual_seed(0)
    net, opt, images, labels = build(model, batch, device)
    step = lambda: train_step(net, opt, images, labels)  # noqa: E731
    if torch is not None:
        step = TorchTwin(torch, record(partial(loss_of, net, images, labels))).step
        del net, opt, images, labels
    if backend.parse_device(device) == "cpu":
        _reset_peak_rss()
        before = _proc_status("VmRSS")
        step(), step()
        return _proc_status("VmHWM") - before
    with backend.on_device(device):
        pool = backend.cupy().get_default_memory_pool().total_bytes if torch is None else \
            partial(torch.cuda.max_memory_reserved, device)
        before = pool()
        step(), step()
        return pool() - before


def bench_memory(model, batch, device, frameworks, threads):
    """Run ``step_memory`` for each framework in a fresh spawned process; None where the peak resident
    size cannot be reset (no /proc, or a read-only one), which the CPU measure needs."""
    try:
        if device == "cpu":  # a GPU's figure is read from CuPy's memory pool, not from /proc
            _reset_peak_rss()  # here first, as a probe: the children have the same /proc
    except OSError:
        return None
    saved = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"  # read by glibc at the start of each child
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(1, maxtasksperchild=1) as pool:
            return {fw: pool.apply(step_memory, (fw, model, batch, device, threads)) for fw in frameworks}
    finally:
        if saved is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = saved


# ---------------------------------------------------------------- threads, versions, machine
def blas_threads():
    """Threads of NumPy's BLAS, read with threadpoolctl when it is installed (``.[bench]``); else the
    count set in the environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS), or None."""
    try:
        import threadpoolctl
    except ImportError:
        counts = [os.environ.get(k, "") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")]
        return next((int(c) for c in counts if c.isdigit()), None)
    counts = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else None


def import_torch(threads):
    """PyTorch set up like tinyalex: ``threads`` intra-op threads (if known), no TF32."""
    try:
        import torch
    except ImportError:
        raise RuntimeError("--against torch needs PyTorch, which is not installed (pip install torch; "
                           "tinyalex itself never needs it)") from None
    if threads:
        torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    return torch


def machine(device, torch, threads):
    info = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cpu": _cpu_name(), "cores": os.cpu_count(), "numpy_blas_threads": threads,
            "env": {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS", "OMP", "MKL"))}}
    if backend.parse_device(device) != "cpu":
        cp = backend.cupy()
        info["gpu"] = cp.cuda.runtime.getDeviceProperties(backend.device_index(backend.parse_device(device)))["name"].decode()
        info["cupy"] = cp.__version__
    if torch is not None:
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info


def _cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


# ---------------------------------------------------------------- report
def print_report(result, out=sys.stdout):
    """The results as a table: one line per op and phase, then the step and its memory."""
    m, peak = result["machine"], result["peak"]
    against = "torch" in peak["ms"]
    print(f"tinyalex bench: {result['model']}, batch {result['batch']}, {result['device']} "
          f"({m['cpu']}, {m['cores']} cores), {m['date']}", file=out)
    threads = m["numpy_blas_threads"] or "unknown; pip install threadpoolctl to read them"
    print(f"numpy {m['numpy']} (BLAS threads: {threads})"
          + (f", torch {m['torch']} ({m['torch_threads']} threads)" if against else ""), file=out)
    header = f"{'line':<16}{'input shape':>16}{'tinyalex ms':>12}{'GFLOP/s':>9}{'% peak':>8}"
    print(header + (f"{'torch ms':>10}{'GFLOP/s':>9}{'speed':>8}" if against else ""), file=out)
    for r in [peak, *result.get("ops", []), *([result["step"]] if "step" in result else [])]:
        cells = f"{r['name']:<16}{r['shape']:>16}{r['ms']['tinyalex']:>12.2f}" + _gflops(r, "tinyalex")
        cells += f"{100 * r['gflops']['tinyalex'] / peak['gflops']['tinyalex']:>7.0f}%" if r["flops"] else f"{'':>8}"
        if against:
            cells += f"{r['ms']['torch']:>10.2f}" + _gflops(r, "torch") + f"{r['speed_ratio']:>8.2f}"
        print(cells, file=out)
    if "step" in result:
        print("images/s: " + ", ".join(f"{k} {v:.1f}" for k, v in result["step"]["images_per_s"].items()), file=out)
    for framework, kinds in result.get("breakdown", {}).items():
        total = result["step"]["ms"][framework]
        print(f"{framework} step by kind: " + ", ".join(f"{k} {100 * ms / total:.0f}%" for k, ms in kinds.items()),
              file=out)
    if result.get("memory"):
        print("memory a step adds (MiB): " + ", ".join(f"{k} {v / 2**20:.0f}" for k, v in result["memory"].items()),
              file=out)
    print("% peak: GFLOP/s over tinyalex's sgemm line"
          + ("; speed = torch ms / tinyalex ms (above 1: tinyalex is faster)" if against else ""), file=out)


def _gflops(r, framework):
    return f"{r['gflops'][framework]:>9.1f}" if r["flops"] else f"{'':>9}"


def write_json(result, path):
    """Write ``result`` to ``path`` atomically (a temporary file in the same folder, then a rename)."""
    with atomic_write(path, "w") as f:
        json.dump(result, f, indent=1)


# ---------------------------------------------------------------- command line
def parse_args(argv):
    p = argparse.ArgumentParser(prog="tinyalex bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--model", default="alexnet-cifar", choices=sorted(MODELS),
                   help="network to time: alexnet-cifar (3x32x32 images, 10 classes) or the paper's alexnet "
                   "(3x227x227, 1000 classes) (default alexnet-cifar)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per step (default 128; 16 for alexnet on the CPU)")
    p.add_argument("--against", choices=["torch"], default=None, help="time the same network in PyTorch too")
    p.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    p.add_argument("--repeat", type=int, default=10, help="timed rounds per line (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--ops-only", action="store_true", help="the per-op lines only (no step, no memory)")
    only.add_argument("--step-only", action="store_true", help="the training step and its memory only")
    args = p.parse_args(argv)
    try:
        args.device = backend.parse_device(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.batch_size is not None and args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.repeat < 1 or args.warmup < 0:
        p.error(f"--repeat must be at least 1 and --warmup at least 0, got {args.repeat} and {args.warmup}")
    return args


def run(args):
    """Measure what ``args`` ask for; returns the results as a JSON-able dictionary."""
    device = backend.parse_device(args.device)
    batch = args.batch_size or default_batch(args.model, device)
    threads = blas_threads()
    torch = import_torch(threads) if args.against else None
    backend.manual_seed(0)
    result = {"model": args.model, "batch": batch, "device": device, "warmup": args.warmup, "repeat": args.repeat,
              "machine": machine(device, torch, threads), "peak": bench_sgemm(device, torch, args.warmup, args.repeat)}
    net, opt, images, labels = build(args.model, batch, device)
    tape = record(partial(loss_of, net, images, labels))
    flops = step_flops(tape)
    if not args.step_only:
        result["ops"] = bench_ops(tape, device, torch, args.warmup, args.repeat)
    twin = TorchTwin(torch, tape) if torch is not None and not args.ops_only else None
    del tape  # lets the recorded activations go before the step is timed
    if not args.ops_only:
        result["step"] = bench_step(net, opt, images, labels, flops, twin, device, torch, args.warmup, args.repeat)
        result["memory"] = bench_memory(args.model, batch, device, list(result["step"]["ms"]), threads)
    if "ops" in result and "step" in result:
        result["breakdown"] = breakdown(result["ops"], result["step"])
    return result


def main(argv=None):
    """Entry point of ``tinyalex bench``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        result = {"command": " ".join(["tinyalex bench", *argv]), **run(args)}
    except RuntimeError as e:  # no PyTorch for --against, no CuPy or GPU for --device cuda
        print(f"tinyalex bench: error: {e}", file=sys.stderr)
        return 2
    print_report(result)
    if args.json:
        write_json(result, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
