"""Training and evaluation loops, used by ``tinyalex train`` and by the lessons.

One epoch of the paper's training (Section 5): for each mini-batch, forward, the softmax
cross-entropy loss (the "multinomial logistic regression objective" of Section 4), backward, one SGD
step. ``fit`` adds what a long run needs: validation after every epoch, a metrics file, checkpoints
(last and best), exact resumption, and a stop on a non-finite loss. It draws nothing: it reports each
epoch through callbacks (``log``, ``on_epoch``), and ``viz.plot_curves`` draws the records.

On the CPU, NumPy's overflow and invalid-value warnings are silenced inside the loops: a diverging
run would print them by the screenful before the loss is read, and the loops check the loss and
the outputs themselves and stop with a message that names the likely cause.

The loss and the counts stay on the device during an epoch; the host reads them every
``sync_every`` steps, so a GPU is not made to wait after each step.
"""
import json
import math
import os
import shutil
import sys
import time

import numpy as np

from . import backend, checkpoint, distributed
from . import functional as F
from .metrics import Running, topk_correct
from .data import transforms
from .tensor import Tensor, no_grad


class NonFiniteLoss(RuntimeError):
    """The training loss became NaN or infinite (a learning rate too high, usually)."""


def _progress(loader, desc, enabled):
    from tqdm import tqdm
    return tqdm(loader, desc=desc, leave=False, dynamic_ncols=True,
                disable=not (enabled and sys.stderr.isatty() and distributed.rank() == 0))


def _check_finite(losses, epoch, first_step):
    """Raise NonFiniteLoss naming the first step (of ``losses``, which start at ``first_step``) whose
    loss is NaN or infinite. One host read for all of them."""
    values = backend.to_numpy(backend.xp(losses[0]).stack(losses))
    for i, value in enumerate(values.tolist()):
        if not math.isfinite(value):
            raise NonFiniteLoss(f"training stopped: the loss became {value} at epoch {epoch + 1}, "
                                f"step {first_step + i + 1}")


def train_epoch(model, loader, optimizer, epoch=0, sync_every=20, progress=False):
    """One pass over ``loader``: forward, softmax cross-entropy, backward, ``optimizer.step()``.

    Returns ``{"loss", "top1", "images_per_s"}`` averaged over the epoch's images (``top1`` is the
    *error* rate, as the paper reports it), over the images of all processes when there are several.
    Raises NonFiniteLoss, naming the epoch and step, as soon as a NaN/inf loss is read.
    """
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see the module docstring
        return _train_epoch(model, loader, optimizer, epoch, sync_every, progress)


def _train_epoch(model, loader, optimizer, epoch, sync_every, progress):
    model.train()
    running, pending = Running(), []
    bar = _progress(loader, f"epoch {epoch + 1}", progress)
    start = time.perf_counter()
    for step, (images, labels) in enumerate(bar):
        logits = model(images)
        loss = F.softmax_cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        with backend.on_device(loss.device):  # CuPy runs kernels on the current device, not on their arrays'
            (correct,) = topk_correct(logits.data, labels.data, ks=(1,))
            running.add(len(labels), loss=loss.data * len(labels), correct=correct)
            pending.append(loss.data)
            if len(pending) == sync_every:
                _check_finite(pending, epoch, step + 1 - len(pending))
                pending = []
                _show(bar, running, start)
    if pending:
        with backend.on_device(loss.device):
            _check_finite(pending, epoch, step + 1 - len(pending))
    return _summary(_over_processes(running, loader, ("loss", "correct")), start)


def _over_processes(running, loader, names):
    """The totals of all the images: summed over the processes when the loader cut each batch among
    them (data-parallel); as they are when every process saw every image (``model_parallel``)."""
    sliced = getattr(loader, "world_size", distributed.size()) > 1
    return distributed.sum_running(running, names) if sliced else running


def _summary(running, start):
    averages = running.read()
    return {"loss": averages["loss"], "top1": 1.0 - averages["correct"],
            "images_per_s": running.count / max(time.perf_counter() - start, 1e-9)}


def _show(bar, running, start):
    if not bar.disable:
        s = _summary(running, start)
        bar.set_postfix(loss=f"{s['loss']:.3f}", acc=f"{1 - s['top1']:.1%}", img_s=f"{s['images_per_s']:.0f}")


def evaluate(model, loader, ten_crop=None, progress=False):
    """Loss and top-1/top-5 *error* rates of ``model`` over ``loader``: ``{"loss", "top1", "top5"}``.

    ``top5`` is None for 5 classes or fewer, where the five most probable always hold the answer.

    ``ten_crop``: None, or the side of the crops for the paper's test-time augmentation: "extracting
    five 224x224 patches (the four corner patches and the center patch) as well as their horizontal
    reflections ... and averaging the predictions made by the network's softmax layer on the ten
    patches" (Section 4.1). The loader then yields whole images, cropped here on their device; the
    loss is that of the averaged softmax. With several processes, each evaluates its share of the
    loader's batches and the rates are those of all the images (with one column per process, both
    take every batch, in step).
    """
    model.eval()
    running = Running()
    with no_grad(), np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # see the module docstring
        for images, labels in _progress(loader, "evaluate", progress):
            if ten_crop:
                with backend.on_device(images.device):  # CuPy makes new arrays on the current device
                    views = transforms.ten_crop(images.data, ten_crop, channels_last=False)  # (10, N, C, h, w)
                images = Tensor(views.reshape((-1,) + views.shape[2:]))
            probs = F.softmax(model(images)).data
            # CuPy runs kernels on the current device, not on their arrays'; a two-column network may
            # end on another device than the one the labels were loaded on
            with backend.on_device(backend.device_of(probs)):
                if ten_crop:
                    probs = probs.reshape(10, len(labels), -1).mean(axis=0)
                xp = backend.xp(probs)
                targets = backend.to_device(labels.data, backend.device_of(probs)).reshape(-1, 1).astype(xp.int64)
                p_true = xp.take_along_axis(probs, targets, axis=1)
                # a probability that rounds to 0 would give log 0; the smallest float keeps the loss finite
                loss = -xp.log(xp.maximum(p_true, xp.finfo(probs.dtype).tiny)).sum()
                top1, top5 = topk_correct(probs, targets)
                running.add(len(labels), loss=loss, top1=top1, top5=top5)
    averages = _over_processes(running, loader, ("loss", "top1", "top5")).read()
    if not math.isfinite(averages["loss"]):
        raise NonFiniteLoss(f"the network's outputs are not finite (test loss {averages['loss']}): its weights "
                            "have diverged, so its error rates mean nothing")
    top5 = 1.0 - averages["top5"] if probs.shape[-1] > 5 else None
    return {"loss": averages["loss"], "top1": 1.0 - averages["top1"], "top5": top5}


def _culprit(optimizer):
    """What to change after a divergence: the learning rate, and a momentum above the paper's 0.9."""
    lr, momentum = getattr(optimizer, "lr", None), getattr(optimizer, "momentum", 0)
    hint = f"lower the learning rate (--lr, now {lr:g})" if lr is not None else "lower the learning rate (--lr)"
    return hint + (f" or the momentum (--momentum, now {momentum:g}; the paper's is 0.9)" if momentum > 0.9 else "")


def _is_best(history):
    """Whether the last record has the lowest validation top-1 error so far (a tie goes to the later)."""
    return history[-1]["val_top1_error"] <= min(r["val_top1_error"] for r in history)


def _copy(source, target):
    with open(source, "rb") as src, checkpoint.atomic_write(target) as dst:
        shutil.copyfileobj(src, dst)


def _write_metrics(path, history):
    with checkpoint.atomic_write(path, "w") as f:
        f.writelines(json.dumps(record) + "\n" for record in history)


def resume_point(saved):
    """(history, epoch, generator state) that ``fit`` wrote into a checkpoint's ``extra``, checked.

    A checkpoint written by ``checkpoint.save`` alone, or edited, may lack them or hold something
    else: that is a CheckpointError, raised before the model or the optimiser is touched.
    """
    try:
        history, epoch, rng = (saved.extra[key] for key in ("history", "epoch", "rng"))
        if not isinstance(history, list) or isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"history {type(history).__name__} and epoch {epoch!r}: expected a list and a count")
        np.random.default_rng().bit_generator.state = rng  # the generator's own check of a state
    except (KeyError, TypeError, ValueError) as e:
        raise checkpoint.CheckpointError(f"checkpoint {saved.path} cannot resume a training run "
                                         f"({type(e).__name__}: {e})") from None
    return history, epoch, rng


def _write_run(out_dir, model_state, optimizer_state, schedule, extra):
    """last.npz, best.npz (when this epoch is the best so far) and metrics.jsonl."""
    history, last = extra["history"], os.path.join(out_dir, "last.npz")
    checkpoint.save(last, model_state, optimizer_state, schedule, extra=extra)
    if _is_best(history):
        _copy(last, os.path.join(out_dir, "best.npz"))
    _write_metrics(os.path.join(out_dir, "metrics.jsonl"), history)


def fit(model, optimizer, train_loader, val_loader, epochs, out_dir, schedule=None, resume=None,
        extra=None, progress=False, log=print, stop=None, on_epoch=None):
    """Train for ``epochs`` epochs (in all, counting those of a resumed run) and keep a run directory.

    ``out_dir`` receives ``metrics.jsonl`` (one JSON record per epoch), ``last.npz``
    (after every epoch) and ``best.npz`` (lowest validation top-1 error). ``resume`` is a checkpoint
    path: the model, the optimiser, the schedule, the engine's random generator and the epoch count
    are restored and the loader is set to the next epoch, so on the CPU the resumed run is bit for bit
    the uninterrupted one. ``schedule.step(val_top1_error)`` is called after each epoch when given.
    ``extra`` (JSON-able: the model's name and arguments, the command line) goes into every checkpoint.
    ``stop(history)`` returning True ends the run after that epoch, before ``epochs`` (e.g. once a
    target training error is reached); a resumed run that had already stopped trains no further.
    ``log(line)`` gets one line per epoch; ``on_epoch(history)`` the records so far, after each epoch
    is saved (e.g. to draw them with ``viz.plot_curves``). Returns the list of per-epoch records.
    With several processes (``distributed``) rank 0 alone logs, writes and calls ``on_epoch``; each
    process takes the model's and optimiser's state to save (one column per process: they gather the
    whole network then) and resumes its own generator.
    """
    history, start_epoch = [], 0
    if resume is not None:
        saved = checkpoint.load(resume)
        history, start_epoch, rng = resume_point(saved)  # checked first: a refused resume changes nothing
        rng = distributed.resumed_generator_state(saved.extra, rng)
        saved.restore(model, optimizer, schedule)
        backend.default_generator.set_state(rng)
        log(f"resumed from {resume} after epoch {start_epoch}")
    last, best = os.path.join(out_dir, "last.npz"), os.path.join(out_dir, "best.npz")
    main = distributed.rank() == 0
    log = log if main else (lambda *_: None)
    if main and resume is not None and not os.path.exists(best) and history and _is_best(history):
        _copy(resume, best)  # continued in a new folder from its best epoch so far (e.g. from best.npz)

    def stopped(message):  # nothing of the diverged epoch is saved; say what is left, and the likely cause
        kept = f"; the last good checkpoint is {last}" if os.path.exists(last) else ""
        return NonFiniteLoss(f"{message}; {_culprit(optimizer)}{kept}")

    finished = stop is not None and bool(history) and stop(history)  # a resumed run that had already stopped
    for epoch in range(start_epoch, start_epoch if finished else epochs):
        train_loader.set_epoch(epoch)
        tic = time.perf_counter()
        try:
            train = train_epoch(model, train_loader, optimizer, epoch, progress=progress)
        except NonFiniteLoss as e:
            raise stopped(e) from None
        try:  # an epoch's last step can leave NaN weights behind a finite loss
            val = evaluate(model, val_loader, progress=progress)
        except NonFiniteLoss as e:
            raise stopped(f"training stopped after epoch {epoch + 1}: {e}") from None
        record = {"epoch": epoch + 1, "train_loss": train["loss"], "train_top1_error": train["top1"],
                  "val_loss": val["loss"], "val_top1_error": val["top1"], "val_top5_error": val["top5"],
                  "lr": getattr(optimizer, "lr", None), "images_per_s": train["images_per_s"],
                  "seconds": time.perf_counter() - tic}
        if schedule is not None:
            schedule.step(val["top1"])
        history.append(record)
        top5 = "" if val["top5"] is None else f" top-5 err {val['top5']:.1%}"
        log(f"epoch {epoch + 1}/{epochs}  train loss {train['loss']:.3f} top-1 err {train['top1']:.1%}  |  "
            f"val loss {val['loss']:.3f} top-1 err {val['top1']:.1%}{top5}  "
            f"({record['seconds']:.1f} s, {train['images_per_s']:.0f} img/s)")
        rng = backend.default_generator.state()
        ranks = distributed.generator_states(rng)  # a collective: every process takes part
        # so is the state of a network split over the processes (model_parallel): taken on every one
        states = model.state_dict(), optimizer.state_dict()
        if main:
            _write_run(out_dir, *states, schedule, {**(extra or {}), "epoch": epoch + 1,
                                                    "history": history, "rng": rng, **ranks})
            if on_epoch is not None:
                on_epoch(history)
        if stop is not None and stop(history):
            break
    return history
