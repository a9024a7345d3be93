"""The training loop: it learns, it resumes bit for bit, it stops on a NaN and keeps what was good."""
import json

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import checkpoint, nn, optim, train
from tinyalex import functional as F


class Loader:
    """Shuffles from (seed, epoch), as tinyalex.data.DataLoader does."""

    def __init__(self, x, y, batch_size, shuffle):
        self.x, self.y, self.batch_size, self.shuffle, self.epoch = x, y, batch_size, shuffle, 0

    def set_epoch(self, epoch):
        self.epoch = epoch

    def __iter__(self):
        n = len(self.y)
        order = np.random.default_rng([7, self.epoch]).permutation(n) if self.shuffle else np.arange(n)
        for i in range(0, len(order), self.batch_size):
            j = order[i:i + self.batch_size]
            yield ta.tensor(self.x[j]), ta.tensor(self.y[j])


def blobs(n, seed):
    """Four well separated Gaussian clusters in 8 dimensions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centres = np.random.default_rng(99).normal(0, 3, (4, 8))
    return (centres[y] + rng.normal(0, 1, (n, 8))), y


def setup(lr=0.05):
    """A small net with dropout: its masks come from the engine's generator, so a resumed run that
    did not restore the generator's state would draw other masks and differ."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.25), nn.Linear(16, 4))
    model.to(dtype="float64")
    return (model, optim.SGD(model.parameters(), lr), Loader(*blobs(96, 0), 16, True),
            Loader(*blobs(64, 1), 32, False))


def weights(model):
    return list(model.state_dict().values())


def test_fit_learns_and_writes_a_run_directory(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    logged, reported = [], []
    history = train.fit(model, opt, train_loader, val_loader, epochs=3, out_dir=tmp_path, log=logged.append,
                        extra={"model": "tiny"}, on_epoch=lambda h: reported.append(len(h)))
    assert history[-1]["val_top1_error"] < 0.1 < history[0]["train_top1_error"]
    assert history[-1]["val_top5_error"] is None  # four classes: top-5 always holds the answer, so it is not shown
    assert len(logged) == 3 and "top-5" not in "".join(logged) and reported == [1, 2, 3]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]
    # the loop draws nothing (viz.plot_curves draws the records when asked)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.npz", "last.npz", "metrics.jsonl"]
    saved = checkpoint.load(tmp_path / "last.npz").extra
    assert saved["model"] == "tiny" and saved["epoch"] == 3


def test_fit_stops_after_the_epoch_that_meets_its_stop_rule(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    seen = []
    history = train.fit(model, opt, train_loader, val_loader, epochs=5, out_dir=tmp_path, log=lambda s: None,
                        stop=lambda h: seen.append(len(h)) or len(h) == 2)
    assert len(history) == 2 and seen == [1, 2]
    assert checkpoint.load(tmp_path / "last.npz").extra["epoch"] == 2  # the last epoch is saved before stopping
    again = train.fit(*setup(), epochs=5, out_dir=tmp_path, log=lambda s: None, resume=tmp_path / "last.npz",
                      stop=lambda h: len(h) >= 2)
    assert again == history  # resuming a run that had stopped trains no further


def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    straight = train.fit(model, opt, train_loader, val_loader, 2, tmp_path / "straight", log=lambda s: None)

    ta.manual_seed(0)
    first, opt1, train1, val1 = setup()
    train.fit(first, opt1, train1, val1, 1, tmp_path / "split", log=lambda s: None)
    ta.manual_seed(123)  # a fresh process: another seed, another model, until the checkpoint says otherwise
    resumed, opt2, train2, val2 = setup()
    history = train.fit(resumed, opt2, train2, val2, 2, tmp_path / "split", log=lambda s: None,
                        resume=tmp_path / "split" / "last.npz")
    assert all(np.array_equal(a, b) for a, b in zip(weights(resumed), weights(model)))
    assert all(np.array_equal(a, b) for a, b in zip(opt2.velocity, opt.velocity))
    assert [r["train_loss"] for r in history] == [r["train_loss"] for r in straight]


@pytest.mark.parametrize("damage", [{"rng": None}, {"epoch": -1}, {"history": "none"}, "no rng"])
def test_a_checkpoint_that_cannot_resume_a_run_changes_nothing(tmp_path, damage):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    train.fit(model, opt, train_loader, val_loader, 1, tmp_path / "run", log=lambda s: None)
    extra = checkpoint.load(tmp_path / "run" / "last.npz").extra
    if damage == "no rng":
        del extra["rng"]
    else:
        extra.update(damage)
    checkpoint.save(tmp_path / "bad.npz", model, opt, extra=extra)
    fresh, fresh_opt, train2, val2 = setup()
    before, generator = weights(fresh), ta.backend.default_generator.state()
    with pytest.raises(checkpoint.CheckpointError, match="cannot resume a training run"):
        train.fit(fresh, fresh_opt, train2, val2, 2, tmp_path / "again", log=lambda s: None,
                  resume=tmp_path / "bad.npz")
    assert all(np.array_equal(a, b) for a, b in zip(weights(fresh), before))
    assert all(not v.any() for v in fresh_opt.velocity) and ta.backend.default_generator.state() == generator


def test_evaluate_ten_crop_averages_the_softmax_over_corners_centre_and_mirrors(rng):
    model, _, _, _ = setup()
    model.eval()
    images, y = rng.normal(0, 3, (6, 2, 3, 3)), rng.integers(0, 4, 6)  # 2x2 crops: 8 features
    got = train.evaluate(model, [(ta.tensor(images), ta.tensor(y))], ten_crop=2)
    views = [images[:, :, t:t + 2, l:l + 2] for t, l in ((0, 0), (0, 1), (1, 0), (1, 1), (0, 0))]
    views += [v[..., ::-1] for v in views]  # the centre of a 3x3 image is its top-left 2x2 (floor)
    probs = np.mean([F.softmax(model(ta.tensor(v.copy()))).numpy() for v in views], axis=0)
    assert got["loss"] == pytest.approx(-np.log(probs[np.arange(6), y]).mean(), rel=1e-12)
    assert got["top1"] == np.mean(probs.argmax(axis=1) != y)


def test_evaluate_refuses_to_score_a_network_whose_outputs_are_nan():
    model, _, _, val_loader = setup()
    model.parameters()[0].data[0, 0] = np.nan
    with pytest.raises(train.NonFiniteLoss, match="outputs are not finite"):  # NaN scores once counted as right
        with np.errstate(invalid="ignore"):
            train.evaluate(model, val_loader)


class DivergeAfter(Loader):
    """Its epoch ``epoch`` ends with NaN weights, as after a last step whose own loss was still finite."""

    def __init__(self, loader, model, epoch):
        super().__init__(loader.x, loader.y, loader.batch_size, loader.shuffle)
        self.model, self.diverge_at = model, epoch

    def __iter__(self):
        yield from super().__iter__()
        if self.epoch == self.diverge_at:
            for p in self.model.parameters():
                p.data[...] = np.nan


def test_weights_that_diverge_behind_a_finite_loss_stop_training_before_they_are_saved(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    with pytest.raises(train.NonFiniteLoss, match=r"stopped after epoch 2: .*not finite.*--lr.*last good .*last.npz"):
        with np.errstate(invalid="ignore"):
            train.fit(model, opt, DivergeAfter(train_loader, model, 1), val_loader, 3, tmp_path, log=lambda s: None)
    kept = checkpoint.load(tmp_path / "last.npz")
    assert kept.extra["epoch"] == 1 and all(np.isfinite(w).all() for w in kept.model.values())
    assert checkpoint.load(tmp_path / "best.npz").extra["epoch"] == 1
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1


class Explode:
    """A planted schedule: after the first epoch it sets an infinite learning rate."""

    def __init__(self, optimizer):
        self.optimizer = optimizer

    def step(self, val_error):
        self.optimizer.lr = float("inf")

    def state_dict(self):
        return {}

    def load_state_dict(self, state):
        pass


def test_a_nan_loss_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    # the loss of step 1 is computed before its update: it is step 2 that sees infinite weights
    with pytest.raises(train.NonFiniteLoss, match=r"nan at epoch 2, step 2.*last good checkpoint is .*last.npz"):
        with np.errstate(all="ignore"):
            train.fit(model, opt, train_loader, val_loader, 3, tmp_path, schedule=Explode(opt), log=lambda s: None)
    kept = checkpoint.load(tmp_path / "last.npz")
    assert kept.extra["epoch"] == 1 and all(np.isfinite(w).all() for w in kept.model.values())


def test_a_loss_of_exactly_zero_is_reported_as_0_not_minus_0(tmp_path):
    ta.manual_seed(0)
    model, opt, train_loader, val_loader = setup()
    for p in model.parameters():
        p.data[...] = 0
    model[-1].bias.data[...] = [1e4, 0, 0, 0]  # class 0 certain: softmax exactly 1, -log 1 = -0.0
    only_zeros = Loader(train_loader.x, np.zeros_like(train_loader.y), 16, False)
    logged = []
    train.fit(model, opt, only_zeros, only_zeros, 1, tmp_path, log=logged.append)
    assert "train loss 0.000" in logged[0] and "val loss 0.000" in logged[0] and "-0.000" not in logged[0]


def test_a_diverging_run_prints_no_numpy_warnings_and_names_the_learning_rate_and_momentum(tmp_path):
    ta.manual_seed(0)
    _, _, train_loader, val_loader = setup()
    model = nn.Sequential(nn.Flatten(), nn.Linear(8, 4))  # no ReLU to die: it overflows
    model.to(dtype="float64")
    opt = optim.SGD(model.parameters(), 1e300, momentum=0.99)
    # pytest turns a RuntimeWarning into an error (pyproject.toml): the run must end in NonFiniteLoss alone
    with pytest.raises(train.NonFiniteLoss, match=r"--lr, now 1e\+300\) or the momentum \(--momentum, now 0.99"):
        train.fit(model, opt, train_loader, val_loader, 2, tmp_path, log=lambda s: None)


def test_importing_tinyalex_and_its_training_loop_loads_no_pillow_matplotlib_or_tqdm():
    import os
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    code = ("import sys, tinyalex, tinyalex.train, tinyalex.cli; "
            "print(sorted(m for m in ('PIL', 'matplotlib', 'tqdm', 'urllib.request') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"  # each is imported where it is first used
