"""DataLoader: batches on the device, reproducible order and augmentation, exact resume, clean stops.

Run as a script for the throughput table in data/README.md:
    python tests/test_data_loader.py
"""
import threading
import time

import numpy as np
import pytest

from tinyalex import backend
from tinyalex.data import DataLoader, SyntheticShapes
from tinyalex.data import transforms as T

AUGMENT = T.Compose([T.RandomCrop(24), T.RandomFlip(), T.ToFloat()])


class PerImage:
    """A data set without an in-memory ``images`` array (like ImageFolder): the slow path."""

    def __init__(self, ds):
        self.ds, self.classes = ds, ds.classes

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        return self.ds[i]


@pytest.fixture(scope="module")
def shapes():
    return SyntheticShapes(100, seed=3)


def collect(loader):
    return [(x.numpy(), y.numpy()) for x, y in loader]


def test_batches_are_float_nchw_and_int64_labels(shapes):
    loader = DataLoader(shapes, 32)
    batches = collect(loader)
    assert len(loader) == len(batches) == 4 and batches[-1][0].shape == (4, 3, 32, 32)
    x, y = batches[0]
    assert x.dtype == np.float32 and y.dtype == np.int64 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_allclose(x[0], shapes.images[0].transpose(2, 0, 1) / 255, rtol=1e-6)
    np.testing.assert_array_equal(y, shapes.labels[:32])
    assert len(DataLoader(shapes, 32, drop_last=True)) == 3


def test_batches_land_on_the_device(shapes, device):
    x, y = next(iter(DataLoader(shapes, 8, device=device, transform=AUGMENT)))
    assert x.device == backend.parse_device(device) and y.device == x.device
    np.testing.assert_array_equal(x.numpy(), next(iter(DataLoader(shapes, 8, transform=AUGMENT)))[0].numpy())


def test_order_and_augmentation_depend_only_on_seed_and_epoch(shapes):
    a = collect(DataLoader(shapes, 16, shuffle=True, seed=7, transform=AUGMENT, workers=0))
    b = collect(DataLoader(shapes, 16, shuffle=True, seed=7, transform=AUGMENT, workers=3))
    for (xa, ya), (xb, yb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)
    c = collect(DataLoader(shapes, 16, shuffle=True, seed=8, transform=AUGMENT))
    assert not np.array_equal(a[0][1], c[0][1])


def test_each_pass_is_a_new_epoch_and_a_resumed_run_sees_the_same_batches(shapes):
    loader = DataLoader(shapes, 25, shuffle=True, seed=1, transform=AUGMENT)
    epoch0, epoch1 = collect(loader), collect(loader)
    assert loader.epoch == 2 and not np.array_equal(epoch0[0][1], epoch1[0][1])
    assert sorted(np.concatenate([y for _, y in epoch1])) == sorted(shapes.labels)
    resumed = DataLoader(shapes, 25, shuffle=True, seed=1, transform=AUGMENT)
    resumed.set_epoch(1)
    for (xa, ya), (xb, yb) in zip(epoch1, collect(resumed), strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_the_per_image_path_gives_the_same_batches_for_deterministic_transforms(shapes):
    t = T.Compose([T.CenterCrop(24), T.ToFloat()])
    fast = collect(DataLoader(shapes, 30, transform=t))
    slow = collect(DataLoader(PerImage(shapes), 30, transform=t))
    for (xa, ya), (xb, yb) in zip(fast, slow, strict=True):
        np.testing.assert_array_equal(xa, xb)
        np.testing.assert_array_equal(ya, yb)


def test_early_break_and_interrupt_leave_no_threads(shapes):
    before = threading.active_count()
    for _ in DataLoader(shapes, 4, transform=AUGMENT, workers=3):
        break
    with pytest.raises(KeyboardInterrupt):
        for _ in DataLoader(PerImage(shapes), 4, transform=AUGMENT, workers=3):
            raise KeyboardInterrupt
    deadline = time.time() + 5
    while threading.active_count() > before and time.time() < deadline:
        time.sleep(0.01)
    assert threading.active_count() == before


def test_a_transform_that_does_not_end_in_float_chw_is_named(shapes):
    with pytest.raises(TypeError, match="end it with transforms.ToFloat"):
        next(iter(DataLoader(shapes, 4, transform=T.RandomFlip(), workers=0)))


@pytest.mark.parametrize("kwargs, message", [({"batch_size": 0}, "batch_size"),
                                             ({"batch_size": 2, "workers": -1}, "workers")])
def test_bad_arguments(shapes, kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(shapes, **kwargs)


class _CifarSized:
    """50,000 random uint8 32x32 images held in memory: CIFAR-10's size, for timing."""

    images = np.random.default_rng(0).integers(0, 256, (50_000, 32, 32, 3), dtype=np.uint8)
    labels = np.zeros(50_000, np.int64)

    def __len__(self):
        return len(self.labels)


if __name__ == "__main__":
    pipelines = {
        "crop 24 + flip": T.Compose([T.RandomCrop(24), T.RandomFlip(), T.ToFloat()]),
        "pca + mean + pad-4 crop 32 + flip": T.Compose([
            T.PCALighting.imagenet(), T.MeanSubtract([0.5, 0.5, 0.5]), T.RandomCrop(32, padding=4),
            T.RandomFlip(), T.ToFloat()]),
    }
    for name, transform in pipelines.items():
        for workers in (0, 2):
            loader = DataLoader(_CifarSized(), 128, shuffle=True, transform=transform, workers=workers)
            wall, cpu = time.perf_counter(), time.process_time()
            n = sum(len(labels) for _, labels in loader)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"{name:34s} workers={workers}: {n / wall:7.0f} images/s, {n / cpu:7.0f} per CPU-second")
