"""Memory of a training step, each framework alone in a fresh process."""
import multiprocessing
import os
from functools import partial

from .. import backend
from .step import build, loss_of, train_step
from .tape import record
from .twin import TorchTwin, import_torch


def _proc_status(field):
    """A memory field of /proc/self/status (VmRSS, VmHWM) in bytes."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(field + ":"))


def _reset_peak_rss():
    """Reset this process's peak resident size (VmHWM) to its current size; OSError where Linux does
    not allow it: no /proc, or a /proc/self/clear_refs that a container mounts read-only."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def step_memory(framework, model, batch, device, threads, algorithm="auto", torch_sgd="default"):
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
    net, opt, images, labels = build(model, batch, device, algorithm)
    step = lambda: train_step(net, opt, images, labels)  # noqa: E731
    if torch is not None:
        step = TorchTwin(torch, record(partial(loss_of, net, images, labels)), torch_sgd).step
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


def bench_memory(model, batch, device, frameworks, threads, algorithm="auto", torch_sgd="default"):
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
            return {fw: pool.apply(step_memory, (fw, model, batch, device, threads, algorithm, torch_sgd)) for fw in frameworks}
    finally:
        if saved is None:
            del os.environ["MALLOC_MMAP_THRESHOLD_"]
        else:
            os.environ["MALLOC_MMAP_THRESHOLD_"] = saved
