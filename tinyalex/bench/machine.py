"""What the figures were measured on: date, versions, CPU, cores, BLAS threads, GPU."""
import datetime
import os
import platform

import numpy as np

from .. import backend, threads


def blas_threads():
    """Threads of NumPy's BLAS, read with threadpoolctl (a dependency of tinyalex); where it is missing, the
    count set in the environment (OPENBLAS_NUM_THREADS, OMP_NUM_THREADS, MKL_NUM_THREADS), or None."""
    try:
        import threadpoolctl
    except ImportError:
        counts = [os.environ.get(k, "") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")]
        return next((int(c) for c in counts if c.isdigit()), None)
    counts = [p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]
    return max(counts) if counts else None


def blas_kernels():
    """NumPy's BLAS libraries as threadpoolctl sees them: "openblas 0.3.31 SkylakeX" (the kernel
    OpenBLAS chose for this CPU, which OPENBLAS_CORETYPE can override); [] without threadpoolctl."""
    try:
        import threadpoolctl
    except ImportError:
        return []
    return [" ".join(str(p[k]) for k in ("internal_api", "version", "architecture") if p.get(k))
            for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas"]


def machine(device, torch, blas):
    info = {"blas": blas_kernels(), "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "numpy": np.__version__, "platform": platform.platform(),
            "cpu": _cpu_name(), "cores": os.cpu_count(), "numpy_blas_threads": blas,
            "tinyalex_threads": threads.count(),
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
