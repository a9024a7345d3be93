"""Checkpoints: one ``.npz`` file per save, written atomically and read without pickle.

Layout of the file (a zip of ``.npy`` arrays, readable with ``numpy.load(path)`` alone):

- ``model/<name>``: each entry of the model's ``state_dict()``;
- ``optim/<i>``, ``schedule/<i>``: the arrays found in the optimiser's and schedule's state dicts;
- ``meta``: one JSON string holding everything that is not an array: the format version, the
  ``extra`` dict (epoch, step, generator state, command-line arguments, metrics, the model's name
  and constructor arguments) and the *structure* of the optimiser/schedule state, in which each
  array is replaced by ``{"__array__": "optim/<i>"}``.

Nothing here can run code on load (``allow_pickle=False``), so a checkpoint from a stranger is safe
to open. A save goes to a temporary file in the same directory, is flushed to disk, and only then
renamed over the target (``io.atomic_write``): a crash mid-save leaves the previous checkpoint intact.
"""
import json
import os
import zipfile

import numpy as np

from . import backend
from .io import atomic_write

FORMAT_VERSION = 1
_ARRAY = "__array__"
_ABSENT = object()  # a metadata entry that is not there at all (as opposed to one that is null)


class CheckpointError(ValueError):
    """A checkpoint file that is missing, damaged, or does not fit the model it is loaded into."""


def _flatten(tree, prefix, arrays):
    """Replace every array in a nested dict/list by a reference, collecting it in ``arrays``."""
    if isinstance(tree, dict):
        return {str(k): _flatten(v, prefix, arrays) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_flatten(v, prefix, arrays) for v in tree]
    if hasattr(tree, "data") and hasattr(tree, "grad"):  # a Tensor
        tree = tree.data
    if isinstance(tree, np.ndarray) or backend.is_gpu_array(tree):
        key = f"{prefix}/{len(arrays)}"
        arrays[key] = backend.to_numpy(tree)
        return {_ARRAY: key}
    if isinstance(tree, np.generic):
        return tree.item()
    return tree


def _unflatten(tree, arrays, path):
    """Put the arrays back where ``_flatten`` left references; a reference to no array is a CheckpointError."""
    if isinstance(tree, dict):
        if set(tree) == {_ARRAY}:
            name = tree[_ARRAY]
            if not isinstance(name, str) or name not in arrays:
                raise CheckpointError(f"checkpoint {path} has malformed metadata: it refers to an array "
                                      f"{name!r}, which the file does not hold")
            return arrays[name]
        return {k: _unflatten(v, arrays, path) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_unflatten(v, arrays, path) for v in tree]
    return tree


def _json_object(value, what, path):
    """``value`` when it is a JSON object (a dict); else a CheckpointError saying what came instead."""
    if isinstance(value, dict):
        return value
    came = "it is missing" if value is _ABSENT else f"got {json.dumps(value)[:60]}"
    raise CheckpointError(f"checkpoint {path} has malformed metadata: {what} should be a JSON object; {came}")


def save(path, model, optimizer=None, schedule=None, extra=None):
    """Write the model (and optimiser, schedule, ``extra`` metadata) to ``path`` atomically.

    ``extra`` must be JSON-serialisable (numbers, strings, lists, dicts). Each of ``model``,
    ``optimizer`` and ``schedule`` may also be its ``state_dict()``, taken beforehand: ``train.fit``
    takes them on every process, since a network split over processes (``model_parallel``) gathers
    its columns then, while one process writes. Returns ``path``.
    """
    arrays = {f"model/{name}": backend.to_numpy(getattr(value, "data", value))
              for name, value in _state(model).items()}
    meta = {"format": FORMAT_VERSION, "extra": extra or {}}
    for key, owner in (("optim", optimizer), ("schedule", schedule)):
        if owner is not None:
            meta[key] = _flatten(_state(owner), key, arrays)
    try:
        arrays["meta"] = np.array(json.dumps(meta))
    except TypeError as e:
        raise TypeError(f"checkpoint.save: extra metadata must be JSON-serialisable ({e})") from None
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


def _state(owner):
    return owner if isinstance(owner, dict) else owner.state_dict()


class Checkpoint:
    """A loaded checkpoint: ``model`` (name -> NumPy array), ``optim`` and ``schedule`` state dicts
    (or None), ``extra`` (the metadata dict given to ``save``) and the ``path`` it came from."""

    def __init__(self, path, model, optim, schedule, extra):
        self.path, self.model, self.optim, self.schedule, self.extra = path, model, optim, schedule, extra

    def restore(self, model, optimizer=None, schedule=None):
        """Load the saved state into ``model`` (and ``optimizer``, ``schedule``): all of it or none of it.

        A checkpoint whose names, shapes or values do not fit raises CheckpointError with the difference
        and leaves all three exactly as they were: a half-restored run (new weights, old velocities)
        would train on silently. Each ``load_state_dict`` is itself all or nothing, so the schedule and
        then the optimiser are loaded, each after a snapshot of its ``state_dict()``, and put back from
        it when a later part is refused; the model comes last, so nothing can fail after it and it needs
        no snapshot.
        """
        others = [(owner, state, what) for owner, state, what in
                  ((schedule, self.schedule, "schedule"), (optimizer, self.optim, "optimiser")) if owner is not None]
        loaded = []  # (owner, its state before this restore) of each part already loaded
        try:
            absent = [what for _, state, what in others if state is None]
            if absent:
                raise ValueError(f"it holds no {' or '.join(absent)} state")
            for owner, state, _ in others:
                before = owner.state_dict()
                owner.load_state_dict(state)
                loaded.append((owner, before))
            model.load_state_dict(self.model)
        except (ValueError, KeyError, TypeError) as e:  # TypeError: a value of the wrong kind, e.g. lr: [0.1]
            for owner, before in reversed(loaded):
                owner.load_state_dict(before)
            raise CheckpointError(f"checkpoint {self.path} does not fit: {e}") from None


def load(path):
    """Read a checkpoint written by ``save``; never unpickles.

    Raises FileNotFoundError for a missing file and CheckpointError for a truncated, corrupt or
    foreign file, with the path and the reason.
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint {path} is a folder; give the .npz file in it (last.npz or best.npz)")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    if not zipfile.is_zipfile(path):  # else NumPy reads it as a pickle and suggests allow_pickle=True
        raise CheckpointError(f"checkpoint {path} is damaged or not a tinyalex checkpoint (not a .npz zip file)")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
    # NotImplementedError: zipfile's answer to a damaged header that now asks for a zip feature it lacks
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile,
            NotImplementedError) as e:
        raise CheckpointError(f"checkpoint {path} is damaged or not a tinyalex checkpoint "
                              f"({type(e).__name__}: {e})") from None
    if "meta" not in arrays:
        raise CheckpointError(f"checkpoint {path} is not a tinyalex checkpoint (no 'meta' entry)")
    try:
        extra, optim, schedule = _metadata(str(arrays.pop("meta")), arrays, path)
    except RecursionError:  # JSON nested about a thousand deep, which save never writes
        raise CheckpointError(f"checkpoint {path} has malformed metadata: it is nested too deeply") from None
    model = {name[len("model/"):]: a for name, a in arrays.items() if name.startswith("model/")}
    return Checkpoint(path, model, optim, schedule, extra)


def _metadata(text, arrays, path):
    """``extra`` and the optimiser and schedule state (None where absent) from the JSON of 'meta'.

    Checks what ``save`` writes: an object with the format version, an ``extra`` object, and state
    objects whose array references name arrays of the file; anything else is a CheckpointError.
    """
    try:
        meta = json.loads(text)
    except ValueError as e:
        raise CheckpointError(f"checkpoint {path} has unreadable metadata ({e})") from None
    meta = _json_object(meta, "the 'meta' entry", path)
    if meta.get("format") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {path} has format {meta.get('format')!r}; "
                              f"this tinyalex reads format {FORMAT_VERSION}")
    extra = _json_object(meta.get("extra", _ABSENT), "'extra'", path)
    optim, schedule = (_unflatten(_json_object(meta[key], repr(key), path), arrays, path) if key in meta else None
                       for key in ("optim", "schedule"))
    return extra, optim, schedule
