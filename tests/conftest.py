"""Shared fixtures: one ``device`` fixture runs a test on the CPU and, where CuPy sees a GPU, on it."""
import numpy as np
import pytest

from tinyalex import backend

GPU = backend.gpu_available()
needs_gpu = pytest.mark.skipif(not GPU, reason="needs CuPy and a CUDA GPU (pip install 'tinyalex[cuda12]')")


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
