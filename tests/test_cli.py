"""The ``tinyalex`` command end to end: train --quick, resume exactly, evaluate, predict, clear errors."""
import subprocess
import sys
import tempfile
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

    monkeypatch.setattr(tempfile, "TemporaryFile", refused)  # a read-only folder (root may write anywhere)
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
    assert ": 1 epoch of 2 batches of 32," in out  # not "1 epochs"


@pytest.mark.parametrize("height, width, message", [
    (40, 50, "are 40x50; the crops and test views need square images"),
    (16, 16, "vgg-cifar-a cannot take the 16x16 images"),  # five 2x2 poolings need 32 or more
])
def test_an_image_folder_the_network_cannot_take_is_refused_before_training(tmp_path, capsys, height, width,
                                                                             message):
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            Image.new("RGB", (width, height)).save(tmp_path / split / name / "x.png")
    assert cli.main(QUICK + ["--model", "vgg-cifar-a", "--batch-size", "2", "--data", str(tmp_path),
                             "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err and not (tmp_path / "run").exists()


def test_evaluate_refuses_a_test_set_of_other_classes(run, tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / "test" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32)).save(tmp_path / "test" / name / "x.png")
    assert cli.main(["evaluate", "--checkpoint", str(run / "best.npz"), "--data", str(tmp_path), "--quiet"]) == 2
    assert "classes (a, b) are not those the checkpoint was trained on (circle, ring" in capsys.readouterr().err


def _folder(root, sizes, classes=("a", "b")):
    """An image folder with train/ and test/, one JPEG per size in each class, in random colours."""
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in classes:
            (root / split / name).mkdir(parents=True)
            for i, (w, h) in enumerate(sizes):
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.jpg")
    return root


MIXED = [(40, 30), (50, 64), (33, 33), (70, 45), (36, 52)]


def test_a_folder_of_mixed_size_photos_trains_with_image_size(tmp_path, capsys):
    photos = _folder(tmp_path / "photos", MIXED)
    out = tmp_path / "run"
    argv = QUICK + ["--data", str(photos), "--batch-size", "4", "--out", str(out)]
    assert cli.main(argv + ["--image-size", "64", "--width", "0.0625"]) == 0
    out_text = capsys.readouterr().out
    assert "on " + str(photos) + " (9 training, 1 validation, 10 test images)" in out_text
    saved = checkpoint.load(out / "best.npz").extra
    assert saved["input"]["image_size"] == 64 and saved["input"]["resize"] == 64
    assert saved["model_args"]["image_size"] == 64
    assert saved["args"]["data"] == str(photos)  # absolute, found from any working folder
    assert cli.main(["evaluate", "--checkpoint", str(out / "best.npz"), "--quiet", "--workers", "0"]) == 0
    evaluated = capsys.readouterr().out
    assert "10 test images" in evaluated and "top-5" not in evaluated  # two classes: top-5 says nothing


def test_mixed_sizes_without_image_size_name_the_option(tmp_path, capsys):
    photos = _folder(tmp_path / "photos", MIXED[:2])
    assert cli.main(QUICK + ["--data", str(photos), "--batch-size", "2", "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "images differ in size (2 sizes: 30x40, 64x50)" in err and "pass --image-size S" in err
    assert not (tmp_path / "run").exists()


def test_best_npz_is_chosen_on_held_out_images_and_the_test_error_is_reported_once(tmp_path, capsys):
    assert cli.main(QUICK + ["--epochs", "2", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "(64 training, 32 validation, 32 test images)" in out
    assert out.count("Test error of best.npz on the 32 test images") == 1
    assert cli.main(QUICK + ["--val-split", "test", "--out", str(tmp_path / "old")]) == 0
    old = capsys.readouterr().out
    assert "chosen on the test set (--val-split test)" in old and "Test error of best.npz" not in old


@pytest.mark.parametrize("split, message", [
    ("0", "--val-split 0: cannot hold out 0 of the 96 training images"),
    ("96", "cannot hold out 96 of the 96"),
    ("half", "a fraction in (0, 1), or 'test'"),
])
def test_a_validation_split_that_leaves_nothing_is_refused(tmp_path, capsys, split, message):
    assert cli.main(QUICK + ["--val-split", split, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err


def test_a_fraction_of_the_training_images_is_held_out(tmp_path, capsys):
    assert cli.main(QUICK + ["--val-split", "0.25", "--batch-size", "8", "--out", str(tmp_path / "run")]) == 0
    assert "(72 training, 24 validation, 32 test images)" in capsys.readouterr().out


@pytest.mark.parametrize("option, value, message", [
    ("--momentum", "1", "--momentum must be in [0, 1), got 1.0"),
    ("--momentum", "-0.1", "--momentum must be in [0, 1), got -0.1"),
    ("--lr", "0", "--lr must be a finite positive number, got 0.0"),
    ("--weight-decay", "-1", "--weight-decay must be 0 or more, got -1.0"),
    ("--width", "1000", "model argument width must be a number in (0, 4], got 1000.0"),
    ("--image-size", "0", "--image-size must be a finite positive number, got 0"),
])
def test_options_that_cannot_train_are_refused_up_front(tmp_path, capsys, option, value, message):
    assert cli.main(QUICK + [option, value, "--out", str(tmp_path / "run")]) == 2
    out, err = capsys.readouterr()
    assert message in err and "Training" not in out


def test_the_paper_pixel_scale_is_kept_for_evaluation(tmp_path, capsys):
    assert cli.main(QUICK + ["--pixels", "paper", "--mean", "image", "--out", str(tmp_path / "run")]) == 0
    spec = checkpoint.load(tmp_path / "run" / "best.npz").extra["input"]
    assert spec["pixels"] == "paper" and np.asarray(spec["mean"]).shape == (32, 32, 3)
    image = data.SyntheticShapes(1).images
    got = cli.pipeline.test_transform(spec)(image[0])
    assert got.max() > 2  # [0, 255] minus the mean, not [0, 1]
    assert cli.main(["evaluate", "--checkpoint", str(tmp_path / "run" / "best.npz"), "--quiet", "--workers", "0"]) == 0


def _crafted(run, tmp_path, **changes):
    saved = checkpoint.load(run / "best.npz")
    extra = {**saved.extra, **changes}
    path = tmp_path / "crafted.npz"
    np.savez(path, **{f"model/{k}": v for k, v in saved.model.items()},
             meta=np.array(__import__("json").dumps({"format": checkpoint.FORMAT_VERSION, "extra": extra})))
    return path


@pytest.mark.parametrize("model_args, message", [
    ({"num_classes": 10, "width": 1000, "norm": "lrn", "dropout": 0.25}, "model argument width must be a number in (0, 4], got 1000"),
    ({"num_classes": 10, "colour": 3}, "unknown model argument(s) colour for alexnet-cifar"),
    ({"num_classes": 10 ** 9}, "num_classes must be a whole number from 1 to 100,000"),
    ({"num_classes": "ten"}, 'num_classes must be a whole number from 1 to 100,000, got "ten"'),
])
def test_a_crafted_checkpoint_is_refused_before_anything_is_built(run, tmp_path, capsys, monkeypatch, model_args,
                                                                 message):
    path = _crafted(run, tmp_path, model_args=model_args)
    monkeypatch.setattr(cli.models, "get", lambda *a, **k: pytest.fail("built a model from a crafted checkpoint"))
    assert cli.main(["evaluate", "--checkpoint", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"checkpoint {path}: " in err and message in err


def test_a_checkpoint_whose_data_has_moved_asks_for_data(tmp_path, capsys):
    photos = _folder(tmp_path / "photos", [(32, 32)] * 3)
    assert cli.main(QUICK + ["--data", str(photos), "--batch-size", "2", "--out", str(tmp_path / "run")]) == 0
    photos.rename(tmp_path / "moved")
    best = str(tmp_path / "run" / "best.npz")
    assert cli.main(["evaluate", "--checkpoint", best, "--quiet"]) == 2
    assert f"the checkpoint's data {photos} no longer exists; pass --data" in capsys.readouterr().err
    assert cli.main(["evaluate", "--checkpoint", best, "--data", str(tmp_path / "moved"), "--quiet"]) == 0
    last = str(tmp_path / "run" / "last.npz")
    assert cli.main(["train", "--resume", last, "--epochs", "2", "--quiet", "--workers", "0"]) == 2
    assert f"the run's data {photos} no longer exists; pass --data" in capsys.readouterr().err
    assert cli.main(["train", "--resume", last, "--epochs", "2", "--quiet", "--workers", "0",
                     "--data", str(tmp_path / "moved")]) == 0


def test_resuming_a_finished_run_says_there_is_nothing_to_do(run, capsys):
    before = {p.name: p.read_bytes() for p in run.iterdir()}
    assert cli.main(["train", "--resume", str(run / "last.npz"), "--quiet"]) == 0
    assert capsys.readouterr().out == ("nothing to do: the run already has 2 epochs; give --epochs N (more than 2) "
                                       "to continue it\n")
    assert {p.name: p.read_bytes() for p in run.iterdir()} == before


def test_resuming_best_npz_behind_last_npz_refuses_to_rewind_or_starts_a_new_run(tmp_path, capsys):
    first = tmp_path / "run"
    assert cli.main(QUICK + ["--epochs", "1", "--out", str(first)]) == 0
    epoch_1 = (first / "last.npz").read_bytes()
    assert cli.main(["train", "--resume", str(first / "last.npz"), "--epochs", "2", "--quiet", "--workers", "0"]) == 0
    (first / "best.npz").write_bytes(epoch_1)  # as when epoch 2 validates worse than epoch 1
    before = {p.name: p.read_bytes() for p in first.iterdir()}
    capsys.readouterr()
    resume = ["train", "--resume", str(first / "best.npz"), "--epochs", "3", "--quiet", "--workers", "0"]
    assert cli.main(resume) == 2
    assert "best.npz is epoch 1 of a run that went on to epoch 2" in capsys.readouterr().err
    assert cli.main(resume + ["--out", str(tmp_path / "new")]) == 0
    assert f"as a new run in {tmp_path / 'new'}; {first / 'last.npz'} (epoch 2) is left as it is" in capsys.readouterr().out
    new = checkpoint.load(tmp_path / "new" / "last.npz").extra
    assert new["epoch"] == 3 and len(new["history"]) == 3 and (tmp_path / "new" / "best.npz").exists()
    assert {p.name: p.read_bytes() for p in first.iterdir()} == before


def test_a_diverging_run_shows_tinyalex_message_alone(tmp_path, capsys):
    assert cli.main(QUICK + ["--lr", "1e30", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "lower the learning rate (--lr, now 1e+30)" in err and "RuntimeWarning" not in err
