"""Data-parallel training over MPI: ``mpiexec -n 2 tinyalex train`` against one process, faults, resume.

The multi-process tests run the real command under the MPICH ``mpiexec`` of the 'mpi' extra (one BLAS
thread, niced); each takes a few seconds. They skip where mpi4py or mpiexec is absent.
"""
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import backend, checkpoint, data, distributed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MPIEXEC = shutil.which("mpiexec", path=os.path.dirname(sys.executable)) or shutil.which("mpiexec")
try:
    import mpi4py  # noqa: F401
    MPI = MPIEXEC is not None
except ImportError:
    MPI = False
needs_mpi = pytest.mark.skipif(not MPI, reason="needs mpi4py and mpiexec (pip install -e '.[mpi]')")
# a run with nothing random but the data order: dropout and augmentation off
EXACT = ["--quick", "--epochs", "2", "--dropout", "0", "--augment", "none", "--workers", "0", "--quiet"]
TRAIN = [sys.executable, "-m", "tinyalex", "train"]


def _env():
    env = {k: v for k, v in os.environ.items() if k not in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK")}
    return {**env, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}


def _run(command, timeout=120):
    """``command`` niced, with one BLAS thread; its CompletedProcess (a failure is the caller's to check)."""
    return subprocess.run(["nice", "-n", "19"] + command, env=_env(), capture_output=True, text=True,
                          timeout=timeout)


def _train(out, *options, processes=1):
    launcher = [MPIEXEC, "-n", str(processes)] if processes > 1 else []
    done = _run(launcher + TRAIN + ["--out", str(out)] + list(options))
    assert done.returncode == 0, done.stderr
    return checkpoint.load(os.path.join(out, "last.npz"))


def _largest_relative_difference(a, b):
    return max(np.abs(a.model[k] - b.model[k]).max() / np.abs(a.model[k]).max() for k in a.model)


# ------------------------------------------------------------------ two processes = one with the doubled batch
@needs_mpi
@pytest.mark.parametrize("dtype, tolerance", [("float64", 1e-10), ("float32", 1e-5)])  # float32: 5.8e-7 measured
def test_two_processes_of_batch_b_train_the_parameters_of_one_process_of_batch_2b(tmp_path, dtype, tolerance):
    one = _train(tmp_path / "one", *EXACT, "--batch-size", "16", "--dtype", dtype)
    two = _train(tmp_path / "two", *EXACT, "--batch-size", "8", "--dtype", dtype, processes=2)
    assert two.model["columns.0.conv1.weight"].dtype == np.dtype(dtype)
    assert _largest_relative_difference(one, two) < tolerance
    # the reported losses and error rates are those of all the images, not of rank 0's half
    for a, b in zip(one.extra["history"], two.extra["history"]):
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=tolerance)
        assert a["val_top1_error"] == b["val_top1_error"]


@needs_mpi
def test_rank_0_alone_writes_and_prints(tmp_path):
    done = _run([MPIEXEC, "-n", "2"] + TRAIN + EXACT + ["--epochs", "1", "--out", str(tmp_path / "run")])
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("Training alexnet-cifar") == 1 and "2 x 32 (2 processes)" in done.stdout
    assert sorted(os.listdir(tmp_path / "run")) == ["best.npz", "curves.png", "last.npz", "metrics.jsonl"]


@needs_mpi
def test_a_resumed_two_process_run_with_dropout_and_augmentation_is_the_uninterrupted_one(tmp_path):
    noisy = ["--quick", "--dropout", "0.5", "--workers", "0", "--quiet", "--dtype", "float64"]
    straight = _train(tmp_path / "straight", *noisy, "--epochs", "2", processes=2)
    _train(tmp_path / "resumed", *noisy, "--epochs", "1", processes=2)
    resumed = _train(tmp_path / "resumed", "--resume", str(tmp_path / "resumed" / "last.npz"), "--epochs", "2",
                     "--quiet", processes=2)
    assert len(resumed.extra["rank_rng"]) == 2 and resumed.extra["rank_rng"][0] != resumed.extra["rank_rng"][1]
    for name in straight.model:
        np.testing.assert_array_equal(straight.model[name], resumed.model[name], err_msg=name)


@needs_mpi
def test_two_processes_evaluate_a_checkpoint_as_one_each_taking_half_of_every_batch(tmp_path):
    _train(tmp_path / "run", *EXACT, "--epochs", "1")
    evaluate = [sys.executable, "-m", "tinyalex", "evaluate", "--checkpoint", str(tmp_path / "run" / "last.npz"),
                "--batch-size", "7", "--workers", "0", "--quiet"]  # 7: a slice of 4 and one of 3, a last short batch
    one, two = _run(evaluate), _run([MPIEXEC, "-n", "2"] + evaluate)
    assert one.returncode == two.returncode == 0, one.stderr + two.stderr
    figures = [line for line in one.stdout.splitlines() if line.startswith("top-1 error")]
    assert len(figures) == 1 and [line for line in two.stdout.splitlines() if line.startswith("top-1")] == figures
    assert "split over 2 processes" in two.stdout and two.stdout.count("test images") == 1


# ------------------------------------------------------------------ faults
@needs_mpi
def test_processes_started_with_different_models_fail_at_start_naming_what_differs(tmp_path):
    out = ["--out", str(tmp_path / "run")]
    done = _run([MPIEXEC, "-n", "1"] + TRAIN + EXACT + out + [":", "-n", "1"] + TRAIN + EXACT + out
                + ["--width", "0.125", "--lr", "0.02"])
    assert done.returncode == 2
    assert "--width differs (rank 0: 0.0625, rank 1: 0.125)" in done.stderr
    assert "--lr differs (rank 0: 0.01, rank 1: 0.02)" in done.stderr
    assert "parameter shapes columns.0.conv1.bias differs (rank 0: [3], rank 1: [6])" in done.stderr
    assert not os.path.exists(tmp_path / "run" / "last.npz")


@needs_mpi
def test_a_killed_process_ends_the_run_in_bounded_time_and_the_last_checkpoint_stays_whole(tmp_path):
    options = ["train", "--quick", "--epochs", "1000", "--workers", "0", "--quiet", "--out", str(tmp_path / "run")]
    killed_after_2_s = [sys.executable, "-c", "import os, signal, sys, threading; "
                        "threading.Timer(2, os.kill, (os.getpid(), signal.SIGKILL)).start(); "
                        "from tinyalex.cli import main; sys.exit(main(sys.argv[1:]))"]
    tic = time.monotonic()
    done = _run([MPIEXEC, "-n", "1", sys.executable, "-m", "tinyalex"] + options
                + [":", "-n", "1"] + killed_after_2_s + options, timeout=100)
    assert done.returncode != 0 and time.monotonic() - tic < 90, done.stderr  # 1000 epochs: about 3 minutes
    if os.path.exists(tmp_path / "run" / "last.npz"):  # an epoch may have ended before the kill
        assert checkpoint.load(tmp_path / "run" / "last.npz").extra["epoch"] >= 1


@needs_mpi
def test_ctrl_c_stops_both_processes_and_leaves_a_checkpoint_that_loads(tmp_path):
    last = tmp_path / "run" / "last.npz"
    run = subprocess.Popen(["nice", "-n", "19", MPIEXEC, "-n", "2"] + TRAIN + ["--quick", "--epochs", "1000",
                           "--workers", "0", "--quiet", "--out", str(tmp_path / "run")], env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not last.exists() and run.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    run.send_signal(signal.SIGINT)  # what Ctrl-C sends; mpiexec passes it on to every process
    try:
        _, err = run.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        run.kill()
        pytest.fail(f"the run did not stop within 30 s of the interrupt: {run.communicate()[1]}")
    assert last.exists(), f"no checkpoint before the interrupt (exit status {run.returncode}): {err}"
    assert run.returncode == 130 and "interrupted; continue with --resume" in err, err
    assert checkpoint.load(last).extra["epoch"] >= 1  # the interrupted save, if any, left the last one whole


def test_a_checkpoint_of_two_processes_is_not_resumed_by_one():
    with pytest.raises(ValueError, match="trained by 2 process.*mpiexec -n 2"):
        distributed.resumed_generator_state({"processes": 2, "rank_rng": [{}, {}]}, {})
    assert distributed.resumed_generator_state({}, "state") == "state"


# ------------------------------------------------------------------ one process: the pieces
def test_without_mpiexec_init_is_a_no_op(monkeypatch):
    for name in ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK"):
        monkeypatch.delenv(name, raising=False)
    assert distributed.init() == 1 and distributed.rank() == 0 and distributed.size() == 1
    p = ta.tensor(np.ones(3), dtype="float64", requires_grad=True)
    p.grad = np.full(3, 2.0)
    distributed.average_gradients([p])
    np.testing.assert_array_equal(p.grad, [2.0, 2.0, 2.0])


def test_gradients_go_in_buckets_of_at_most_bucket_bytes_one_per_dtype(monkeypatch):
    monkeypatch.setattr(distributed, "BUCKET_BYTES", 800)
    arrays = [np.zeros(50), np.zeros(50), np.zeros(200), np.zeros(10, np.float32), np.zeros(10)]
    sizes = [[a.size for a in bucket] for bucket in distributed._buckets(arrays)]
    assert sizes == [[50, 50], [200], [10], [10]]  # the float32 one apart; the 1600-byte one alone


def test_flat_collectives_put_every_value_back_in_place():
    arrays = [np.arange(6.0).reshape(2, 3), np.arange(4.0)]
    distributed._flat_collective(arrays, lambda flat: flat.__imul__(10))
    np.testing.assert_array_equal(arrays[0], np.arange(6.0).reshape(2, 3) * 10)
    np.testing.assert_array_equal(arrays[1], np.arange(4.0) * 10)


@pytest.mark.parametrize("drop_last", [True, False])
def test_the_slices_of_the_processes_make_the_batch_of_one_process_with_the_batch_times_n(drop_last):
    shapes = data.SyntheticShapes(50, seed=0)
    one = data.DataLoader(shapes, 12, shuffle=True, seed=3, drop_last=drop_last, workers=0)
    ranks = [data.DataLoader(shapes, 4, shuffle=True, seed=3, drop_last=drop_last, workers=0, rank=r, world_size=3)
             for r in range(3)]
    assert all(len(loader) == len(one) for loader in ranks)
    per_rank = [[labels.numpy() for _, labels in loader] for loader in ranks]
    for b, (_, labels) in enumerate(one):
        slices = [batches[b] for batches in per_rank if b < len(batches)]
        np.testing.assert_array_equal(np.concatenate(slices), labels.numpy())
        if drop_last:
            assert [len(s) for s in slices] == [4, 4, 4]


def test_a_loader_rank_outside_the_world_is_refused():
    with pytest.raises(ValueError, match="rank must be an int in \\[0, world_size\\), got rank 2 of world_size 2"):
        data.DataLoader(data.SyntheticShapes(8), 4, rank=2, world_size=2)


def test_the_loader_makes_images_of_the_dtype_asked():
    images, _ = next(iter(data.DataLoader(data.SyntheticShapes(8), 4, dtype="float64", workers=0)))
    assert images.dtype == np.float64


# ------------------------------------------------------------------ GPUs: NCCL
def _gpu_count():
    return backend.cupy().cuda.runtime.getDeviceCount() if backend.gpu_available() else 0


@needs_mpi
@pytest.mark.gpu
@pytest.mark.skipif(_gpu_count() < 2, reason="needs 2 GPUs for NCCL between two processes")
def test_two_gpu_processes_over_nccl_train_as_one_gpu_with_the_doubled_batch(tmp_path):
    one = _train(tmp_path / "one", *EXACT, "--batch-size", "16", "--dtype", "float64", "--device", "cuda:0")
    two = _train(tmp_path / "two", *EXACT, "--batch-size", "8", "--dtype", "float64", "--device", "cuda",
                 processes=2)
    assert _largest_relative_difference(one, two) < 1e-10
