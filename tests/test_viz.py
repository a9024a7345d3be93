"""Figures: each one is written (atomically) as a PNG that decodes, and bad shapes are named."""
import os

import numpy as np
import pytest
from PIL import Image

from tinyalex import viz


def is_png(path):
    with Image.open(path) as im:
        return im.format == "PNG" and min(im.size) > 50


def test_curves_from_training_records(tmp_path):
    history = [{"epoch": e, "train_loss": 2 / e, "val_loss": 2.2 / e, "train_top1_error": 0.8 / e,
                "val_top1_error": 0.85 / e, "val_top5_error": 0.4 / e} for e in (1, 2, 3)]
    assert is_png(viz.plot_curves(history, tmp_path / "curves.png"))
    assert os.listdir(tmp_path) == ["curves.png"]


def test_kernel_grid_like_figure_3(tmp_path, rng):
    assert is_png(viz.kernel_grid(rng.standard_normal((96, 3, 11, 11)), tmp_path / "k.png"))
    assert is_png(viz.kernel_grid(rng.standard_normal((10, 16, 3, 3)), tmp_path / "grey.png"))
    with pytest.raises(ValueError, match="kernel_grid"):
        viz.kernel_grid(np.zeros((3, 11, 11)), tmp_path / "bad.png")


def test_prediction_bars_and_neighbours_like_figure_4(tmp_path, rng):
    images = rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(10), 3)
    classes = [f"class {i}" for i in range(10)]
    assert is_png(viz.prediction_bars(images, probs, classes, tmp_path / "p.png", labels=[0, 4, 9]))
    assert is_png(viz.neighbours_grid(images, np.stack([images[:4]] * 3), tmp_path / "n.png"))
    with pytest.raises(ValueError, match="neighbours_grid"):
        viz.neighbours_grid(images, images, tmp_path / "bad.png")


def test_the_curves_of_a_one_epoch_run_tick_whole_epochs_only(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(viz, "save_figure", lambda fig, path: figures.append(fig) or path)
    viz.plot_curves([{"epoch": 1, "train_loss": 1.7, "val_loss": 1.4, "train_top1_error": 0.6,
                      "val_top1_error": 0.5, "val_top5_error": 0.1}], tmp_path / "curves.png")
    for ax in figures[0].axes:
        low, high = ax.get_xlim()
        assert [t for t in ax.get_xticks() if low <= t <= high] == [1]
