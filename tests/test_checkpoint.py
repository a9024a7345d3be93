"""Checkpoints: one .npz, written atomically, read back exactly and without pickle; damage is reported."""
import json
import os

import numpy as np
import pytest

import tinyalex as ta
from tinyalex import checkpoint, nn, optim


def make(seed, out=4):
    ta.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(3, out, 3), nn.ReLU(), nn.Flatten(), nn.Linear(out * 4, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    for p in model.parameters():  # one step, so the velocities are not zero
        p.grad = np.full_like(p.data, 0.5)
    optimizer.step()
    return model, optimizer, optim.ReduceOnPlateau(optimizer, patience=1)


def states(*owners):
    """The state dicts of a model, an optimiser, a schedule: snapshots to compare."""
    return [owner.state_dict() for owner in owners]


def assert_same_states(got, expected):
    """Lists of state dicts with the same keys and, bit for bit, the same values and dtypes."""
    for a, b in zip(got, expected, strict=True):
        assert a.keys() == b.keys()
        for name in a:
            x, y = np.asarray(a[name]), np.asarray(b[name])
            assert (x.dtype, x.shape, x.tobytes()) == (y.dtype, y.shape, y.tobytes()), name


def test_round_trip_restores_every_array_and_the_metadata(tmp_path):
    model, optimizer, schedule = make(0)
    schedule.step(0.5)
    extra = {"epoch": 3, "rng": ta.backend.default_generator.state(), "args": {"lr": 0.01}}
    checkpoint.save(tmp_path / "c.npz", model, optimizer, schedule, extra=extra)
    saved = checkpoint.load(tmp_path / "c.npz")
    assert saved.extra == extra
    # the file itself holds the arrays as they were (a float32 weight stored as float64 would still restore)
    assert_same_states([saved.model, saved.optim, saved.schedule], states(model, optimizer, schedule))
    other, other_optimizer, other_schedule = make(1)
    saved.restore(other, other_optimizer, other_schedule)
    assert_same_states(states(other, other_optimizer, other_schedule), states(model, optimizer, schedule))


def test_the_file_is_plain_npz_without_pickles(tmp_path):
    model = nn.Linear(3, 2)
    checkpoint.save(tmp_path / "c.npz", model)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as z:
        assert sorted(z.files) == ["meta", "model/bias", "model/weight"]


def test_missing_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.npz"):
        checkpoint.load(tmp_path / "nothere.npz")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "foreign"])
def test_damaged_file_raises_a_clear_error(tmp_path, damage):
    model = nn.Linear(3, 2)
    path = tmp_path / "c.npz"
    checkpoint.save(path, model)
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif damage == "garbage":
        path.write_bytes(b"not a zip file at all" * 10)
    else:
        np.savez(path, weights=np.zeros(3))
    with pytest.raises(checkpoint.CheckpointError, match="c.npz") as info:
        checkpoint.load(path)
    assert "allow_pickle" not in str(info.value)  # NumPy's hint to load a stranger's file unsafely


def test_a_damaged_zip_header_is_a_checkpoint_error(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", nn.Linear(3, 2))
    packed = bytearray(path.read_bytes())
    entry = packed.index(b"PK\x01\x02")  # the first file's entry in the zip's central directory
    packed[entry + 8] |= 0x20  # its flags now ask for "compressed patched data", which zipfile cannot read
    path.write_bytes(packed)
    with pytest.raises(checkpoint.CheckpointError, match=r"c\.npz is damaged .*NotImplementedError"):
        checkpoint.load(path)


def test_a_folder_is_not_a_checkpoint(tmp_path):
    with pytest.raises(IsADirectoryError, match="is a folder; give the .npz file in it"):
        checkpoint.load(tmp_path)


def test_written_files_get_the_usual_permissions_not_mkstemps_private_ones(tmp_path):
    mask = os.umask(0o027)
    try:
        checkpoint.save(tmp_path / "c.npz", nn.Linear(3, 2))
    finally:
        os.umask(mask)
    assert (tmp_path / "c.npz").stat().st_mode & 0o777 == 0o640


def test_a_checkpoint_for_another_model_is_refused_with_the_difference(tmp_path):
    model, optimizer, _ = make(0)
    checkpoint.save(tmp_path / "c.npz", model)
    wider, wider_optimizer, _ = make(0, out=8)
    with pytest.raises(checkpoint.CheckpointError, match=r"c.npz does not fit.*0.bias.*\(4,\).*\(8,\)"):
        checkpoint.load(tmp_path / "c.npz").restore(wider)
    with pytest.raises(checkpoint.CheckpointError, match="no optimiser state"):
        checkpoint.load(tmp_path / "c.npz").restore(model, optimizer)


def test_a_failed_save_leaves_the_previous_file_and_no_temporary(tmp_path, monkeypatch):
    model = nn.Linear(3, 2)
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


def forge(path, meta, **arrays):
    """A .npz laid out like a checkpoint, with the given metadata (JSON text, or a value to encode) and arrays."""
    np.savez(path, meta=np.array(meta if isinstance(meta, str) else json.dumps(meta)), **arrays)
    return path


LINEAR = {"model/weight": np.zeros((2, 3), np.float32), "model/bias": np.zeros(2, np.float32)}
MALFORMED = {  # metadata that is valid JSON, but not what save writes
    "a list": [1, {"format": 1}],
    "a number": 1,
    "no extra": {"format": 1},
    "extra not a dict": {"format": 1, "extra": ["epoch", 3]},
    "optim not a dict": {"format": 1, "extra": {}, "optim": [0.1, 0.9]},
    "a missing array": {"format": 1, "extra": {}, "optim": {"velocity.0": {"__array__": "optim/7"}}},
    "an array named by a list": {"format": 1, "extra": {}, "schedule": {"best": {"__array__": ["optim/0"]}}},
    "nested a thousand deep": '{"format": 1, "extra": {}, "optim": {"v": %s%s}}' % ("[" * 990, "]" * 990),
}


@pytest.mark.parametrize("meta", MALFORMED.values(), ids=MALFORMED)
def test_malformed_metadata_raises_checkpoint_error_naming_the_file(tmp_path, meta):
    with pytest.raises(checkpoint.CheckpointError, match=r"c\.npz .*metadata"):
        checkpoint.load(forge(tmp_path / "c.npz", meta, **LINEAR))


def test_optimiser_and_schedule_state_of_the_wrong_type_raise_checkpoint_error(tmp_path):
    model = nn.Linear(3, 2)
    optimizer = optim.SGD(model.parameters(), lr=0.01)
    schedule = optim.ReduceOnPlateau(optimizer)
    velocities = {f"velocity.{i}": {"__array__": name} for i, name in enumerate(LINEAR)}
    state = {"optim": {**velocities, "lr": [0.1], "momentum": 0.9, "weight_decay": 0.0}}
    saved = checkpoint.load(forge(tmp_path / "c.npz", {"format": 1, "extra": {}, **state}, **LINEAR))
    with pytest.raises(checkpoint.CheckpointError, match="c.npz does not fit"):
        saved.restore(model, optimizer)
    state = {"schedule": {"best": {"a": 1}, "bad_epochs": 0, "reductions": 0}}
    saved = checkpoint.load(forge(tmp_path / "c.npz", {"format": 1, "extra": {}, **state}, **LINEAR))
    with pytest.raises(checkpoint.CheckpointError, match="c.npz does not fit"):
        saved.restore(model, schedule=schedule)


def rewrite(path, change):
    """Rewrite the checkpoint at ``path`` after ``change(arrays, meta)`` has edited its arrays and metadata."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {name: z[name] for name in z.files}
    meta = json.loads(str(arrays.pop("meta")))
    change(arrays, meta)
    return forge(path, meta, **arrays)


DAMAGE = {  # one for each part restore loads, and the model's come after the schedule and optimiser are loaded
    "no schedule state": lambda arrays, meta: meta.pop("schedule"),
    "a schedule count that is text": lambda arrays, meta: meta["schedule"].update(bad_epochs="one"),
    "an optimiser velocity of the wrong shape":
        lambda arrays, meta: arrays.update({meta["optim"]["velocity.3"]["__array__"]: np.zeros(3, np.float32)}),
    "an optimiser lr that is a list": lambda arrays, meta: meta["optim"].update(lr=[0.1]),
    "the last model entry of the wrong shape": lambda arrays, meta: arrays.update({"model/3.weight": np.zeros((2, 3))}),
    "the last model entry as text": lambda arrays, meta: arrays.update({"model/3.weight": np.full((2, 16), "x")}),
}


@pytest.mark.parametrize("damage", DAMAGE.values(), ids=DAMAGE)
def test_a_refused_restore_changes_nothing_and_a_good_one_still_works(tmp_path, damage):
    model, optimizer, schedule = make(0)
    optimizer.lr = 0.001
    schedule.step(0.5)
    checkpoint.save(tmp_path / "good.npz", model, optimizer, schedule)
    bad = rewrite(checkpoint.save(tmp_path / "bad.npz", model, optimizer, schedule), damage)
    target = make(1)
    before = states(*target)
    with pytest.raises(checkpoint.CheckpointError, match="bad.npz does not fit"):
        checkpoint.load(bad).restore(*target)
    assert_same_states(states(*target), before)
    checkpoint.load(tmp_path / "good.npz").restore(*target)
    assert_same_states(states(*target), states(model, optimizer, schedule))
