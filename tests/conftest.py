"""Shared fixtures: one ``device`` fixture runs a test on the CPU and, where CuPy sees a GPU, on it; and
``op_tests``, the one declarative test of an op over dtypes x devices x reference x gradcheck."""
import os
from dataclasses import dataclass
from typing import Callable

# One BLAS thread: test arrays are small, and on a busy or small machine OpenBLAS threads that spin
# waiting for each other make a 1 ms product take a second. Set before NumPy loads OpenBLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import tinyalex as ta  # noqa: E402
from tinyalex import backend  # noqa: E402

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


# ------------------------------------------------------------------ declared op tests
@dataclass
class OpCase:
    """One op call, declared once (as Chainer's FunctionTestCase); ``op_tests`` runs the checks on it.

    op: called as ``op(*tensors)``, returns one Tensor (constants such as a dropout mask live in it).
    inputs: ``rng -> list of float arrays``, cast to the dtype under test.
    reference: the expected forward from the float64 NumPy inputs (a loop reference or the formula);
        None where the op's own tests compare it.
    grads: indices of the inputs that require a gradient (default: all); the others
        (running statistics) are still compared after the call, which catches in-place updates.
    gradcheck: whether to gradient-check the op in float64 (its inputs must keep away from kinks).
    """
    name: str
    op: Callable
    inputs: Callable
    reference: Callable = None
    grads: tuple = None
    gradcheck: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6

    def tensors(self, dtype, device):
        arrays = self.inputs(np.random.default_rng(0))  # the same values on every device and dtype
        grads = range(len(arrays)) if self.grads is None else self.grads
        return [ta.tensor(a, dtype=dtype, device=device, requires_grad=i in grads) for i, a in enumerate(arrays)]

    def run(self, dtype, device):
        """Forward, backward with a fixed random gy; the output, each gradient and each input's data."""
        xs = self.tensors(dtype, device)
        y = self.op(*xs)
        gy = np.random.default_rng(1).standard_normal(y.shape).astype(dtype)
        y.backward(ta.tensor(gy, device=device))
        return [y.numpy()] + [backend.to_numpy(x.grad) for x in xs if x.requires_grad] + [x.numpy() for x in xs]

    def check(self, kind, dtype, device):
        if kind == "parity":
            for got, want in zip(self.run(dtype, device), self.run(dtype, "cpu")):
                np.testing.assert_allclose(got, want, rtol=self.rtol, atol=self.atol)
        elif kind == "reference":
            want = self.reference(*self.inputs(np.random.default_rng(0)))
            np.testing.assert_allclose(self.op(*self.tensors(dtype, device)).numpy(), want,
                                       rtol=self.rtol, atol=self.atol)
        else:
            assert ta.gradcheck(self.op, *self.tensors("float64", device))


def op_tests(*cases, dtypes=("float32", "float64")):
    """A test running each case over dtypes x devices x {device parity, reference, gradcheck}.

    Parity (the device's forward and gradients equal the CPU's) runs on "cuda" alone and skips with a
    reason without a GPU; the reference and gradcheck run on both devices, gradcheck in float64 only.
    Use as ``test_<op> = op_tests(OpCase(...), ...)`` in the op's test file.
    """
    gpu = pytest.mark.gpu
    params = []
    for case in cases:
        runs = [("parity", dtype, "cuda") for dtype in dtypes]
        runs += [("reference", dtype, d) for dtype in dtypes for d in ("cpu", "cuda") if case.reference]
        runs += [("gradcheck", "float64", d) for d in ("cpu", "cuda") if case.gradcheck]
        params += [pytest.param(case, kind, dtype, d, id=f"{case.name}-{kind}-{dtype}-{d}",
                                marks=[gpu] if d == "cuda" else []) for kind, dtype, d in runs]

    @pytest.mark.parametrize("case, kind, dtype, device", params)
    def test(case, kind, dtype, device):
        case.check(kind, dtype, device)
    return test
