"""``tinyalex bench``'s command line: the options, the run that measures what they ask for, main."""
import argparse
import sys
from functools import partial

from .. import backend, threads
from .machine import blas_threads, machine
from .memory import bench_memory
from .ops import bench_ops, breakdown, step_flops
from .report import print_report, write_json
from .sgemm import bench_sgemm
from .step import MODELS, bench_step, build, default_batch, loss_of
from .tape import record
from .twin import TorchTwin, import_torch

DESCRIPTION = "`tinyalex bench`: how fast is a training step, op by op, and how far is it from the machine's limit?"


def parse_args(argv):
    p = argparse.ArgumentParser(prog="tinyalex bench", description=DESCRIPTION)
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--model", default="alexnet-cifar", choices=sorted(MODELS),
                   help="network to time: alexnet-cifar (3x32x32 images, 10 classes), the paper's alexnet "
                   "(3x227x227, 1000 classes) or four-layer-cnn, the small CIFAR-10 net of its Figure 1 and "
                   "section 3.3 (3 conv 5x5 of 32, 32, 64 maps; the lessons' experiments) (default alexnet-cifar)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per step (default 128; 16 for alexnet on the CPU)")
    p.add_argument("--algorithm", choices=["auto", "im2col"], default="auto",
                   help="tinyalex's convolution algorithm: auto (Winograd F(4x4, 3x3), F(5x5, 3x3), F(4x4, 5x5) or "
                   "F(5x5, 5x5) where it measured faster, im2col elsewhere) or im2col everywhere (the reference); default auto")
    p.add_argument("--against", choices=["torch"], default=None, help="time the same network in PyTorch too")
    p.add_argument("--torch-sgd", choices=["default", "fused"], default="default",
                   help="with --against torch: PyTorch's SGD as torch.optim.SGD makes it by default (on the CPU a "
                   "loop over the tensors) or with fused=True (one kernel a tensor; PyTorch 2.4 or later on the "
                   "CPU); the same update rule either way (default: default)")
    p.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    p.add_argument("--repeat", type=int, default=10, help="timed rounds per line (default 10)")
    p.add_argument("--warmup", type=int, default=2, help="untimed rounds first (default 2)")
    only = p.add_mutually_exclusive_group()
    only.add_argument("--ops-only", action="store_true", help="the per-op lines only (no step, no memory)")
    only.add_argument("--step-only", action="store_true", help="the training step and its memory only")
    args = p.parse_args(argv)
    try:
        args.device = backend.parse_device(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.batch_size is not None and args.batch_size < 1:
        p.error(f"--batch-size must be at least 1, got {args.batch_size}")
    if args.torch_sgd != "default" and args.against != "torch":
        p.error(f"--torch-sgd {args.torch_sgd} sets PyTorch's update: it needs --against torch")
    if args.repeat < 1 or args.warmup < 0:
        p.error(f"--repeat must be at least 1 and --warmup at least 0, got {args.repeat} and {args.warmup}")
    return args


def run(args):
    """Measure what ``args`` ask for; returns the results as a JSON-able dictionary."""
    device = backend.parse_device(args.device)
    batch = args.batch_size or default_batch(args.model, device)
    # PyTorch gets the cores tinyalex computes on: its own threads (the parts of an op) or its BLAS's,
    # whichever are more (OPENBLAS_NUM_THREADS=1 alone leaves tinyalex's own threads on every core)
    blas = blas_threads()
    torch_threads = max(threads.count(), blas or 1)
    torch = import_torch(torch_threads) if args.against else None
    backend.manual_seed(0)
    result = {"model": args.model, "algorithm": args.algorithm, "batch": batch, "device": device, "warmup": args.warmup, "repeat": args.repeat,
              "torch_sgd": args.torch_sgd,
              "machine": machine(device, torch, blas), "peak": bench_sgemm(device, torch, args.warmup, args.repeat)}
    net, opt, images, labels = build(args.model, batch, device, args.algorithm)
    tape = record(partial(loss_of, net, images, labels))
    flops = step_flops(tape)
    if not args.step_only:
        result["ops"] = bench_ops(tape, device, torch, args.warmup, args.repeat)
    twin = TorchTwin(torch, tape, args.torch_sgd) if torch is not None and not args.ops_only else None
    del tape  # lets the recorded activations go before the step is timed
    if not args.ops_only:
        result["step"] = bench_step(net, opt, images, labels, flops, twin, device, torch, args.warmup, args.repeat)
        result["memory"] = bench_memory(args.model, batch, device, list(result["step"]["ms"]), torch_threads,
                                        args.algorithm, args.torch_sgd)
    if "ops" in result and "step" in result:
        result["breakdown"] = breakdown(result["ops"], result["step"])
    return result


def main(argv=None):
    """Entry point of ``tinyalex bench``; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    try:
        result = {"command": " ".join(["tinyalex bench", *argv]), **run(args)}
    except RuntimeError as e:  # no PyTorch for --against, no CuPy or GPU for --device cuda
        print(f"tinyalex bench: error: {e}", file=sys.stderr)
        return 2
    print_report(result)
    if args.json:
        write_json(result, args.json)
    return 0
