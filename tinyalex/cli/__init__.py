"""The ``tinyalex`` command (also ``python -m tinyalex``): train, evaluate, predict, bench, grade.

    tinyalex train                                   # a minute on the CPU, on the embedded shapes
    tinyalex train --data cifar10 --device cuda --epochs 30
    tinyalex evaluate --checkpoint runs/<run>/best.npz --ten-crop
    tinyalex predict --checkpoint runs/<run>/best.npz cat.jpg ship.png
    mpiexec -n 2 tinyalex train --batch-size 64      # data-parallel: a batch of 128 cut in two
    mpiexec -n 2 tinyalex train --model-parallel columns   # AlexNet's two columns, one per process
    mpiexec -n 2 tinyalex evaluate --checkpoint runs/<run>/best.npz   # each process half of every batch

A user's mistake (a missing file, a damaged checkpoint, an unknown device, an unreadable image)
gets a one-line message and exit status 2, not a traceback.

Here: evaluate, predict and the command line. ``train``: the train command; ``runs``: a saved run
as the commands read it back; ``options``: the argparse pieces several commands share.
"""
import argparse
import importlib
import os
import sys
import traceback

import numpy as np

from .. import backend, data, distributed, models, train as training
from .. import functional as F
from ..data import pipeline, transforms as T
from ..data.folder import decode
from ..tensor import Tensor, no_grad
from . import train
from .options import Help, add_checkpoint, add_device, add_loading, parent
from .runs import checked, exists, load_run, split
from .train import PRESETS  # noqa: F401  (kept importable from here, where they used to live)


def _restore(path, device):
    """The model a checkpoint was trained as, with its weights, in evaluation mode, and its input spec."""
    saved = load_run(path)
    model_args = checked(saved.extra["model"], saved.extra["model_args"], f"checkpoint {path}: ")
    model_args = {k: v for k, v in model_args.items() if k != "devices"}  # evaluation runs on one device
    model = models.get(saved.extra["model"], **model_args)
    saved.restore(model)
    model.to(backend.parse_device(device))
    model.eval()
    return model, saved.extra


def cmd_evaluate(args):
    distributed.init()  # under mpiexec each process evaluates its slice of every batch
    distributed.quiet_unless_rank_0()
    model, extra = _restore(args.checkpoint, distributed.device_for_rank(args.device))
    spec, run = extra["input"], extra["args"]
    if args.data is None and not exists(run["data"]):
        raise FileNotFoundError(f"the checkpoint's data {run['data']} no longer exists; pass --data with its new place")
    test_set = pipeline.sized(split(args.data or run["data"], False, spec["n_test"], run["seed"]), spec.get("resize"))
    if list(test_set.classes) != spec["classes"]:  # else labels would index other (or no) outputs
        raise ValueError(f"the test set's classes ({_names(test_set.classes)}) are not those the checkpoint was "
                         f"trained on ({_names(spec['classes'])})")
    distributed.check_same({"checkpoint": {n: distributed.checksum(p.data) for n, p in model.named_parameters()},
                            **train.data_facts(test=test_set), "--ten-crop": args.ten_crop,
                            "--batch-size": args.batch_size})
    loader = data.DataLoader(test_set, args.batch_size, device=distributed.device_for_rank(args.device),
                             workers=args.workers, rank=distributed.rank(), world_size=distributed.size(),
                             transform=pipeline.test_transform(spec, pad=spec["pad"] if args.ten_crop else 0))
    result = training.evaluate(model, loader, ten_crop=spec["image_size"] if args.ten_crop else None,
                               progress=not args.quiet)
    views = "10 views (corners, centre, mirrored), softmax averaged" if args.ten_crop else "1 view"
    over = f", split over {distributed.size()} processes" if distributed.size() > 1 else ""
    print(f"{args.checkpoint}: {len(test_set)} test images, {views}{over}")
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
def build_parser():
    p = argparse.ArgumentParser(prog="tinyalex", description="Train, test and time AlexNet/VGG networks "
                                "written from scratch in NumPy/CuPy.")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train.add_parser(sub)

    e = sub.add_parser("evaluate", formatter_class=Help, parents=[parent(add_checkpoint, add_device, add_loading)],
                       help="top-1/top-5 error of a checkpoint on a test set",
                       description="Report top-1 and top-5 test error rates as the paper does (the fraction of "
                       "test images whose label is not the first, or not among the five most probable).")
    e.add_argument("--data", help="test set (default: the one the checkpoint was trained with)")
    e.add_argument("--ten-crop", action="store_true", help="average the softmax over 10 views (paper section 4.1)")
    e.add_argument("--batch-size", type=int, default=128, help="images per batch (under mpiexec -n N: the "
                   "whole batch, cut into N slices, one per process)")
    e.set_defaults(run=cmd_evaluate)

    r = sub.add_parser("predict", formatter_class=Help, parents=[parent(add_checkpoint, add_device)],
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
