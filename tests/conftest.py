"""Shared fixtures: one ``device`` fixture runs a test on the CPU and, where CuPy sees a GPU, on it."""
import os

# One BLAS thread: test arrays are small, and on a busy or small machine OpenBLAS threads that spin
# waiting for each other make a 1 ms product take a second. Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from tinyalex import backend

GPU = backend.gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs CuPy and a CUDA GPU (pip install -e '.[cuda12]')")


def pytest_configure(config):
    if GPU:  # CuPy's PerformanceWarning (peer access, a pageable copy) is a RuntimeWarning: not an error here
        config.addinivalue_line("filterwarnings", "default::cupy._util.PerformanceWarning")


def pytest_collection_modifyitems(items):
    for item in items:
        if "gpu" in item.keywords and not GPU:
            item.add_marker(needs_gpu)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def device(request):
    """Each test taking ``device`` runs on "cpu" and on "cuda" (skipped without a GPU)."""
    return request.param


@pytest.fixture
def rng():
    return np.random.default_rng(0)
