"""The paper's two columns as two processes (``model_parallel``, ``tinyalex train --model-parallel columns``)
against the one-process two-column net.

The two-process tests run a short script or the real command under the MPICH ``mpiexec`` of the 'mpi'
extra (one BLAS thread, niced, a few seconds each); they skip where mpi4py or mpiexec is absent.
"""
import os
import sys

import numpy as np
import pytest

from tinyalex import checkpoint, cli, model_parallel, models
from test_distributed import EXACT, MPIEXEC, TRAIN, _largest_relative_difference, _run, _train, needs_mpi

COLUMNS = ["--model-parallel", "columns"]

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



# ------------------------------------------------------------------ tinyalex train --model-parallel columns
@pytest.fixture(scope="module", params=["lrn", "batchnorm"])  # batchnorm: its running statistics are saved too
def runs(tmp_path_factory, request):
    """Two epochs of --quick without dropout or augmentation: one process, and one column per process."""
    out, options = tmp_path_factory.mktemp("runs"), EXACT + ["--norm", request.param]
    printed = []
    for name, command in (("one", TRAIN + options), ("two", [MPIEXEC, "-n", "2"] + TRAIN + options + COLUMNS)):
        done = _run(command + ["--out", str(out / name)])
        assert done.returncode == 0, done.stderr
        printed.append(done.stdout)
    return checkpoint.load(out / "one" / "last.npz"), checkpoint.load(out / "two" / "last.npz"), printed, out


@needs_mpi
def test_one_column_per_process_trains_the_parameters_of_the_one_process_two_column_net(runs):
    one, two, _, _ = runs
    assert list(two.model) == list(one.model)  # the whole network, in the one-process names and order
    # the same arithmetic in the same order: 0.0 measured in float32, both in parameters and velocities
    assert _largest_relative_difference(one, two) < 1e-6
    assert sorted(two.optim) == sorted(one.optim)
    for name in one.optim:
        np.testing.assert_allclose(two.optim[name], one.optim[name], rtol=1e-6, atol=1e-9, err_msg=name)
    # every process saw every image: the losses and error rates are those of one process, not doubled
    for a, b in zip(one.extra["history"], two.extra["history"], strict=True):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-6)
        assert (a["val_top1_error"], a["val_top5_error"]) == (b["val_top1_error"], b["val_top5_error"])


@needs_mpi
def test_rank_0_alone_prints_and_writes_and_the_test_error_is_that_of_one_process(runs):
    _, _, (one_process, two), out = runs
    assert two.count("Training alexnet-cifar") == 1 and "32 (all of it on both processes" in two
    assert sorted(os.listdir(out / "two")) == ["best.npz", "curves.png", "last.npz", "metrics.jsonl"]
    test_error = [line for line in two.splitlines() if line.startswith("Test error of best.npz")]
    assert len(test_error) == 1 and test_error[0] in one_process


@needs_mpi
def test_the_checkpoint_of_two_columns_on_two_processes_loads_in_one(runs, capsys):
    _, two, _, out = runs
    net = models.get(two.extra["model"], **two.extra["model_args"])
    two.restore(net)
    assert cli.main(["evaluate", "--checkpoint", str(out / "two" / "best.npz"), "--quiet", "--workers", "0"]) == 0
    assert "top-1 error" in capsys.readouterr().out


@needs_mpi
def test_a_resumed_run_of_one_column_per_process_is_the_uninterrupted_one(tmp_path):
    # dropout, augmentation, and batch norm's running statistics, which each column keeps
    noisy = ["--quick", "--dropout", "0.5", "--norm", "batchnorm", "--workers", "0", "--quiet"] + COLUMNS
    straight = _train(tmp_path / "straight", *noisy, "--epochs", "2", processes=2)
    _train(tmp_path / "resumed", *noisy, "--epochs", "1", processes=2)
    resumed = _train(tmp_path / "resumed", "--resume", str(tmp_path / "resumed" / "last.npz"), "--epochs", "2",
                     "--quiet", processes=2)
    for name in straight.model:
        np.testing.assert_array_equal(straight.model[name], resumed.model[name], err_msg=name)


@pytest.mark.parametrize("options, message", [
    ([], "--model-parallel columns needs 2 processes, one per column: mpiexec -n 2 tinyalex train ... "
         "(this run has 1)"),
    (["--columns", "cpu,cpu"], "--model-parallel columns puts one column on each process; --columns")])
def test_one_process_is_refused_one_column_per_process(tmp_path, capsys, options, message):
    out = tmp_path / "run"
    assert cli.main(["train", "--quick", "--quiet", "--workers", "0", "--out", str(out)] + COLUMNS + options) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tinyalex train: error: {message}") and err.count("\n") == 1, err
    assert not out.exists()


@needs_mpi
def test_a_network_of_one_column_is_refused_one_column_per_process(tmp_path):
    done = _run([MPIEXEC, "-n", "2"] + TRAIN + ["--quick", "--quiet", "--model", "vgg-cifar-a", "--out",
                                                 str(tmp_path / "run")] + COLUMNS)
    assert done.returncode == 2
    assert "error: --model-parallel columns needs a network of two columns (alexnet, alexnet-cifar); " \
           "vgg-cifar-a has one" in done.stderr
    assert not (tmp_path / "run").exists()
