"""The ``tinyalex`` command (also ``python -m tinyalex``): train, evaluate, predict, bench, grade.

    tinyalex train                                   # a minute on the CPU, on the embedded shapes
    tinyalex train --data cifar10 --device cuda --epochs 30
    tinyalex evaluate --checkpoint runs/<run>/best.npz --ten-crop
    tinyalex predict --checkpoint runs/<run>/best.npz cat.jpg ship.png

A user's mistake (a missing file, a damaged checkpoint, an unknown device, an unreadable image)
gets a one-line message and exit status 2, not a traceback.
"""
import argparse
import importlib
import json
import math
import os
import sys
import tempfile
import time

import numpy as np

from . import backend, checkpoint, data, models, optim, train as training, viz
from .data import pipeline, transforms as T
from .data.folder import decode
from .backend import manual_seed
from .tensor import Tensor, no_grad
from . import functional as F

# Sizes of the runs that need no --data (the embedded synthetic shapes, on the CPU of a small machine).
# "n_val": images drawn beyond n_train and held out of training for validation (--val-split).
# "seconds": the CPU time the run took, one BLAS thread (what an idle 2-core machine takes in wall time).
# The default's dropout 0.25: at width 1/8 the hidden layers have 64 units per column, and the paper's
# 0.5 on them keeps the loss near ln 10 for ~4 of the 12 epochs (33% test accuracy instead of 41-51%).
# A learning rate of 0.02 or more collapses this net to a constant output.
PRESETS = {
    "quick": {"n_train": 64, "n_val": 32, "n_test": 32, "epochs": 1, "batch_size": 32, "width": 0.0625,
              "dropout": 0.25, "seconds": 3},
    "default": {"n_train": 2000, "n_val": 500, "n_test": 500, "epochs": 12, "batch_size": 32, "width": 0.125,
                "dropout": 0.25, "seconds": 45},
    "data": {"epochs": 30, "batch_size": 128, "width": 1.0, "dropout": 0.5},
}
VAL_FRACTION = 0.1  # of a --data set's training images: CIFAR-10's 50,000 keep 45,000, validate on 5,000
# A width of 4 is 16x the paper-sized network's 7.6 M parameters; a crafted checkpoint once asked for
# 1000, and building it would have tried to allocate 572 GiB.
MAX_WIDTH = 4.0
MAX_CLASSES = 100_000
MAX_SIDE = 1024  # of alexnet-cifar's input images: fc6 grows with the square of it


# ------------------------------------------------------------------ train
def cmd_train(args):
    if args.resume and _resume(args) == "finished":
        return 0
    preset = _check_options(args)
    device = backend.parse_device(args.device)
    devices = tuple(backend.parse_device(d) for d in args.columns.split(",")) if args.columns else None
    for d in (device,) + (devices or ()):
        backend.module_for(d)  # fails now, with the reason, if that GPU is not there
    out = args.out = args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    manual_seed(args.seed)
    train_set, val_set, test_set = _splits(args, preset)
    spec = {**pipeline.describe(train_set.images, args.pixels, None if args.mean == "none" else args.mean,
                                _augment_list(args.augment), args.image_size),
            "classes": list(train_set.classes), "n_test": len(test_set)}
    model, model_args = _model(args, spec, device, devices)
    loader_device = devices[0] if devices else device
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, drop_last=True,
                                   device=loader_device, transform=pipeline.train_transform(spec, train_set.images),
                                   workers=args.workers)
    if len(train_loader) == 0:  # whole batches only, so that every step averages the same number of images
        raise ValueError(f"--batch-size {args.batch_size} is more than the {len(train_set)} training images; "
                         "lower it")
    val_loader, test_loader = (data.DataLoader(d, args.batch_size, device=loader_device, workers=args.workers,
                                               transform=pipeline.test_transform(spec)) for d in (val_set, test_set))
    optimizer = optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    schedule = optim.ReduceOnPlateau(optimizer, patience=args.patience)

    _check_run_directory(out, args.resume)
    _announce(args, preset, model, train_set, val_set, test_set, len(train_loader), devices or (device,))
    tic, history = time.perf_counter(), []

    def kept(records):  # the records so far, for the curves even when fit stops with an exception
        history[:] = records

    try:
        training.fit(model, optimizer, train_loader, val_loader, args.epochs, out, schedule=schedule,
                     resume=args.resume, progress=not args.quiet, on_epoch=kept,
                     extra={"model": args.model, "model_args": model_args, "input": spec,
                            "args": {k: v for k, v in vars(args).items() if k != "run"}})
    finally:  # the curves of what was trained, also when a run stops early
        if history:
            viz.plot_curves(history, os.path.join(out, "curves.png"))
    best = min(history, key=lambda r: r["val_top1_error"])
    on = "test set (--val-split test)" if val_set is test_set else f"{len(val_set):,} validation images"
    print(f"Done in {time.perf_counter() - tic:.1f} s. Best epoch {best['epoch']} on the {on}: top-1 error "
          f"{best['val_top1_error']:.1%}{_top5(best['val_top5_error'])}. Checkpoints {out}/best.npz and last.npz; "
          "metrics.jsonl, curves.png.")
    if val_set is not test_set and os.path.exists(os.path.join(out, "best.npz")):  # once, for the checkpoint
        checkpoint.load(os.path.join(out, "best.npz")).restore(model)                # chosen without it
        result = training.evaluate(model, test_loader, progress=not args.quiet)
        print(f"Test error of best.npz on the {len(test_set):,} test images: top-1 error {result['top1']:.1%} "
              f"(accuracy {1 - result['top1']:.1%}){_top5(result['top5'])}.")
    return 0


def _top5(error):
    """", top-5 error 12.3%", or nothing for 5 classes or fewer (where top-5 always holds the answer)."""
    return "" if error is None else f", top-5 error {error:.1%}"


def _count(n, noun, plural=None):
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def _resume(args):
    """Take the arguments of the run saved in ``args.resume`` (all but where it runs and for how long);
    "finished" when it already has its epochs. A checkpoint that is not its run's latest (best.npz
    behind last.npz) continues only into a new --out: in its own folder it would rewind the run."""
    saved = _load_run(args.resume)
    # a run saved before --val-split existed chose its checkpoints on the test set
    run, epoch = {"val_split": "test", **saved.extra["args"]}, saved.extra.get("epoch")
    here = os.path.dirname(os.path.abspath(args.resume))
    new_out = args.out is not None and os.path.abspath(args.out) != here
    args.out = args.out or os.path.dirname(args.resume) or "."  # not the saved --out: it may be relative
    if args.data is not None and not _exists(run.get("data")):  # the data moved: take it where it is now
        run = {**run, "data": _data_path(args.data)}
    elif args.data is not None and _data_path(args.data) == run.get("data"):
        args.data = run["data"]
    keep = {k: getattr(args, k) for k in ("epochs", "out", "device", "quiet", "workers", "resume")}
    defaults = vars(build_parser().parse_args(["train"]))
    changed = [k for k, v in run.items() if k not in keep and vars(args).get(k, v) not in (v, defaults.get(k))]
    if changed:  # they used to be dropped silently, e.g. a lower --lr
        raise ValueError(f"--resume continues the saved run exactly, with its own {_flags(changed)}; "
                         f"leave out {_flags(changed)} or start a new run")
    vars(args).update({**defaults, **run, **{k: v for k, v in keep.items() if v is not None}})
    if not _exists(args.data):
        raise FileNotFoundError(f"the run's data {args.data} no longer exists; pass --data with its new place")
    if isinstance(epoch, int) and epoch >= args.epochs:
        print(f"nothing to do: the run already has {_count(epoch, 'epoch')}; give --epochs N (more than "
              f"{epoch}) to continue it")
        return "finished"
    last = os.path.join(here, "last.npz")
    if isinstance(epoch, int) and os.path.isfile(last) and not os.path.samefile(last, args.resume):
        later = checkpoint.load(last).extra.get("epoch")
        if isinstance(later, int) and later > epoch:
            if not new_out:
                raise ValueError(f"{args.resume} is epoch {epoch} of a run that went on to epoch {later} ({last}); "
                                 f"resuming it there would overwrite the later epochs: give --out NEW_DIR to "
                                 f"continue it as a new run, or --resume {last}")
            print(f"Continuing {args.resume} (epoch {epoch}) as a new run in {args.out}; {last} (epoch {later}) "
                  "is left as it is.")
    return "resumed"


def _check_options(args):
    """The preset's sizes where none were given, and every number checked before anything is built."""
    preset = PRESETS["quick" if args.quick else "default" if args.data is None else "data"]
    for key in ("epochs", "batch_size", "width"):
        if getattr(args, key) is None:
            setattr(args, key, preset[key])
    if args.dropout is None:
        args.dropout = preset["dropout"]
    for key in ("epochs", "batch_size", "width", "lr") + (("image_size",) if args.image_size is not None else ()):
        value = getattr(args, key)
        if not 0 < value < math.inf:  # 0 once fell back to the preset silently; --lr 0 trains nothing
            raise ValueError(f"{_flags([key])} must be a finite positive number, got {value}")
    if not 0 <= args.momentum < 1:  # 1 or more makes every step add up for ever: the weights diverge
        raise ValueError(f"--momentum must be in [0, 1), got {args.momentum}")
    if not 0 <= args.weight_decay < math.inf:
        raise ValueError(f"--weight-decay must be 0 or more, got {args.weight_decay}")
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {args.seed}")
    if args.data is not None:
        args.data = _data_path(args.data)
    return preset


def _data_path(name):
    """A --data folder or archive as an absolute path (a checkpoint must find it from anywhere); names as they are."""
    return name if name in ("synthetic", "cifar10") else os.path.abspath(name)


def _exists(name):
    return name in (None, "synthetic", "cifar10") or os.path.exists(name)


def _splits(args, preset):
    """(training, validation, test) sets, in memory at the run's image size; validation is held out of
    the training images (--val-split), or is the test set itself with --val-split test."""
    n_val = preset.get("n_val", 0)
    train, test = (_split(args.data, split, n, args.seed)
                   for split, n in ((True, preset.get("n_train", 0) + n_val), (False, preset.get("n_test"))))
    try:
        train, test = pipeline.sized(train, args.image_size), pipeline.sized(test, args.image_size)
    except pipeline.SizeError as e:
        raise ValueError(f"{args.data}: {e}; pass --image-size S to rescale each image's shorter side to S and "
                         "take its central S x S patch (the paper: 256)") from None
    if args.val_split == "test":  # the old habit: checkpoints chosen and the rate cut on the test set
        return train, test, test
    n = _val_count(args.val_split, len(train), n_val if args.data is None else None)
    return pipeline.hold_out(train, n) + (test,)


def _val_count(text, n_train, default):
    """Images to hold out: a --val-split of N images or of a fraction; by default ``default`` or 1/10."""
    if text is None:
        text = str(default or max(1, round(VAL_FRACTION * n_train)))
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    n = round(value * n_train) if 0 < value < 1 else int(value) if value.is_integer() else 0
    if not 0 < n < n_train:
        raise ValueError(f"--val-split {text}: cannot hold out {n} of the {n_train} training images; give a number "
                         f"of images (1 to {n_train - 1}), a fraction in (0, 1), or 'test'")
    return n


def _model(args, spec, device, devices):
    """The network the options name, on its device(s), checked to take the run's images."""
    model_args = {"num_classes": len(spec["classes"])}
    if args.model == "alexnet-cifar":  # the knobs only that network has
        model_args.update(norm=None if args.norm == "none" else args.norm, width=args.width, dropout=args.dropout)
        if spec["image_size"] != 32:  # CIFAR-10's size needs no key: checkpoints from before stay as they were
            model_args["image_size"] = spec["image_size"]
    if devices:
        model_args["devices"] = list(devices)
    model = models.get(args.model, **_checked(args.model, model_args, ""))
    if not devices:
        model.to(device)
    _check_input(model, args.model, spec["image_size"], devices[0] if devices else device)
    return model, model_args


def _checked(name, model_args, where):
    """``model_args`` as ``tinyalex train`` writes them, checked before anything is built (a checkpoint
    may have been edited): known keys, values of the right kind and of sane size."""
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


def _announce(args, preset, model, train_set, val_set, test_set, batches, devices):
    source = args.data or "the embedded synthetic shapes"
    val = "chosen on the test set (--val-split test)" if val_set is test_set else f"{len(val_set):,} validation"
    knobs = f", width x{args.width}, norm={args.norm}, dropout {args.dropout}" if args.model == "alexnet-cifar" else ""
    print(f"Training {args.model} ({model.num_parameters():,} parameters{knobs}) on {source} ({len(train_set):,} "
          f"training, {val}, {len(test_set):,} test images), device {', '.join(devices)}: "
          f"{_count(args.epochs, 'epoch')} of {_count(batches, 'batch', 'batches')} of {args.batch_size}, SGD lr {args.lr} "
          f"momentum {args.momentum} weight decay {args.weight_decay}, pixels {args.pixels}, augmentation "
          f"{args.augment.replace(',', '+') if args.augment else 'none'}. Run directory: {args.out}")
    if "seconds" in preset and (args.epochs, args.batch_size, args.width) == tuple(
            preset[k] for k in ("epochs", "batch_size", "width")):
        print(f"This should take about {preset['seconds']} s on an idle 2-core CPU.")


def _flags(keys):
    return ", ".join("--" + key.replace("_", "-") for key in keys)


def _check_run_directory(out, resume):
    """Make ``out`` now, so that a path that cannot hold a run fails before training, not after an epoch,
    and refuse one that holds another run: training would overwrite its checkpoints."""
    last = os.path.join(out, "last.npz")
    if os.path.exists(last) and not (resume and os.path.samefile(os.path.dirname(os.path.abspath(resume)), out)):
        raise ValueError(f"--out {out} already holds a run ({last}); continue it with --resume {last}, "
                         "or choose another --out")
    if os.path.exists(out) and not os.path.isdir(out):
        raise NotADirectoryError(f"--out {out} is a file, not a folder")
    try:
        os.makedirs(out, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as e:
        raise OSError(f"--out {out} cannot be written ({e.strerror})") from None


def _check_input(model, name, side, device):
    """Fail before training, with the reason, when the network cannot take side x side images."""
    model.eval()  # no dropout masks: the engine's generator is left as it was
    try:
        with no_grad():
            model(Tensor(backend.to_device(np.zeros((1, 3, side, side), np.float32), device)))
    except ValueError as e:
        raise ValueError(f"{name} cannot take the {side}x{side} images of this data set ({e}); "
                         "pass --image-size S with a size it takes, or choose another --model") from None


def _augment_list(text):
    names = [] if text in ("", "none") else text.split(",")
    unknown = [n for n in names if n not in pipeline.AUGMENTS]
    if unknown:
        raise ValueError(f"--augment: unknown {', '.join(unknown)}; choose from {', '.join(pipeline.AUGMENTS)} "
                         "or 'none'")
    return names


def _split(name, train, n, seed):
    """A split of ``--data``, or (``name`` None) ``n`` images of the embedded synthetic shapes."""
    if name is None:
        return data.SyntheticShapes(n, seed=seed, train=train)
    return data.load(name, train=train, download=True)  # only "cifar10" downloads, once, into the cache


# ------------------------------------------------------------------ evaluate / predict
def _load_run(path):
    """A checkpoint written by ``tinyalex train``, with the metadata that the commands read."""
    saved = checkpoint.load(path)
    missing = [key for key in ("model", "model_args", "input", "args") if key not in saved.extra]
    if missing:  # e.g. one saved by checkpoint.save in a notebook, not by tinyalex train
        raise checkpoint.CheckpointError(f"checkpoint {path} was not written by tinyalex train: it lacks "
                                         f"{', '.join(missing)}")
    return saved


def _restore(path, device):
    """The model a checkpoint was trained as, with its weights, in evaluation mode, and its input spec."""
    saved = _load_run(path)
    model_args = _checked(saved.extra["model"], saved.extra["model_args"], f"checkpoint {path}: ")
    model_args = {k: v for k, v in model_args.items() if k != "devices"}  # evaluation runs on one device
    model = models.get(saved.extra["model"], **model_args)
    saved.restore(model)
    model.to(backend.parse_device(device))
    model.eval()
    return model, saved.extra


def cmd_evaluate(args):
    model, extra = _restore(args.checkpoint, args.device)
    spec, run = extra["input"], extra["args"]
    if args.data is None and not _exists(run["data"]):
        raise FileNotFoundError(f"the checkpoint's data {run['data']} no longer exists; pass --data with its new place")
    test_set = pipeline.sized(_split(args.data or run["data"], False, spec["n_test"], run["seed"]), spec.get("resize"))
    if list(test_set.classes) != spec["classes"]:  # else labels would index other (or no) outputs
        raise ValueError(f"the test set's classes ({_names(test_set.classes)}) are not those the checkpoint was "
                         f"trained on ({_names(spec['classes'])})")
    loader = data.DataLoader(test_set, args.batch_size, device=args.device, workers=args.workers,
                             transform=pipeline.test_transform(spec, pad=spec["pad"] if args.ten_crop else 0))
    result = training.evaluate(model, loader, ten_crop=spec["image_size"] if args.ten_crop else None,
                               progress=not args.quiet)
    views = "10 views (corners, centre, mirrored), softmax averaged" if args.ten_crop else "1 view"
    print(f"{args.checkpoint}: {len(test_set)} test images, {views}")
    top5 = "" if result["top5"] is None else f"top-5 error {result['top5']:.2%}   "
    print(f"top-1 error {result['top1']:.2%}   {top5}(accuracy {1 - result['top1']:.2%}, loss {result['loss']:.4f})")
    return 0


def _names(classes, shown=5):
    return ", ".join(classes[:shown]) + (", ..." if len(classes) > shown else "")


def _read_image(path, side):
    return T.resize_shorter_center_crop(decode(path), side)


def cmd_predict(args):
    if args.top < 1:
        raise ValueError(f"--top must be at least 1, got {args.top}")
    model, extra = _restore(args.checkpoint, args.device)
    spec = extra["input"]
    transform = pipeline.test_transform(spec)
    images = np.stack([transform(_read_image(p, spec["image_size"])) for p in args.images])
    with no_grad():
        probs = F.softmax(model(Tensor(backend.to_device(images, args.device)))).numpy()
    for path, p in zip(args.images, probs):
        print(path)
        for c in np.argsort(-p, kind="stable")[:args.top]:
            print(f"  {p[c]:7.2%}  {spec['classes'][c]}")
    return 0


# ------------------------------------------------------------------ the command line
class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none (the help text then says what happens)."""

    def _get_help_string(self, action):
        return action.help if action.default in (None, False) else super()._get_help_string(action)


def _options(*adders):
    """A parent parser holding options several commands share."""
    parent = argparse.ArgumentParser(add_help=False)
    for add in adders:
        add(parent)
    return parent


def _device(p):
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")


def _loading(p):
    p.add_argument("--workers", type=int, default=2, help="background threads preparing batches")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _checkpoint(p):
    p.add_argument("--checkpoint", required=True, metavar="CKPT", help="a .npz written by tinyalex train")


def build_parser():
    p = argparse.ArgumentParser(prog="tinyalex", description="Train, test and time AlexNet/VGG networks "
                                "written from scratch in NumPy/CuPy.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    quick, default, full = PRESETS["quick"], PRESETS["default"], PRESETS["data"]

    t = sub.add_parser("train", formatter_class=_Help, parents=[_options(_device, _loading)],
                       help="train a network (default: about a minute on the CPU)",
                       description="Train a network with the paper's SGD, validate after every epoch on images "
                       "held out of the training set, write metrics.jsonl, curves.png and checkpoints (last.npz, "
                       "best.npz: the best validation error) to the run directory, and report the test error of "
                       "best.npz once at the end. "
                       "Without --data: the embedded synthetic shapes on the CPU, about a minute.")
    t.add_argument("--model", default="alexnet-cifar", help=f"network: {', '.join(models.names())}")
    t.add_argument("--data", help="'synthetic', 'cifar10' (fetched into $TINYALEX_DATA or ~/.cache/tinyalex on "
                   "first use, 163 MB), a CIFAR-10 folder, an image folder with train/ and "
                   f"test/, or a .tar.gz of one (default: {default['n_train']:,} training and {default['n_test']:,} "
                   "test images of the embedded synthetic shapes)")
    t.add_argument("--epochs", type=int, help=f"epochs in all (default: {default['epochs']} without --data, "
                   f"{full['epochs']} with)")
    t.add_argument("--batch-size", type=int, help=f"mini-batch size (default: {default['batch_size']} without "
                   f"--data, {full['batch_size']} with)")
    t.add_argument("--columns", help="one device per column of the two-column network, e.g. cuda:0,cuda:1 or cuda,cpu")
    t.add_argument("--lr", type=float, default=0.01, help="learning rate (the paper: 0.01, /10 on plateaus)")
    t.add_argument("--momentum", type=float, default=0.9, help="momentum (the paper: 0.9)")
    t.add_argument("--weight-decay", type=float, default=5e-4, help="weight decay (the paper: 0.0005)")
    t.add_argument("--patience", type=int, default=3, help="epochs without a better validation error before lr /= 10")
    t.add_argument("--norm", default="lrn", choices=("lrn", "batchnorm", "none"),
                   help="alexnet-cifar's normalisation: the paper's LRN (after conv1, conv2), BatchNorm, or none")
    t.add_argument("--width", type=float, help="alexnet-cifar: multiply every layer's width (default: "
                   f"{default['width']} without --data, {full['width']} with)")
    t.add_argument("--dropout", type=float, help="alexnet-cifar: probability of dropping a unit of fc6/fc7 "
                   f"(the paper: 0.5; default: {default['dropout']} without --data, {full['dropout']} with)")
    t.add_argument("--augment", default="crop,flip", help="comma-separated from crop, flip, pca; or 'none'")
    t.add_argument("--image-size", type=int, metavar="S", help="rescale every image's shorter side to S and take "
                   "its central S x S patch (the paper: 256), e.g. for a folder of photos of mixed sizes "
                   "(default: the images as they are, which must be square and of one size)")
    t.add_argument("--val-split", metavar="N|F|test", help="images held out of the training set to choose "
                   "best.npz and cut the learning rate on: a number, or a fraction (default: 1/10 with --data, "
                   f"5,000 of CIFAR-10's 50,000; without, {default['n_val']:,} more synthetic images); 'test': "
                   "choose on the test set, as tinyalex did before (its test error is then optimistic)")
    t.add_argument("--pixels", default="unit", choices=("unit", "paper"), help="pixel scale: [0, 1] minus the "
                   "mean, or the paper's [0, 255] minus the mean (as cuda-convnet fed its networks)")
    t.add_argument("--mean", default="colour", choices=("colour", "image", "none"), help="what is subtracted: the "
                   "training set's mean colour (VGG), its mean image (AlexNet section 2), or nothing")
    t.add_argument("--resume", metavar="CKPT", help="continue the run saved in CKPT (its last.npz) exactly")
    t.add_argument("--out", metavar="RUN_DIR", help="run directory (default: runs/<date-time>; with "
                   "--resume, the checkpoint's folder)")
    t.add_argument("--quick", action="store_true", help=f"a few seconds: {quick['n_train']} images, a tiny network")
    t.add_argument("--seed", type=int, default=0, help="seed of the engine's generator and of the data order")
    t.set_defaults(run=cmd_train)

    e = sub.add_parser("evaluate", formatter_class=_Help, parents=[_options(_checkpoint, _device, _loading)],
                       help="top-1/top-5 error of a checkpoint on a test set",
                       description="Report top-1 and top-5 test error rates as the paper does (the fraction of "
                       "test images whose label is not the first, or not among the five most probable).")
    e.add_argument("--data", help="test set (default: the one the checkpoint was trained with)")
    e.add_argument("--ten-crop", action="store_true", help="average the softmax over 10 views (paper section 4.1)")
    e.add_argument("--batch-size", type=int, default=128, help="images per batch")
    e.set_defaults(run=cmd_evaluate)

    r = sub.add_parser("predict", formatter_class=_Help, parents=[_options(_checkpoint, _device)],
                       help="the most probable classes of image files",
                       description="Print the top classes and their probabilities for each image (resized so "
                       "its shorter side fits the network, centre-cropped).")
    r.add_argument("images", nargs="+", metavar="IMAGE", help="image files (JPEG, PNG, ...)")
    r.add_argument("--top", type=int, default=5, help="how many classes to print")
    r.set_defaults(run=cmd_predict)

    for name, what in (("bench", "time training steps and ops (tinyalex bench --help)"),
                       ("grade", "check exercise solutions (tinyalex grade --help)")):
        sub.add_parser(name, help=what, add_help=False)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    backend.keep_freed_cpu_memory()  # one short-lived process: CPU steps 6-20% faster (see there)
    try:
        return _run(argv)
    except BrokenPipeError:  # the reader has gone (tinyalex grade --list | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 1


def _run(argv):
    if argv and argv[0] in ("bench", "grade"):  # they parse their own options
        return importlib.import_module(f"tinyalex.{argv[0]}").main(argv[1:])
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except training.NonFiniteLoss as e:
        print(f"tinyalex {args.command}: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        last = os.path.join(args.out, "last.npz") if args.command == "train" and args.out else None
        hint = f"; continue with --resume {last}" if last and os.path.exists(last) else ""  # one epoch done
        print(f"tinyalex {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    except (OSError, ValueError, RuntimeError) as e:  # a missing file, a bad argument, a missing GPU
        print(f"tinyalex {args.command}: error: {e}", file=sys.stderr)
        return 2
