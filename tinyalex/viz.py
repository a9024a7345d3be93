"""Figures for runs and lessons: training curves, the paper's Figure 3 (first-layer kernels) and
Figure 4 (top-5 predictions; nearest neighbours in the last hidden layer).

Figures are drawn on a ``matplotlib.figure.Figure`` (no pyplot, so no window and no global state)
and written atomically, as every file of the program is; the format follows the file's extension.
"""
import os

import numpy as np

from . import backend
from .io import atomic_write


def _figure(width, height):
    from matplotlib.figure import Figure  # imported here: only the figures need matplotlib
    return Figure(figsize=(width, height), layout="constrained")


def save_figure(fig, path, dpi=100, **savefig_options):
    """Write ``fig`` to ``path`` atomically, in the format its extension names (PNG by default)."""
    fmt = os.path.splitext(os.fspath(path))[1].lstrip(".").lower() or "png"
    with atomic_write(path) as f:
        fig.savefig(f, format=fmt, dpi=dpi, **savefig_options)
    return path


def _numpy(a):
    return backend.to_numpy(getattr(a, "data", a))


def plot_curves(history, path):
    """Loss and error rates per epoch (the records written by ``train.fit``) as a two-panel figure."""
    epochs = [r["epoch"] for r in history]
    fig = _figure(9, 3.5)
    loss, error = fig.subplots(1, 2)
    loss.plot(epochs, [r["train_loss"] for r in history], "o-", label="train")
    loss.plot(epochs, [r["val_loss"] for r in history], "o-", label="validation")
    loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="loss")
    for key, label in (("train_top1_error", "train top-1"), ("val_top1_error", "validation top-1"),
                       ("val_top5_error", "validation top-5")):
        if history[0].get(key) is not None:  # no top-5 for 5 classes or fewer
            error.plot(epochs, [100 * r[key] for r in history], "o-", label=label)
    error.set(xlabel="epoch", ylabel="error (%)", title="error rate")
    from matplotlib.ticker import MaxNLocator
    for ax in (loss, error):
        # epochs are whole: no tick at 1.25, and a one-epoch run's point gets the tick 1 alone, not 0.96, 0.98, ...
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.legend()
        ax.grid(alpha=0.3)
    return save_figure(fig, path)


def kernel_grid(weights, path, per_row=16, title=None):
    """First-layer kernels as small images, each stretched to its own [min, max] (paper, Figure 3).

    - weights: (K, C, KH, KW) array or Tensor; C = 3 draws colour, otherwise the channel mean in grey.
    In the two-column network the first K/2 kernels belong to column 1 and the rest to column 2: the
    paper observes colour-agnostic kernels on one and colour-specific ones on the other.
    """
    w = _numpy(weights).astype(np.float64)
    if w.ndim != 4:
        raise ValueError(f"kernel_grid: expected weights of shape (K, C, KH, KW), got {w.shape}")
    k, c, kh, kw = w.shape
    w = w.transpose(0, 2, 3, 1) if c == 3 else w.mean(axis=1)[..., None].repeat(3, axis=3)
    low = w.min(axis=(1, 2, 3), keepdims=True)
    span = w.max(axis=(1, 2, 3), keepdims=True) - low
    w = (w - low) / np.where(span > 0, span, 1.0)
    rows = -(-k // per_row)
    mosaic = np.ones((rows * (kh + 1) + 1, per_row * (kw + 1) + 1, 3))  # a one-pixel white border
    for i in range(k):
        r, q = divmod(i, per_row)
        mosaic[1 + r * (kh + 1):(r + 1) * (kh + 1), 1 + q * (kw + 1):(q + 1) * (kw + 1)] = w[i]
    fig = _figure(per_row * 0.5, rows * 0.5 + 0.4)
    ax = fig.subplots()
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(title or f"{k} kernels of size {kh}x{kw}x{c}")
    return save_figure(fig, path)


def prediction_bars(images, probs, classes, path, labels=None, k=5):
    """Each image with bars for its ``k`` most probable classes (paper, Figure 4 left).

    - images: (N, H, W, 3) uint8; probs: (N, classes) softmax outputs; classes: names
    - labels: optional (N,) true classes; the bar of the true class is drawn red, as in the paper.
    """
    images, probs = _numpy(images), _numpy(probs)
    n = len(images)
    fig = _figure(2.2 * n, 4.2)
    axes = fig.subplots(2, n, squeeze=False, height_ratios=[1.2, 1])
    for i in range(n):
        top = np.argsort(-probs[i], kind="stable")[:k]
        axes[0, i].imshow(images[i])
        axes[0, i].set_axis_off()
        if labels is not None:
            axes[0, i].set_title(classes[int(labels[i])], fontsize=9)
        colours = ["tab:red" if labels is not None and j == int(labels[i]) else "tab:blue" for j in top]
        axes[1, i].barh(range(len(top)), probs[i][top], color=colours)
        axes[1, i].set_yticks(range(len(top)), [classes[j] for j in top], fontsize=8)
        axes[1, i].invert_yaxis()
        axes[1, i].set_xlim(0, 1)
    return save_figure(fig, path)


def neighbours_grid(queries, neighbours, path):
    """Query images (first column) and, in their rows, the training images closest to them in the
    last hidden layer's feature space (paper, Figure 4 right; Euclidean distance of the 4096-d vectors).

    - queries: (Q, H, W, 3) uint8; neighbours: (Q, M, H, W, 3) uint8, nearest first
    """
    queries, neighbours = _numpy(queries), _numpy(neighbours)
    if neighbours.ndim != 5 or len(neighbours) != len(queries):
        raise ValueError(f"neighbours_grid: expected neighbours of shape (Q, M, H, W, 3) for {len(queries)} "
                         f"queries, got {neighbours.shape}")
    q, m = neighbours.shape[:2]
    fig = _figure(1.1 * (m + 1), 1.1 * q)
    axes = fig.subplots(q, m + 1, squeeze=False)
    for i in range(q):
        for j, image in enumerate([queries[i], *neighbours[i]]):
            axes[i, j].imshow(image)
            axes[i, j].set_axis_off()
    axes[0, 0].set_title("query", fontsize=9)
    axes[0, 1].set_title("nearest", fontsize=9)
    return save_figure(fig, path)
