"""Checkpoints: one .npz, written atomically, read back exactly and without pickle; damage is reported."""
import os

import numpy as np
import pytest

from tinyalex import checkpoint


class Holder:
    """The smallest thing with a state dict: names -> arrays."""

    def __init__(self, **arrays):
        self.state = arrays

    def state_dict(self):
        return dict(self.state)

    def load_state_dict(self, state):
        self.state = dict(state)


def make(rng):
    model = Holder(**{"conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
                      "conv1.bias": np.ones(4, np.float32)})
    optim = Holder(velocity=[rng.standard_normal((4, 3, 3, 3)), np.zeros(4)])
    optim.state.update(lr=0.01, step=7)
    return model, optim


def test_round_trip_restores_every_array_and_the_metadata(tmp_path, rng):
    model, optim = make(rng)
    extra = {"epoch": 3, "rng": {"state": 2**100 + 1}, "args": {"lr": 0.01}}
    checkpoint.save(tmp_path / "c.npz", model, optim, extra=extra)
    saved = checkpoint.load(tmp_path / "c.npz")
    assert saved.extra == extra
    other, other_optim = make(np.random.default_rng(1))
    saved.restore(other, other_optim)
    for name, value in model.state.items():
        assert np.array_equal(other.state[name], value) and other.state[name].dtype == value.dtype
    assert other_optim.state["lr"] == 0.01 and other_optim.state["step"] == 7
    assert all(np.array_equal(a, b) for a, b in zip(other_optim.state["velocity"], optim.state["velocity"]))


def test_the_file_is_plain_npz_without_pickles(tmp_path, rng):
    model, _ = make(rng)
    checkpoint.save(tmp_path / "c.npz", model)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["meta", "model/conv1.bias", "model/conv1.weight"]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        checkpoint.load(tmp_path / "nothere.npz")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_damaged_file_raises_a_clear_error(tmp_path, rng, damage):
    model, _ = make(rng)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    else:
        np.savez(path, weights=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="c.npz"):
        checkpoint.load(path)


def test_a_checkpoint_for_another_model_is_refused_with_the_difference(tmp_path, rng):
    model, _ = make(rng)
    checkpoint.save(tmp_path / "c.npz", model)
    wider = Holder(**{"conv1.weight": np.zeros((8, 3, 3, 3), np.float32), "conv1.bias": np.zeros(8, np.float32)})
    with pytest.raises(checkpoint.CheckpointError, match=r"conv1.weight: \(4, 3, 3, 3\) in file"):
        checkpoint.load(tmp_path / "c.npz").restore(wider)


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, rng, monkeypatch):
    model, _ = make(rng)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model, extra={"epoch": 1})
    with pytest.raises(TypeError, match="JSON"):
        checkpoint.save(path, model, extra={"epoch": object()})

    def disk_full(f, **arrays):
        f.write(b"the first bytes of a checkpoint")
        raise OSError("no space left on device")

    monkeypatch.setattr(np, "savez", disk_full)
    with pytest.raises(OSError, match="no space"):
        checkpoint.save(path, model, extra={"epoch": 2})
    monkeypatch.undo()
    assert checkpoint.load(path).extra == {"epoch": 1}
    assert os.listdir(tmp_path) == ["c.npz"]
