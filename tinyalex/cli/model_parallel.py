"""``tinyalex train --model-parallel columns``: the paper's two columns as two processes (AlexNet
section 3.2), one column on each, under ``mpiexec -n 2``; ``tinyalex.model_parallel`` splits the network.

What such a run does otherwise than a data-parallel one: both processes take every image of every
batch (no slicing: ``--batch-size`` is the whole batch); they start from the weights that the same
seed gave both (no broadcast: rank 0's column 0 is not rank 1's column 1); each steps its own column
(no averaging); and its checkpoints hold the whole network, which each process reads its column of.
"""
from .. import distributed, model_parallel, models

CHOICES = ("none", "columns")
HELP = ("columns: the paper's two columns, one per process, under mpiexec -n 2 (section 3.2); both processes "
        "take the whole --batch-size batch")


def check(args):
    """Refuse, before anything is built or written, a run that cannot put one column on each process."""
    if args.model_parallel != "columns":
        return
    if args.columns:
        raise ValueError("--model-parallel columns puts one column on each process; --columns (a device per "
                         "column in one process) cannot go with it")
    if distributed.size() != 2:
        raise ValueError(f"--model-parallel columns needs 2 processes, one per column: mpiexec -n 2 tinyalex "
                         f"train ... (this run has {distributed.size()})")


def check_model(args, model):
    """Refuse a network of one column for --model-parallel columns (as soon as it is built)."""
    if args.model_parallel == "columns" and not isinstance(model, models.TwoColumnNet):
        raise ValueError(f"--model-parallel columns needs a network of two columns (alexnet, alexnet-cifar); "
                         f"{args.model} has one")


def split(args, model):
    """What this process trains: with --model-parallel columns its column of ``model``, else ``model``
    with rank 0's weights."""
    if args.model_parallel == "columns":
        return model_parallel.own_column(model)
    distributed.broadcast_parameters(model)
    return model


def stepping(args, optimizer):
    """``optimizer`` as the run steps it: its column's state in the whole network's (--model-parallel
    columns), gradients averaged over the processes (data-parallel), or as it is (one process)."""
    if args.model_parallel == "columns":
        return model_parallel.ColumnOptimizer(optimizer)
    return distributed.AveragedGradients(optimizer) if distributed.size() > 1 else optimizer


def slicing(args):
    """The DataLoader's ``rank`` and ``world_size``: this process's slice of each batch, or all of it."""
    if args.model_parallel == "columns":
        return {"rank": 0, "world_size": 1}
    return {"rank": distributed.rank(), "world_size": distributed.size()}


def batch_text(args):
    """The batch as the run takes it: '32', '2 x 16 (2 processes)', or all of it on each process."""
    n = distributed.size()
    if args.model_parallel == "columns":
        return f"{args.batch_size} (all of it on both processes, one column each)"
    return str(args.batch_size) if n == 1 else f"{n} x {args.batch_size} ({n} processes)"
