"""Devices and array modules: the one place that names NumPy and CuPy.

A device is a string: ``"cpu"`` (NumPy) or ``"cuda"`` / ``"cuda:N"`` (CuPy on GPU N). Every other
module asks this one for the array module of an array (``xp = backend.xp(a)``), so a single code path
serves both. CuPy is imported lazily, the first time a CUDA device is asked for, so a CPU-only install
never touches it.
"""
import contextlib

import numpy as np

_INSTALL_HINT = (
    "install CuPy for your CUDA version: pip install cupy-cuda12x (CUDA 12.x) or cupy-cuda13x "
    "(CUDA 13.x); in a clone of tinyalex that is pip install -e '.[cuda12]' or -e '.[cuda13]'"
)
_cupy = None


def cupy():
    """Return the CuPy module, or raise a RuntimeError that says how to install it."""
    global _cupy
    if _cupy is None:
        try:
            import cupy as cp
        except ImportError as e:
            raise RuntimeError(f"device 'cuda' needs CuPy, which is not installed ({e}); {_INSTALL_HINT}") from None
        try:
            n = cp.cuda.runtime.getDeviceCount()
        except Exception as e:  # CuPy present but no driver/GPU
            raise RuntimeError(f"device 'cuda' asked for, but CuPy finds no usable GPU ({e})") from None
        if n == 0:
            raise RuntimeError("device 'cuda' asked for, but CuPy finds no GPU")
        _cupy = cp
    return _cupy


def gpu_available():
    """True when CuPy is installed and sees at least one GPU (never raises)."""
    try:
        cupy()
        return True
    except RuntimeError:
        return False


def parse_device(device):
    """Normalise a device string: ``"cpu"``, ``"cuda"`` -> ``"cuda:0"``, ``"cuda:N"``."""
    if device is None:
        return "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string like 'cpu' or 'cuda:0', got {type(device).__name__}")
    d = device.strip().lower()
    if d == "cpu":
        return "cpu"
    if d == "cuda":
        return "cuda:0"
    if d.startswith("cuda:") and d[5:].isdigit():
        return d
    raise ValueError(f"unknown device {device!r}: expected 'cpu', 'cuda' or 'cuda:N'")


def device_index(device):
    """GPU index of a normalised CUDA device string (``"cuda:1"`` -> 1)."""
    return int(device.split(":")[1])


def module_for(device):
    """Array module for a device string; checks that the GPU exists."""
    device = parse_device(device)
    if device == "cpu":
        return np
    cp = cupy()
    n = cp.cuda.runtime.getDeviceCount()
    if device_index(device) >= n:
        raise ValueError(f"device {device!r} asked for, but only {n} GPU(s) are visible")
    return cp


def is_gpu_array(a):
    """True for a CuPy array, also one made before tinyalex was first asked for a GPU."""
    if _cupy is None:
        if type(a).__module__.partition(".")[0] != "cupy":
            return False
        cupy()
    return isinstance(a, _cupy.ndarray)


def xp(a):
    """Array module (NumPy or CuPy) of an array."""
    return _cupy if is_gpu_array(a) else np


def device_of(a):
    """Device string of a raw array."""
    return f"cuda:{a.device.id}" if is_gpu_array(a) else "cpu"


def on_device(device):
    """Context in which CuPy creates new arrays on ``device`` (a no-op for the CPU).

    CuPy puts new arrays on the *current* device, not on the device of the inputs; code that makes
    arrays from scratch runs inside this context.
    """
    device = parse_device(device)
    if device == "cpu":
        return contextlib.nullcontext()
    return cupy().cuda.Device(device_index(device))


def synchronize(device):
    """Wait until ``device`` has finished the work queued on it (GPU kernels run asynchronously)."""
    device = parse_device(device)
    if device != "cpu":
        cupy().cuda.Device(device_index(device)).synchronize()


def to_device(a, device):
    """Copy a raw array to a device (returns ``a`` itself when it is already there)."""
    device = parse_device(device)
    if device_of(a) == device:
        return a
    if device == "cpu":
        return a.get()
    cp = module_for(device)
    with cp.cuda.Device(device_index(device)):
        return cp.asarray(a)


def to_numpy(a):
    """NumPy copy (or view) of any array."""
    return a.get() if is_gpu_array(a) else np.asarray(a)


def keep_freed_cpu_memory():
    """Ask the C allocator (glibc's malloc) to keep freed memory for reuse instead of returning it.

    By default glibc hands every array above 32 MB (and the free space at the top of its heap) back
    to the system when it is freed, and the next such array is page-faulted in afresh: a CPU training
    step of AlexNet-CIFAR at batch 128 allocates about 1.5 GB of activation-sized arrays this way.
    Kept, a step runs 6-20% faster; the price is that the process's resident memory stays at its
    peak until it exits. The ``tinyalex`` command and the lessons call this; a library user may.
    Returns True where it took effect (Linux with glibc), False elsewhere (nothing changes).
    """
    import ctypes
    import platform
    if platform.libc_ver()[0] != "glibc":
        return False
    libc = ctypes.CDLL(None)  # the running process's own symbols, glibc's malloc among them: no search
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h; values are C ints
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 1 << 30) and libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))


# ---------------------------------------------------------------- random numbers
class Generator:
    """The engine's random generator: one seed repeats a whole run.

    NumPy's PCG64 serves the CPU; on a GPU, random arrays are drawn from CuPy's generator seeded from
    the same stream, so a seed fixes GPU runs too (though not bit-equal to CPU draws).
    """

    def __init__(self, seed=0):
        self.seed(seed)

    def seed(self, seed):
        self.np = np.random.default_rng(seed)
        self._gpu = {}

    def for_device(self, device):
        """A generator living on ``device`` (NumPy's for "cpu", a CuPy one for "cuda:N")."""
        device = parse_device(device)
        if device == "cpu":
            return self.np
        if device not in self._gpu:
            cp = module_for(device)
            with cp.cuda.Device(device_index(device)):
                self._gpu[device] = cp.random.default_rng(int(self.np.integers(2**63)))
        return self._gpu[device]

    def state(self):
        """JSON-able state of the CPU stream (for checkpoints)."""
        return self.np.bit_generator.state

    def set_state(self, state):
        self.np.bit_generator.state = state
        self._gpu = {}


default_generator = Generator(0)


def manual_seed(seed):
    """Seed the engine's generator (dropout masks, initialisation, shuffling by default)."""
    default_generator.seed(seed)
