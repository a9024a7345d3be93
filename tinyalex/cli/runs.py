"""A run that ``tinyalex train`` saved, as the commands read it back: its checkpoint, its model
arguments checked before anything is built (a checkpoint may have been edited), and its data."""
import json
import os

from .. import checkpoint, data, models

# A width of 4 is 16x the paper-sized network's 7.6 M parameters; a crafted checkpoint once asked for
# 1000, and building it would have tried to allocate 572 GiB.
MAX_WIDTH = 4.0
MAX_CLASSES = 100_000
MAX_SIDE = 1024  # of alexnet-cifar's input images: fc6 grows with the square of it


def load_run(path):
    """A checkpoint written by ``tinyalex train``, with the metadata that the commands read."""
    saved = checkpoint.load(path)
    missing = [key for key in ("model", "model_args", "input", "args") if key not in saved.extra]
    if missing:  # e.g. one saved by checkpoint.save in a notebook, not by tinyalex train
        raise checkpoint.CheckpointError(f"checkpoint {path} was not written by tinyalex train: it lacks "
                                         f"{', '.join(missing)}")
    return saved


def checked(name, model_args, where):
    """``model_args`` as ``tinyalex train`` writes them, checked before anything is built: known keys,
    values of the right kind and of sane size. ``where`` begins the messages (e.g. the checkpoint)."""
    if name not in models.names():
        raise ValueError(f"{where}unknown model {name!r}; expected one of {', '.join(models.names())}")
    rules = {"num_classes": (lambda v: isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= MAX_CLASSES,
                             f"a whole number from 1 to {MAX_CLASSES:,}"),
             "devices": (lambda v: isinstance(v, list) and all(isinstance(d, str) for d in v), "a list of devices")}
    if name == "alexnet-cifar":
        number = (int, float)
        rules.update(width=(lambda v: isinstance(v, number) and 0 < v <= MAX_WIDTH, f"a number in (0, {MAX_WIDTH:g}]"),
                     dropout=(lambda v: isinstance(v, number) and 0 <= v < 1, "a probability in [0, 1)"),
                     norm=(lambda v: v in ("lrn", "batchnorm", None), "'lrn', 'batchnorm' or null"),
                     image_size=(lambda v: isinstance(v, int) and not isinstance(v, bool) and 8 <= v <= MAX_SIDE,
                                 f"a whole number from 8 to {MAX_SIDE}"))
    unknown = sorted(set(model_args) - set(rules))
    if unknown:
        raise ValueError(f"{where}unknown model argument(s) {', '.join(map(str, unknown))} for {name}; expected "
                         f"{', '.join(rules)}")
    for key, value in model_args.items():
        ok, what = rules[key]
        if not ok(value):
            raise ValueError(f"{where}model argument {key} must be {what}, got {json.dumps(value)[:60]}")
    return model_args


def split(name, train, n, seed):
    """A split of ``--data``, or (``name`` None) ``n`` images of the embedded synthetic shapes."""
    if name is None:
        return data.SyntheticShapes(n, seed=seed, train=train)
    return data.load(name, train=train, download=True)  # only "cifar10" downloads, once, into the cache


def data_path(name):
    """A --data folder or archive as an absolute path (a checkpoint must find it from anywhere); names as they are."""
    return name if name in ("synthetic", "cifar10") else os.path.abspath(name)


def exists(name):
    """Whether the data a run names are still there (the named sets always are)."""
    return name in (None, "synthetic", "cifar10") or os.path.exists(name)
