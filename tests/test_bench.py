"""`tinyalex bench`: the numbers it reports are counted right, its PyTorch twin is the same network,
and a tiny run gives a well-formed report."""
import json
import sys

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import bench, nn
from tinyalex import functional as F


def small_net():
    """A few layers of each kind the bench times, with a two-column conv and LRN as in the paper;
    LRN with k = 1, alpha = 1 so that a wrong alpha scaling in the twin would show."""
    return nn.Sequential(
        nn.Conv2d(3, 8, 5, stride=2, padding=2), nn.ReLU(), nn.LRN(n=5, k=1.0, alpha=1.0, beta=0.75, groups=2),
        nn.MaxPool2d(3, 2), nn.Conv2d(8, 8, 3, padding=1, groups=2), nn.ReLU(), nn.Flatten(),
        nn.Linear(8 * 3 * 3, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 10))


def batch(n=4, seed=0):
    rng = np.random.default_rng(seed)
    return ta.tensor(rng.standard_normal((n, 3, 16, 16)).astype(np.float32)), ta.tensor(rng.integers(0, 10, n))


def test_the_tape_lists_the_ops_of_a_forward_pass_in_order():
    net, (images, labels) = small_net(), batch()
    tape = bench.record(lambda: bench.loss_of(net, images, labels))
    labels_seen = [fn.label for fn, _, _ in tape.entries]
    assert labels_seen[:2] == ["Conv2d", "ReLU"] and labels_seen[-1] == "SoftmaxCrossEntropy"
    names = [name for name, *_ in bench.op_lines(tape)]
    assert [n for n in names if not n.startswith("lrn1")] == ["conv1", "pool1", "conv2", "fc3", "fc4", "softmax-CE"]
    assert names[1].startswith("lrn1")  # LRN takes the number of the convolution it follows
    leaves = tape.leaves()
    assert sum(t.requires_grad for t in leaves) == len(net.parameters())  # the weights, and
    assert any(t is images for t in leaves)                                 # the batch


def test_an_op_run_once_per_column_gets_a_letter():
    x = ta.tensor(np.ones((1, 4, 5, 5), np.float32))
    w = ta.tensor(np.ones((4, 4, 1, 1), np.float32), requires_grad=True)
    tape = bench.record(lambda: [F.lrn(half) for half in F.split(F.conv2d(x, w), 2)])
    assert [name for name, *_ in bench.op_lines(tape)] == ["conv1", "lrn1a", "lrn1b"]


def test_gemm_flops_are_two_per_multiply_add_and_backward_skips_the_image_gradient():
    # AlexNet's conv1 (paper 3.5): 96 kernels of 11x11x3 at stride 4 over 227x227 -> 55x55 maps
    x = ta.tensor(np.zeros((2, 3, 227, 227), np.float32))
    w = ta.tensor(np.zeros((96, 3, 11, 11), np.float32), requires_grad=True)
    tape = bench.record(lambda: F.conv2d(x, w, stride=4))
    forward, backward = bench.gemm_flops(*tape.entries[0])
    assert forward == 2 * (2 * 96 * 55 * 55) * (3 * 11 * 11)
    assert backward == forward  # only dL/dW: the image needs no gradient


def test_interleaved_rounds_alternate_drop_the_warmup_and_take_medians():
    calls, times = [], iter([100.0, 100.0, 1.0, 5.0, 3.0, 7.0, 2.0, 6.0])
    rounds = {name: (lambda name=name: calls.append(name) or {"step": next(times)}) for name in ("a", "b")}
    assert bench.interleaved(rounds, warmup=1, repeat=3) == {"a": {"step": 2.0}, "b": {"step": 6.0}}
    assert calls == ["a", "b"] * 4
    times = iter([100.0, 100.0, 1.0, 5.0, 3.0, 7.0, 2.0, 6.0])
    assert bench.interleaved(rounds, warmup=1, repeat=3, summary=min) == {"a": {"step": 1.0}, "b": {"step": 5.0}}


def test_on_a_cpu_each_framework_waits_for_the_others_idle_threads_then_wakes_its_own(monkeypatch):
    events, times = [], iter([9.0, 1.0, 9.0, 2.0, 9.0, 3.0, 9.0, 4.0])  # untimed rounds give 9
    monkeypatch.setattr(bench.clocks.time, "sleep", lambda s: events.append(f"sleep {s}"))
    rounds = {name: (lambda name=name: events.append(name) or {"step": next(times)}) for name in ("a", "b")}
    assert bench.interleaved(rounds, warmup=0, repeat=2, pause=bench.pause_for("cpu")) == {
        "a": {"step": 2.0}, "b": {"step": 3.0}}
    assert events == [f"sleep {bench.CPU_PAUSE_S}", "a", "a", f"sleep {bench.CPU_PAUSE_S}", "b", "b"] * 2
    assert bench.CPU_PAUSE_S >= 0.1 and bench.pause_for("cuda:1") == 0.0  # OpenBLAS spins ~0.1 s
    events.clear()
    bench.interleaved({"a": lambda: {"step": 1.0}}, warmup=1, repeat=2, pause=bench.pause_for("cpu"))
    assert events == []  # alone: nobody to wait for, nothing run twice


def test_dropout_p_is_read_back_from_the_scaled_mask():
    x = ta.tensor(np.ones((64, 64), np.float32), requires_grad=True)
    assert bench.dropout_p(F.dropout(x, p=0.3).creator) == pytest.approx(0.3)


def test_bad_arguments_are_refused_with_a_message(capsys):
    for argv in (["--batch-size", "0"], ["--repeat", "0"], ["--model", "lenet"], ["--ops-only", "--step-only"]):
        with pytest.raises(SystemExit):
            bench.parse_args(argv)
    assert "--batch-size must be at least 1" in capsys.readouterr().err


def test_torch_sgd_fused_needs_the_torch_side_and_a_known_name(capsys):
    with pytest.raises(SystemExit):
        bench.parse_args(["--torch-sgd", "fused"])
    assert "--torch-sgd fused sets PyTorch's update: it needs --against torch" in capsys.readouterr().err
    assert bench.parse_args(["--against", "torch", "--torch-sgd", "fused"]).torch_sgd == "fused"
    with pytest.raises(ValueError, match="sgd must be one of 'default', 'fused', got 'adam'"):
        bench.TorchTwin(None, None, "adam")


def test_against_torch_without_pytorch_says_how_to_get_it(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now fails, as where it is missing
    assert bench.main(["--against", "torch", "--ops-only"]) == 2
    assert "--against torch needs PyTorch" in capsys.readouterr().err


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "bench.json"
    bench.write_json({"a": 1}, str(path))
    bench.write_json({"b": 2}, str(path))
    assert json.loads(path.read_text()) == {"b": 2} and [p.name for p in tmp_path.iterdir()] == ["bench.json"]


def test_every_convolution_runs_the_chosen_algorithm_and_both_give_the_same_loss():
    losses = {}
    for algorithm in ("auto", "im2col"):
        ta.manual_seed(0)
        net, _, images, labels = bench.build("alexnet-cifar", 4, "cpu", algorithm)
        assert {m.algorithm for m in net.modules() if isinstance(m, nn.Conv2d)} == {algorithm}
        losses[algorithm] = bench.loss_of(net, images, labels).item()
    assert losses["auto"] == pytest.approx(losses["im2col"], rel=1e-5)  # auto: Winograd in conv3-5


def test_the_lessons_four_layer_network_is_timed_layer_by_layer_too():
    net, _, images, labels = bench.build("four-layer-cnn", 2, "cpu")
    tape = bench.record(lambda: bench.loss_of(net, images, labels))
    names = [name for name, *_ in bench.op_lines(tape)]
    assert names == ["conv1", "pool1", "conv2", "pool2", "conv3", "pool3", "fc4", "softmax-CE"]
    assert images.shape == (2, 3, 32, 32) and net(images).shape == (2, 10)


def tiny_run(tmp_path, *extra):
    path = tmp_path / "bench.json"
    assert bench.main(["--batch-size", "2", "--repeat", "1", "--warmup", "0", "--json", str(path), *extra]) == 0
    return json.loads(path.read_text())


def check_rows(rows, frameworks):
    for r in rows:
        assert set(r["ms"]) == set(frameworks) and all(ms > 0 for ms in r["ms"].values()), r["name"]
        assert r["flops"] >= 0 and ("speed_ratio" in r) == ("torch" in frameworks)


@pytest.mark.slow
def test_a_tiny_run_reports_every_op_the_step_and_its_memory(tmp_path, device):
    result = tiny_run(tmp_path, "--device", device)
    assert result["command"].startswith("tinyalex bench --batch-size 2") and result["device"].startswith(device)
    names = [r["name"] for r in result["ops"]]
    assert {"conv1 fwd", "conv1 bwd", "conv5 bwd", "pool5 bwd", "fc6 fwd", "fc8 bwd", "softmax-CE bwd"} <= set(names)
    assert any(n.startswith("lrn2") and n.endswith("bwd") for n in names)
    check_rows([result["peak"], *result["ops"], result["step"]], ["tinyalex"])
    step = result["step"]
    assert step["images_per_s"]["tinyalex"] == pytest.approx(2e3 / step["ms"]["tinyalex"])
    assert step["flops"] == sum(r["flops"] for r in result["ops"])  # a step's GEMMs are its ops' GEMMs
    kinds = result["breakdown"]["tinyalex"]
    assert set(kinds) == {"conv", "lrn", "pool", "fc", "softmax-CE", "other"}
    assert sum(kinds.values()) == pytest.approx(step["ms"]["tinyalex"])
    if result["memory"] is not None:
        assert result["memory"]["tinyalex"] > 0


# ---------------------------------------------------------------- against PyTorch (optional)
@pytest.mark.torch
def test_the_torch_twin_computes_the_same_loss_and_gradients():
    torch = pytest.importorskip("torch")
    net, (images, labels) = small_net(), batch()
    net.eval()  # no dropout: both sides must give the same numbers
    twin = bench.TorchTwin(torch, bench.record(lambda: bench.loss_of(net, images, labels)))
    loss = F.softmax_cross_entropy(net(images), labels)
    torch_loss = twin.forward()
    assert torch_loss.item() == pytest.approx(loss.item(), rel=1e-5)
    loss.backward()
    torch_loss.backward()
    torch_grads = [v.grad.numpy() for v in twin.leaves.values() if v.requires_grad]
    for p, g in zip(net.parameters(), torch_grads):
        np.testing.assert_allclose(g, p.grad, rtol=1e-4, atol=1e-6)


@pytest.mark.torch
def test_the_fused_sgd_of_the_torch_twin_takes_the_steps_of_its_default_one():
    """--torch-sgd fused changes how PyTorch updates, not what: the same weights after two steps."""
    torch = pytest.importorskip("torch")
    net, (images, labels) = small_net(), batch()
    net.eval()
    twins = [bench.TorchTwin(torch, bench.record(lambda: bench.loss_of(net, images, labels)), sgd)
             for sgd in ("default", "fused")]
    assert twins[1].opt.defaults["fused"] and not twins[0].opt.defaults["fused"]
    params = [t.opt.param_groups[0]["params"] for t in twins]
    start = [p.detach().clone() for p in params[0]]
    for twin in twins:
        twin.step(), twin.step()
    assert all(not torch.equal(p, s) for p, s in zip(params[0], start))  # the steps moved every weight
    for a, b in zip(*params):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.torch
@pytest.mark.slow
def test_a_tiny_run_against_torch_gives_a_speed_ratio_for_every_line(tmp_path):
    pytest.importorskip("torch")
    result = tiny_run(tmp_path, "--against", "torch")
    check_rows([result["peak"], *result["ops"], result["step"]], ["tinyalex", "torch"])
    assert result["machine"]["torch_threads"] >= 1 and set(result["memory"] or {"torch"}) >= {"torch"}


def test_pytorch_gets_as_many_threads_as_tinyalex_computes_on(monkeypatch):
    """OPENBLAS_NUM_THREADS=1 alone leaves tinyalex's own threads (the parts of each op) on every core:
    PyTorch gets those, not the BLAS's one."""
    import tinyalex.bench.cli as cli
    asked = []

    def no_torch(threads):
        asked.append(threads)
        raise RuntimeError("the thread count is all this test needs")

    monkeypatch.setattr(cli, "import_torch", no_torch)
    for own, blas, want in ((3, 1, 3), (1, 2, 2)):
        monkeypatch.setattr(cli, "blas_threads", lambda: blas)
        with ta.threads.workers(own), pytest.raises(RuntimeError, match="all this test needs"):
            cli.run(bench.parse_args(["--against", "torch"]))
        assert asked.pop() == want


def test_memory_is_unavailable_where_the_peak_cannot_be_reset_and_the_rest_still_runs(tmp_path, monkeypatch, capsys):
    def read_only_clear_refs(path, *args, **kwargs):  # as in containers that mount /proc read-only
        if str(path).endswith("clear_refs"):
            raise PermissionError(13, "Permission denied", str(path))
        return open(path, *args, **kwargs)

    monkeypatch.setattr(bench.memory, "open", read_only_clear_refs, raising=False)
    result = tiny_run(tmp_path, "--step-only")
    assert result["memory"] is None and result["step"]["ms"]["tinyalex"] > 0
    assert "memory a step adds" not in capsys.readouterr().out


def test_blas_threads_without_threadpoolctl_come_from_the_environment_or_say_how_to_read_them(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # as if not installed
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert bench.blas_threads() == 3
    for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(k, raising=False)
    assert bench.blas_threads() is None
    with pytest.raises(SystemExit):
        bench.parse_args(["--help"])
    assert "network to time: alexnet-cifar" in capsys.readouterr().out
