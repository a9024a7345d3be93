"""SyntheticShapes: deterministic, balanced, fast, and learnable but not trivial for a linear model.

Run as a script for the full-size baselines quoted in data/README.md:
    python tests/test_data_synthetic.py
"""
import time

import numpy as np
import pytest

from tinyalex import data


def pixels(ds):
    """(N, 3072) float32 pixels on [0, 1], and the labels."""
    images, labels = ds.images_labels()
    return images.reshape(len(images), -1).astype(np.float32) / 255, labels


def random_conv_features(ds, filters=128, seed=0):
    """A fixed, untrained conv layer: |5x5 random filters| max-pooled over a 4x4 grid -> (N, 16 * filters).

    Only the classifier on top is trained, so it tells whether position-tolerant local features
    (what a CNN's first layers learn) separate the classes where raw pixels do not.
    """
    images, labels = ds.images_labels()
    W = np.random.default_rng(seed).normal(size=(75, filters)).astype(np.float32)
    out = []
    for x in np.array_split(images, max(1, len(images) // 500)):
        x = x.astype(np.float32) / 255
        x -= x.mean(axis=(1, 2), keepdims=True)  # per-image colour offset: the class is not in it
        n, side = len(x), x.shape[1] - 4
        patches = np.stack([x[:, i:i + side, j:j + side] for i in range(5) for j in range(5)], axis=3)
        r = np.abs(patches.reshape(n, side * side, 75) @ W).reshape(n, 4, side // 4, 4, side // 4, filters)
        out.append(r.max(axis=(2, 4)).reshape(n, -1))
    return np.concatenate(out), labels


def softmax_regression(train, test, steps=300, weight_decay=1e-3):
    """Test accuracy of a linear classifier on (features, labels) pairs: features standardised with the
    training set's statistics, full-batch gradient descent with momentum 0.9.

    The step is 1 / L with L the largest eigenvalue of the features' covariance (found by power
    iteration): the cross-entropy's curvature is at most L / 2, so the descent cannot diverge.
    """
    (a, ytr), (b, yte) = train, test
    mean, std = a.mean(axis=0), a.std(axis=0) + 1e-6
    a, b = (a - mean) / std, (b - mean) / std
    u = np.ones(a.shape[1], np.float32)
    for _ in range(30):
        u = a.T @ (a @ u) / len(a)
        L = np.linalg.norm(u)
        u /= L
    W, v = np.zeros((a.shape[1], 10), np.float32), np.zeros((a.shape[1], 10), np.float32)
    onehot = np.eye(10, dtype=np.float32)[ytr]
    for _ in range(steps):
        z = a @ W
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        v = 0.9 * v - (a.T @ (p - onehot) / len(a) + weight_decay * W) / L
        W += v
    return float(((b @ W).argmax(axis=1) == yte).mean())


def nearest_neighbour(train, test):
    """Test accuracy of 1-nearest-neighbour (Euclidean) on (features, labels) pairs."""
    (a, ytr), (b, yte) = train, test
    d = (b * b).sum(1)[:, None] - 2 * b @ a.T + (a * a).sum(1)[None]
    return float((ytr[d.argmin(axis=1)] == yte).mean())


def test_images_labels_and_classes():
    ds = data.SyntheticShapes(50, seed=1)
    assert ds.images.shape == (50, 32, 32, 3) and ds.images.dtype == np.uint8
    assert ds.labels.dtype == np.int64 and len(ds.classes) == 10
    np.testing.assert_array_equal(np.bincount(ds.labels), [5] * 10)  # balanced
    image, label = ds[3]
    assert image.shape == (32, 32, 3) and isinstance(label, int)
    assert data.SyntheticShapes(4, size=16).images.shape == (4, 16, 16, 3)


def test_deterministic_from_seed_and_split():
    a, b = data.SyntheticShapes(30, seed=2), data.SyntheticShapes(30, seed=2)
    np.testing.assert_array_equal(a.images, b.images)
    assert not np.array_equal(a.images, data.SyntheticShapes(30, seed=3).images)
    assert not np.array_equal(a.images, data.SyntheticShapes(30, seed=2, train=False).images)


def test_colour_does_not_give_the_class_away():
    train, test = data.SyntheticShapes(1000), data.SyntheticShapes(1000, train=False)
    centroids = np.stack([train.images[train.labels == c].mean(axis=(0, 1, 2)) for c in range(10)])
    colours = test.images.mean(axis=(1, 2))
    guess = ((colours[:, None] - centroids[None]) ** 2).sum(-1).argmin(axis=1)
    assert (guess == test.labels).mean() < 0.2  # nearest class-mean colour: about chance (0.1)


def test_generation_is_fast():
    start = time.process_time()  # CPU time: what the generator costs, however busy the machine is
    data.SyntheticShapes(1000)
    assert time.process_time() - start < 1.5  # about 0.3 s; 10,000 images in about 3 s


def test_load_synthetic_sizes():
    assert data.load("synthetic", train=False).images.shape == (2000, 32, 32, 3)


@pytest.mark.slow
def test_a_linear_model_on_the_pixels_does_little_better_than_chance():
    train, test = data.SyntheticShapes(800, seed=0), data.SyntheticShapes(400, seed=0, train=False)
    assert softmax_regression(pixels(train), pixels(test), steps=60) < 0.3  # chance is 0.1; 10,000 images: 0.13


@pytest.mark.parametrize("bad", [dict(n=0), dict(n=2.5), dict(n=4, size=4)])
def test_bad_arguments(bad):
    with pytest.raises(ValueError, match="SyntheticShapes"):
        data.SyntheticShapes(**bad)


if __name__ == "__main__":
    train, test = data.load("synthetic"), data.load("synthetic", train=False)
    print(f"{len(train)} train / {len(test)} test images")
    print(f"softmax regression on pixels: {softmax_regression(pixels(train), pixels(test)):.3f}")
    print(f"1-nearest neighbour on pixels: {nearest_neighbour(pixels(train), pixels(test)):.3f}")
    features = random_conv_features(train), random_conv_features(test)
    print(f"softmax regression on random conv features: {softmax_regression(*features):.3f}")
