"""The ``tinyalex`` command end to end: train --quick, resume exactly, evaluate, predict, clear errors."""
import subprocess
import sys
import types

import numpy as np
import pytest
from PIL import Image

from tinyalex import checkpoint, cli, data, nn

QUICK = ["train", "--quick", "--quiet", "--workers", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One quick training run of two epochs, shared by the tests below."""
    out = tmp_path_factory.mktemp("run")
    assert cli.main(QUICK + ["--epochs", "2", "--out", str(out)]) == 0
    return out


def test_train_quick_writes_the_run_directory(run, capsys):
    assert sorted(p.name for p in run.iterdir()) == ["best.npz", "curves.png", "last.npz", "metrics.jsonl"]
    saved = checkpoint.load(run / "last.npz").extra
    assert saved["model"] == "alexnet-cifar" and saved["epoch"] == 2 and len(saved["input"]["classes"]) == 10


@pytest.mark.slow
def test_resume_continues_the_run_bit_for_bit(run, tmp_path, monkeypatch):
    assert cli.main(QUICK + ["--epochs", "1", "--out", str(tmp_path / "r")]) == 0
    monkeypatch.chdir(tmp_path)  # from elsewhere, with no --out: the run goes on in the checkpoint's folder
    assert cli.main(["train", "--resume", "r/last.npz", "--epochs", "2", "--quiet", "--workers", "0"]) == 0
    tmp_path /= "r"
    straight, resumed = checkpoint.load(run / "last.npz"), checkpoint.load(tmp_path / "last.npz")
    assert straight.model.keys() == resumed.model.keys()
    assert all(np.array_equal(straight.model[k], resumed.model[k]) for k in straight.model)
    assert straight.extra["history"][1]["train_loss"] == resumed.extra["history"][1]["train_loss"]


def test_evaluate_prints_the_papers_error_rates(run, capsys):
    assert cli.main(["evaluate", "--checkpoint", str(run / "best.npz"), "--quiet", "--workers", "0"]) == 0
    one_view = capsys.readouterr().out
    assert "32 test images" in one_view and "top-1 error" in one_view and "top-5 error" in one_view
    assert cli.main(["evaluate", "--checkpoint", str(run / "best.npz"), "--ten-crop", "--quiet", "--workers", "0"]) == 0
    assert "10 views" in capsys.readouterr().out


def test_predict_prints_the_top_5_classes(run, tmp_path, capsys):
    image = data.SyntheticShapes(1, seed=5, train=False).images[0]
    Image.fromarray(image).resize((48, 40)).save(tmp_path / "shape.png")  # not the network's size
    assert cli.main(["predict", "--checkpoint", str(run / "best.npz"), str(tmp_path / "shape.png")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("shape.png") and len(lines) == 6
    probs = [float(line.split("%")[0]) for line in lines[1:]]
    assert probs == sorted(probs, reverse=True) and sum(probs) <= 100.01


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "--checkpoint", "missing.npz"], "missing.npz does not exist"),
    (["evaluate", "--checkpoint", "{bad}"], "damaged or not a tinyalex checkpoint"),
    (["predict", "--checkpoint", "{good}", "{bad}"], "cannot decode image"),
    (["predict", "--checkpoint", "{bare}", "{bad}"], "lacks model, model_args, input, args"),
    (["train", "--resume", "{bare}"], "lacks model, model_args, input, args"),
    (["predict", "--checkpoint", "{good}", "--top", "-1", "{bad}"], "--top must be at least 1, got -1"),
    (["train", "--quick", "--device", "tpu"], "unknown device 'tpu'"),
    (["train", "--quick", "--augment", "crop,rotate"], "unknown rotate"),
    (["train", "--quick", "--batch-size", "65"], "--batch-size 65 is more than the 64 training images"),
    (["train", "--quick", "--epochs", "0"], "--epochs must be a finite positive number, got 0"),
    (["train", "--quick", "--width", "inf"], "--width must be a finite positive number, got inf"),
    (["train", "--quick", "--seed", "-1"], "--seed must be 0 or more, got -1"),
    (["evaluate", "--checkpoint", "{run}"], "is a folder; give the .npz file in it"),
    (["train", "--quick", "--out", "{bad}"], "bad.npz is a file, not a folder"),
    (["train", "--quick", "--out", "{run}"], "already holds a run"),  # its checkpoints would be overwritten
    (["train", "--resume", "{good}", "--lr", "0.5"], "continues the saved run exactly, with its own --lr;"),
])
def test_user_mistakes_get_a_message_and_exit_status_2(run, tmp_path, capsys, argv, message):
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 truncated")
    checkpoint.save(tmp_path / "bare.npz", nn.Linear(3, 2))  # a checkpoint, but not from tinyalex train
    argv = [a.format(bad=tmp_path / "bad.npz", good=run / "best.npz", bare=tmp_path / "bare.npz", run=run)
            for a in argv]
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_an_out_folder_that_cannot_be_written_fails_before_training(tmp_path, capsys, monkeypatch):
    def refused(dir):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(cli.tempfile, "TemporaryFile", refused)  # a read-only folder (root may write anywhere)
    assert cli.main(QUICK + ["--out", str(tmp_path)]) == 2
    out, err = capsys.readouterr()
    assert f"--out {tmp_path} cannot be written (Permission denied)" in err and "Training" not in out


def test_a_closed_pipe_ends_the_command_quietly(tmp_path):
    child = subprocess.Popen([sys.executable, "-m", "tinyalex", "grade", "--list"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    child.stdout.close()  # before it writes a line: the reader of `tinyalex grade --list | head -0`
    err = child.stderr.read().decode()
    assert child.wait(60) == 1 and err == ""


def test_help_for_every_command(capsys):
    for argv in (["--help"], ["train", "--help"], ["evaluate", "--help"], ["predict", "--help"]):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == 0
    assert "--resume" in capsys.readouterr().out


def test_bench_and_grade_get_their_own_arguments(monkeypatch):
    for name in ("bench", "grade"):
        monkeypatch.setitem(sys.modules, f"tinyalex.{name}", types.SimpleNamespace(main=lambda argv: argv))
        assert cli.main([name, "--device", "cpu"]) == ["--device", "cpu"]


def test_a_preset_run_says_how_long_it_should_take(tmp_path, capsys):
    assert cli.main(QUICK + ["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"about {cli.PRESETS['quick']['seconds']} s on an idle 2-core CPU" in out


@pytest.mark.parametrize("height, width, message", [
    (40, 50, "are 40x50; the crops and test views need square images"),
    (40, 40, "alexnet-cifar cannot take the 40x40 images"),
])
def test_an_image_folder_the_network_cannot_take_is_refused_before_training(tmp_path, capsys, height, width,
                                                                             message):
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (width, height)).save(tmp_path / split / name / "x.png")
    assert cli.main(QUICK + ["--batch-size", "2", "--data", str(tmp_path), "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_evaluate_refuses_a_test_set_of_other_classes(run, tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "test" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "test" / name / "x.png")
    assert cli.main(["evaluate", "--checkpoint", str(run / "best.npz"), "--data", str(tmp_path), "--quiet"]) == 2
    assert "classes (a, b) are not those the checkpoint was trained on (circle, ring" in capsys.readouterr().err
