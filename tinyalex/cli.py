"""The ``tinyalex`` command (also ``python -m tinyalex``): train, evaluate, predict, bench, grade.

    tinyalex train                                   # a minute on the CPU, on the embedded shapes
    tinyalex train --data cifar10 --device cuda --epochs 30
    tinyalex evaluate --checkpoint runs/<run>/best.npz --ten-crop
    tinyalex predict --checkpoint runs/<run>/best.npz cat.jpg ship.png
    mpiexec -n 2 tinyalex train --batch-size 64      # data-parallel: a batch of 128 cut in two

A user's mistake (a missing file, a damaged checkpoint, an unknown device, an unreadable image)
gets a one-line message and exit status 2, not a traceback.
"""
import argparse
import importlib
import math
import os
import sys
import tempfile
import time
import traceback

import numpy as np

from . import backend, checkpoint, data, distributed, models, optim, train as training
from .data import transforms as T
from .data.folder import decode
from .backend import manual_seed
from .tensor import Tensor, no_grad
from . import functional as F

# Sizes of the runs that need no --data (the embedded synthetic shapes, on the CPU of a small machine).
# "seconds": the CPU time the run took, one BLAS thread (what an idle 2-core machine takes in wall time).
# The default's dropout 0.25: at width 1/8 the hidden layers have 64 units per column, and the paper's
# 0.5 on them keeps the loss near ln 10 for ~4 of the 12 epochs (33% test accuracy instead of 41-51%).
# A learning rate of 0.02 or more collapses this net to a constant output.
PRESETS = {
    "quick": {"n_train": 64, "n_test": 32, "epochs": 1, "batch_size": 32, "width": 0.0625, "dropout": 0.25,
              "seconds": 3},
    "default": {"n_train": 2000, "n_test": 500, "epochs": 12, "batch_size": 32, "width": 0.125, "dropout": 0.25,
                "seconds": 45},
    "data": {"epochs": 30, "batch_size": 128, "width": 1.0, "dropout": 0.5},
}
AUGMENTS = ("crop", "flip", "pca")


# ------------------------------------------------------------------ the data pipeline of a run
PAD = 4  # the random crops are 32x32 windows of the image padded by 4 pixels (the modern CIFAR habit)


def test_transform(spec, pad=0):
    """Image -> network input: subtract the training set's mean colour (paper section 2), CHW float.

    ``pad``: zero-pad the border (after the mean subtraction, as the training crops are), so that the
    10 test views of ``evaluate --ten-crop`` are corner and centre windows of the padded image.
    """
    steps = [T.MeanSubtract(spec["mean"])]
    if pad:
        steps.append(lambda image, rng=None: np.pad(image, ((pad, pad), (pad, pad), (0, 0))))
    return T.Compose(steps + [T.ToFloat()])


def train_transform(spec, augment, train_set):
    """The training augmentations named in ``augment`` (paper section 4.1), then ``test_transform``'s steps.

    crop: "image translations", 32x32 windows of the image padded by ``PAD`` pixels; flip:
    "horizontal reflections" with probability 1/2; pca: the colour augmentation along the principal
    components of the training set's RGB pixels.
    """
    steps = [T.MeanSubtract(spec["mean"])]
    if "pca" in augment:
        steps.insert(0, T.PCALighting.fit(_images(train_set)))
    if "crop" in augment:
        steps.append(T.RandomCrop(spec["image_size"], padding=PAD))
    if "flip" in augment:
        steps.append(T.RandomFlip())
    return T.Compose(steps + [T.ToFloat()])


def _images(dataset):
    return dataset.images_labels()[0]


def _split(name, train, n, seed):
    """A split of ``--data``, or (``name`` None) ``n`` images of the embedded synthetic shapes."""
    if name is None:
        return data.SyntheticShapes(n, seed=seed, train=train)
    return data.load(name, train=train, download=True)  # only "cifar10" downloads, once, into the cache


# ------------------------------------------------------------------ train
def cmd_train(args):
    if distributed.init() > 1 and distributed.rank():
        sys.stdout = open(os.devnull, "w")  # rank 0 alone prints (its errors, too, go to stderr)
    if args.resume:  # continue the saved run: its arguments, except where it runs and for how long
        saved = _load_run(args.resume).extra["args"]
        args.out = args.out or os.path.dirname(args.resume) or "."  # not the saved --out: it may be relative
        keep = {k: getattr(args, k) for k in ("epochs", "out", "device", "quiet", "workers", "resume")}
        defaults = vars(build_parser().parse_args(["train"]))
        changed = [k for k, v in saved.items() if k not in keep and vars(args).get(k, v) not in (v, defaults.get(k))]
        if changed:  # they used to be dropped silently, e.g. a lower --lr
            raise ValueError(f"--resume continues the saved run exactly, with its own {_flags(changed)}; "
                             f"leave out {_flags(changed)} or start a new run")
        vars(args).update({**saved, **{k: v for k, v in keep.items() if v is not None}})
    preset = PRESETS["quick" if args.quick else "default" if args.data is None else "data"]
    for key in ("epochs", "batch_size", "width"):
        value = getattr(args, key)
        if value is None:
            setattr(args, key, preset[key])
        elif not 0 < value < math.inf:  # 0 once fell back to the preset silently
            raise ValueError(f"{_flags([key])} must be a finite positive number, got {value}")
    if args.seed < 0:
        raise ValueError(f"--seed must be 0 or more, got {args.seed}")
    if args.dropout is None:
        args.dropout = preset["dropout"]
    device = backend.parse_device(distributed.device_for_rank(args.device))
    devices = tuple(backend.parse_device(d) for d in args.columns.split(",")) if args.columns else None
    for d in (device,) + (devices or ()):
        backend.module_for(d)  # fails now, with the reason, if that GPU is not there
    augment = _augment_list(args.augment)
    out = args.out = args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    manual_seed(args.seed)

    train_set = _split(args.data, True, preset.get("n_train"), args.seed)
    test_set = _split(args.data, False, preset.get("n_test"), args.seed)
    images = _images(train_set)
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"the images of {args.data} are {images.shape[1]}x{images.shape[2]}; the crops and test "
                         "views need square images: resize them (transforms.resize_shorter_center_crop)")
    spec = {"image_size": int(images.shape[1]), "mean": T.MeanSubtract.fit(images, per_pixel=False).mean.tolist(),
            "classes": list(train_set.classes), "pad": PAD if "crop" in augment else 0, "n_test": len(test_set)}
    model_args = {"num_classes": len(spec["classes"])}
    if args.model == "alexnet-cifar":  # the knobs only that network has
        model_args.update(norm=None if args.norm == "none" else args.norm, width=args.width, dropout=args.dropout)
    if devices:
        model_args["devices"] = list(devices)
    model = models.get(args.model, **model_args)
    model.to(None if devices else device, dtype=args.dtype)
    loader_device = devices[0] if devices else device
    _check_input(model, args.model, spec["image_size"], loader_device)
    distributed.check_same({"model": args.model, "parameter shapes": {n: list(p.shape) for n, p in model.named_parameters()},
                            **_data_facts(train_set, test_set), **_options_of(args)})
    distributed.broadcast_parameters(model)
    distributed.seed_by_rank(args.seed)  # dropout masks differ per process
    share = {"rank": distributed.rank(), "world_size": distributed.size(), "dtype": args.dtype}
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, drop_last=True,
                                   device=loader_device, transform=train_transform(spec, augment, train_set),
                                   workers=args.workers, **share)
    if len(train_loader) == 0:  # whole batches only, so that every step averages the same number of images
        raise ValueError(f"--batch-size {_batch_text(args.batch_size)} is more than the {len(train_set)} "
                         "training images; lower it")
    test_loader = data.DataLoader(test_set, args.batch_size, device=loader_device, transform=test_transform(spec),
                                  workers=args.workers, **share)
    sgd = optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    schedule = optim.ReduceOnPlateau(sgd, patience=args.patience)
    optimizer = distributed.AveragedGradients(sgd) if distributed.size() > 1 else sgd

    if distributed.rank() == 0:  # the one process that writes
        _check_run_directory(out, args.resume)
    source = args.data or f"the embedded synthetic shapes ({len(train_set)} training, {len(test_set)} test images)"
    knobs = f", width x{args.width}, norm={args.norm}, dropout {args.dropout}" if args.model == "alexnet-cifar" else ""
    print(f"Training {args.model} ({model.num_parameters():,} parameters{knobs}) "
          f"on {source}, device {', '.join(devices) if devices else device}: {args.epochs} epochs of "
          f"{len(train_loader)} batches of {_batch_text(args.batch_size)}, SGD lr {args.lr} momentum {args.momentum} "
          f"weight decay {args.weight_decay}, augmentation {'+'.join(augment) or 'none'}. Run directory: {out}")
    if "seconds" in preset and (args.epochs, args.batch_size, args.width) == tuple(
            preset[k] for k in ("epochs", "batch_size", "width")):
        print(f"This should take about {preset['seconds']} s on an idle 2-core CPU.")
    tic = time.perf_counter()
    history = training.fit(model, optimizer, train_loader, test_loader, args.epochs, out, schedule=schedule,
                           resume=args.resume, progress=not args.quiet,
                           extra={"model": args.model, "model_args": model_args, "input": spec,
                                  "args": {k: v for k, v in vars(args).items() if k != "run"}})
    best = min(history, key=lambda r: r["val_top1_error"])
    print(f"Done in {time.perf_counter() - tic:.1f} s. Best test top-1 error {best['val_top1_error']:.1%} "
          f"(accuracy {1 - best['val_top1_error']:.1%}), top-5 error {best['val_top5_error']:.1%}, at epoch "
          f"{best['epoch']}. Checkpoints {out}/best.npz and last.npz; metrics.jsonl, curves.png.")
    return 0


def _batch_text(per_process):
    n = distributed.size()
    return str(per_process) if n == 1 else f"{n} x {per_process} ({n} processes)"


def _data_facts(train_set, test_set):
    """What must be the same data on every process: sizes and checksums of the images and labels."""
    return {f"{name} set": {"size": len(s), "checksum of the images and labels":
                            [distributed.checksum(a) for a in s.images_labels()]}
            for name, s in (("training", train_set), ("test", test_set))}


def _options_of(args):
    """The options that must agree across processes (not where each writes, shows or loads from)."""
    return {f"--{k.replace('_', '-')}": v for k, v in vars(args).items()
            if k not in ("run", "out", "quiet", "workers")}


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
            model(Tensor(backend.to_device(np.zeros((1, 3, side, side), model.parameters()[0].dtype), device)))
    except ValueError as e:
        raise ValueError(f"{name} cannot take the {side}x{side} images of this data set ({e}); "
                         "resize them or choose another --model") from None


def _augment_list(text):
    names = [] if text in ("", "none") else text.split(",")
    unknown = [n for n in names if n not in AUGMENTS]
    if unknown:
        raise ValueError(f"--augment: unknown {', '.join(unknown)}; choose from {', '.join(AUGMENTS)} or 'none'")
    return names


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
    model_args = dict(saved.extra["model_args"])
    model_args.pop("devices", None)  # evaluation runs on one device
    model = models.get(saved.extra["model"], **model_args)
    saved.restore(model)
    model.to(backend.parse_device(device))
    model.eval()
    return model, saved.extra


def cmd_evaluate(args):
    model, extra = _restore(args.checkpoint, args.device)
    spec, run = extra["input"], extra["args"]
    test_set = _split(args.data or run["data"], False, spec["n_test"], run["seed"])
    if list(test_set.classes) != spec["classes"]:  # else labels would index other (or no) outputs
        raise ValueError(f"the test set's classes ({_names(test_set.classes)}) are not those the checkpoint was "
                         f"trained on ({_names(spec['classes'])})")
    loader = data.DataLoader(test_set, args.batch_size, device=args.device, workers=args.workers,
                             transform=test_transform(spec, pad=spec["pad"] if args.ten_crop else 0))
    result = training.evaluate(model, loader, ten_crop=spec["image_size"] if args.ten_crop else None,
                               progress=not args.quiet)
    views = "10 views (corners, centre, mirrored), softmax averaged" if args.ten_crop else "1 view"
    print(f"{args.checkpoint}: {len(test_set)} test images, {views}")
    print(f"top-1 error {result['top1']:.2%}   top-5 error {result['top5']:.2%}   "
          f"(accuracy {1 - result['top1']:.2%}, loss {result['loss']:.4f})")
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
    transform = test_transform(spec)
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
                       description="Train a network with the paper's SGD, validate after every epoch, write "
                       "metrics.jsonl, curves.png and checkpoints (last.npz, best.npz) to the run directory. "
                       "Without --data: the embedded synthetic shapes on the CPU, about a minute.")
    t.add_argument("--model", default="alexnet-cifar", help=f"network: {', '.join(models.names())}")
    t.add_argument("--data", help="'synthetic', 'cifar10' (fetched into $TINYALEX_DATA or ~/.cache/tinyalex on "
                   "first use, 163 MB), a CIFAR-10 folder, an image folder with train/ and "
                   f"test/, or a .tar.gz of one (default: {default['n_train']:,} training and {default['n_test']:,} "
                   "test images of the embedded synthetic shapes)")
    t.add_argument("--epochs", type=int, help=f"epochs in all (default: {default['epochs']} without --data, "
                   f"{full['epochs']} with)")
    t.add_argument("--batch-size", type=int, help=f"mini-batch size of each process: under mpiexec -n N a step "
                   f"averages N of them (default: {default['batch_size']} without --data, {full['batch_size']} with)")
    t.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="parameters and images (float64: to compare runs to the last bit)")
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
        status = _run(argv)
    except BrokenPipeError:  # the reader has gone (tinyalex grade --list | head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python flushes stdout again at exit
        return 1
    except BaseException:
        if distributed.size() > 1:  # a process that ends alone leaves the others waiting in an all-reduce
            traceback.print_exc()
            distributed.abort(1)
        raise
    if status and distributed.size() > 1:
        distributed.abort(status)
    return status


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
