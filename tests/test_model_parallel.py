"""The paper's two columns as two processes (``model_parallel``) against the one-process two-column net.

The two-process test runs a short script under the MPICH ``mpiexec`` of the 'mpi' extra (one BLAS thread,
niced, a few seconds); it skips where mpi4py or mpiexec is absent.
"""
import sys

import pytest

from tinyalex import model_parallel, models
from test_distributed import MPIEXEC, _run, needs_mpi

# every rank: the one-process net's loss and gradients, then its own column's on its own process
COLUMNS_ON_TWO_PROCESSES = """
import os
import sys
import numpy as np
import tinyalex as ta
from tinyalex import backend, distributed, model_parallel, models
from tinyalex import functional as F

norm, classes = sys.argv[1], int(sys.argv[2])
distributed.init()
backend.manual_seed(0)
net = models.alexnet_cifar(num_classes=classes, width=1 / 16, norm=norm, dropout=0)
net.to(dtype="float64")
rng = np.random.default_rng(1)
images, labels = ta.tensor(rng.standard_normal((4, 3, 32, 32))), rng.integers(0, classes, 4)
whole = F.softmax_cross_entropy(net(images), labels)
whole.backward()
mine = f"columns.{distributed.rank()}."
expected = {n[len(mine):]: p.grad.copy() for n, p in net.named_parameters() if n.startswith(mine)}
net.zero_grad()
loss = F.softmax_cross_entropy(model_parallel.own_column(net)(images), labels)
loss.backward()
assert float(loss.data) == float(whole.data), (float(loss.data), float(whole.data))
got = {n[len("column."):]: p.grad for n, p in model_parallel.own_column(net).named_parameters()}
assert sorted(got) == sorted(expected), (sorted(got), sorted(expected))
for name in got:
    np.testing.assert_allclose(got[name], expected[name], rtol=1e-12, atol=1e-15, err_msg=mine + name)
os.write(1, f"rank {distributed.rank()} checked {len(got)} gradients\\n".encode())  # one write: lines of two ranks do not interleave
"""


@needs_mpi
@pytest.mark.parametrize("norm, classes", [("lrn", 10), ("batchnorm", 7)])  # 7: fc8 split 4 / 3
def test_two_processes_of_one_column_each_compute_the_loss_and_gradients_of_the_two_column_net(norm, classes):
    done = _run([MPIEXEC, "-n", "2", sys.executable, "-c", COLUMNS_ON_TWO_PROCESSES, norm, str(classes)], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "rank 0 checked" in done.stdout and "rank 1 checked" in done.stdout


def test_one_process_cannot_hold_one_column():
    with pytest.raises(ValueError, match="needs 2 processes \\(mpiexec -n 2\\), got 1"):
        model_parallel.own_column(models.alexnet_cifar(width=1 / 16))


def test_only_a_two_column_net_splits_into_processes():
    with pytest.raises(ValueError, match="expected a TwoColumnNet of 2 columns .*got Sequential"):
        model_parallel.own_column(models.alexnet_cifar(columns=1, width=1 / 16))

