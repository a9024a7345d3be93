"""``tinyalex train``: a run whose options, data and network are checked before anything is trained.

The options are checked (``_check_options``) or, with --resume, taken from the saved run
(``_resume``); the data become training, validation and test sets at the run's image size
(``_splits``); the network is built and checked to take them (``_model``); ``train.fit`` runs the
epochs; then the curves are drawn and the test error of best.npz is reported once.

Under ``mpiexec -n N`` every process builds the same run, checks that it did
(``distributed.check_same``), starts from rank 0's weights and takes its slice of every batch;
rank 0 alone prints and writes the run directory. With ``--model-parallel columns`` (two processes)
each keeps one column of the network instead and both take every batch whole (``model_parallel``).
"""
import argparse
import math
import os
import tempfile
import time

import numpy as np

from .. import backend, checkpoint, data, distributed, models, optim, train as training, viz
from ..backend import manual_seed
from ..data import pipeline
from ..tensor import Tensor, no_grad
from . import model_parallel
from .options import Help, add_device, add_loading, parent
from .runs import checked, data_path, exists, load_run, split

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


def cmd_train(args):
    distributed.init()
    distributed.quiet_unless_rank_0()
    if args.resume and _resume(args) == "finished":
        return 0
    preset = _check_options(args)
    device = backend.parse_device(distributed.device_for_rank(args.device))
    devices = tuple(backend.parse_device(d) for d in args.columns.split(",")) if args.columns else None
    for d in (device,) + (devices or ()):
        backend.module_for(d)  # fails now, with the reason, if that GPU is not there
    out = args.out = args.out or os.path.join("runs", time.strftime("%Y%m%d-%H%M%S"))
    manual_seed(args.seed)
    train_set, val_set, test_set = _splits(args, preset)
    spec = {**pipeline.describe(train_set.images, args.pixels, None if args.mean == "none" else args.mean,
                                _augment_list(args.augment), args.image_size),
            "classes": list(train_set.classes), "n_test": len(test_set)}
    net, model_args = _model(args, spec, device, devices)
    distributed.check_same({"model": args.model,
                            "parameter shapes": {n: list(p.shape) for n, p in net.named_parameters()},
                            **data_facts(training=train_set, validation=val_set, test=test_set), **_options_of(args)})
    model = model_parallel.split(args, net)  # the whole net, or this process's column of it
    distributed.seed_by_rank(args.seed)  # dropout masks differ per process (a column's: per column)
    # every loader: where its batches go, and this process's slice of each (or all of it)
    share = {"device": devices[0] if devices else device, "workers": args.workers, "dtype": args.dtype,
             **model_parallel.slicing(args)}
    train_loader = data.DataLoader(train_set, args.batch_size, shuffle=True, seed=args.seed, drop_last=True,
                                   transform=pipeline.train_transform(spec, train_set.images), **share)
    if len(train_loader) == 0:  # whole batches only, so that every step averages the same number of images
        raise ValueError(f"--batch-size {model_parallel.batch_text(args)} is more than the {len(train_set)} "
                         "training images; lower it")
    val_loader, test_loader = (data.DataLoader(d, args.batch_size, transform=pipeline.test_transform(spec), **share)
                               for d in (val_set, test_set))
    sgd = optim.SGD(model.parameters(), args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    schedule = optim.ReduceOnPlateau(sgd, patience=args.patience)
    optimizer = model_parallel.stepping(args, sgd)

    if distributed.rank() == 0:  # the one process that writes
        _check_run_directory(out, args.resume)
    _announce(args, preset, net, train_set, val_set, test_set, len(train_loader), devices or (device,))
    tic, history = time.perf_counter(), []

    def kept(records):  # the records so far, for the curves even when fit stops with an exception
        history[:] = records

    try:
        training.fit(model, optimizer, train_loader, val_loader, args.epochs, out, schedule=schedule,
                     resume=args.resume, progress=not args.quiet, on_epoch=kept,
                     extra={"model": args.model, "model_args": model_args, "input": spec,
                            "args": {k: v for k, v in vars(args).items() if k != "run"}})
    finally:  # the curves of what was trained, also when a run stops early (rank 0's: fit calls on_epoch there)
        if history:
            viz.plot_curves(history, os.path.join(out, "curves.png"))
    if distributed.rank() == 0:
        best = min(history, key=lambda r: r["val_top1_error"])
        on = "test set (--val-split test)" if val_set is test_set else f"{len(val_set):,} validation images"
        print(f"Done in {time.perf_counter() - tic:.1f} s. Best epoch {best['epoch']} on the {on}: top-1 error "
              f"{best['val_top1_error']:.1%}{_top5(best['val_top5_error'])}. Checkpoints {out}/best.npz and "
              "last.npz; metrics.jsonl, curves.png.")
    best_npz = os.path.join(out, "best.npz")
    if val_set is not test_set and distributed.from_rank_0(os.path.exists(best_npz)):  # once, for the checkpoint
        by_columns = args.model_parallel == "columns"                                    # chosen without it
        if distributed.rank() == 0 or by_columns:  # a column reads its part of the whole network
            checkpoint.load(best_npz).restore(model)
        if not by_columns:
            distributed.broadcast_parameters(model)  # rank 0 alone wrote it; every process evaluates its share
        result = training.evaluate(model, test_loader, progress=not args.quiet)
        print(f"Test error of best.npz on the {len(test_set):,} test images: top-1 error {result['top1']:.1%} "
              f"(accuracy {1 - result['top1']:.1%}){_top5(result['top5'])}.")
    return 0


def _top5(error):
    """", top-5 error 12.3%", or nothing for 5 classes or fewer (where top-5 always holds the answer)."""
    return "" if error is None else f", top-5 error {error:.1%}"


def _count(n, noun, plural=None):
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"


def data_facts(**sets):
    """What must be the same data on every process: sizes and checksums of the images and labels."""
    return {f"{name} set": {"size": len(s), "checksum of the images and labels":
                            [distributed.checksum(a) for a in s.images_labels()]}
            for name, s in sets.items()}


def _options_of(args):
    """The options that must agree across processes (not where each writes, shows or loads from)."""
    return {f"--{k.replace('_', '-')}": v for k, v in vars(args).items()
            if k not in ("run", "out", "quiet", "workers")}


def _resume(args):
    """Take the arguments of the run saved in ``args.resume`` (all but where it runs and for how long);
    "finished" when it already has its epochs. A checkpoint that is not its run's latest (best.npz
    behind last.npz) continues only into a new --out: in its own folder it would rewind the run."""
    saved = load_run(args.resume)
    # a run saved before --val-split existed chose its checkpoints on the test set
    run, epoch = {"val_split": "test", **saved.extra["args"]}, saved.extra.get("epoch")
    here = os.path.dirname(os.path.abspath(args.resume))
    new_out = args.out is not None and os.path.abspath(args.out) != here
    args.out = args.out or os.path.dirname(args.resume) or "."  # not the saved --out: it may be relative
    if args.data is not None and not exists(run.get("data")):  # the data moved: take it where it is now
        run = {**run, "data": data_path(args.data)}
    elif args.data is not None and data_path(args.data) == run.get("data"):
        args.data = run["data"]
    keep = {k: getattr(args, k) for k in ("epochs", "out", "device", "quiet", "workers", "resume")}
    defaults = _defaults()
    changed = [k for k, v in run.items() if k not in keep and vars(args).get(k, v) not in (v, defaults.get(k))]
    if changed:  # they used to be dropped silently, e.g. a lower --lr
        raise ValueError(f"--resume continues the saved run exactly, with its own {_flags(changed)}; "
                         f"leave out {_flags(changed)} or start a new run")
    vars(args).update({**defaults, **run, **{k: v for k, v in keep.items() if v is not None}})
    if not exists(args.data):
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


def _defaults():
    """The options of ``tinyalex train`` given none, as its parser makes them."""
    p = argparse.ArgumentParser()
    add_parser(p.add_subparsers(dest="command"))
    return vars(p.parse_args(["train"]))


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
        args.data = data_path(args.data)
    model_parallel.check(args)
    return preset


def _flags(keys):
    return ", ".join("--" + key.replace("_", "-") for key in keys)


def _splits(args, preset):
    """(training, validation, test) sets, in memory at the run's image size; validation is held out of
    the training images (--val-split), or is the test set itself with --val-split test."""
    n_val = preset.get("n_val", 0)
    train, test = (split(args.data, is_train, n, args.seed)
                   for is_train, n in ((True, preset.get("n_train", 0) + n_val), (False, preset.get("n_test"))))
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
    """The network the options name, on its device(s) and of --dtype, checked to take the run's images."""
    model_args = {"num_classes": len(spec["classes"])}
    if args.model == "alexnet-cifar":  # the knobs only that network has
        model_args.update(norm=None if args.norm == "none" else args.norm, width=args.width, dropout=args.dropout)
        if spec["image_size"] != 32:  # CIFAR-10's size needs no key: checkpoints from before stay as they were
            model_args["image_size"] = spec["image_size"]
    if devices:
        model_args["devices"] = list(devices)
    model = models.get(args.model, **checked(args.model, model_args, ""))
    model_parallel.check_model(args, model)
    model.to(None if devices else device, dtype=args.dtype)  # the columns are on their devices already
    _check_input(model, args.model, spec["image_size"], devices[0] if devices else device)
    return model, model_args


def _announce(args, preset, model, train_set, val_set, test_set, batches, devices):
    source = args.data or "the embedded synthetic shapes"
    val = "chosen on the test set (--val-split test)" if val_set is test_set else f"{len(val_set):,} validation"
    knobs = f", width x{args.width}, norm={args.norm}, dropout {args.dropout}" if args.model == "alexnet-cifar" else ""
    print(f"Training {args.model} ({model.num_parameters():,} parameters{knobs}) on {source} ({len(train_set):,} "
          f"training, {val}, {len(test_set):,} test images), device {', '.join(devices)}: "
          f"{_count(args.epochs, 'epoch')} of {_count(batches, 'batch', 'batches')} of "
          f"{model_parallel.batch_text(args)}, "
          f"SGD lr {args.lr} momentum {args.momentum} weight decay {args.weight_decay}, pixels {args.pixels}, "
          f"augmentation {args.augment.replace(',', '+') if args.augment else 'none'}. Run directory: {args.out}")
    if "seconds" in preset and (args.epochs, args.batch_size, args.width) == tuple(
            preset[k] for k in ("epochs", "batch_size", "width")):
        print(f"This should take about {preset['seconds']} s on an idle 2-core CPU.")


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
                         "pass --image-size S with a size it takes, or choose another --model") from None


def _augment_list(text):
    names = [] if text in ("", "none") else text.split(",")
    unknown = [n for n in names if n not in pipeline.AUGMENTS]
    if unknown:
        raise ValueError(f"--augment: unknown {', '.join(unknown)}; choose from {', '.join(pipeline.AUGMENTS)} "
                         "or 'none'")
    return names


def add_parser(sub):
    """The ``train`` command and its options, in the subparsers ``sub``."""
    quick, default, full = PRESETS["quick"], PRESETS["default"], PRESETS["data"]
    t = sub.add_parser("train", formatter_class=Help, parents=[parent(add_device, add_loading)],
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
    t.add_argument("--batch-size", type=int, help=f"mini-batch size of each process: under mpiexec -n N a step "
                   "averages N of them; with --model-parallel columns, the whole batch, which both processes take "
                   f"(default: {default['batch_size']} without --data, {full['batch_size']} with)")
    t.add_argument("--dtype", default="float32", choices=("float32", "float64"),
                   help="parameters and images (float64: to compare runs to the last bit)")
    t.add_argument("--columns", help="one device per column of the two-column network, e.g. cuda:0,cuda:1 or cuda,cpu")
    t.add_argument("--model-parallel", default="none", choices=model_parallel.CHOICES, help=model_parallel.HELP)
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
