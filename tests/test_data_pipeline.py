"""The data pipeline: images brought to one size, a validation split held out, transforms from a spec."""
import json

import numpy as np
import pytest

from tinyalex import data
from tinyalex.data import pipeline


class Photos:
    """An image folder's interface: images of their own sizes, decoded one at a time."""

    classes = ["a", "b"]

    def __init__(self, sizes):
        rng = np.random.default_rng(0)
        self.photos = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in sizes]
        self.labels = np.arange(len(sizes)) % 2

    def __len__(self):
        return len(self.photos)

    def __getitem__(self, i):
        return self.photos[i], int(self.labels[i])


def test_sized_rescales_the_shorter_side_then_takes_the_centre():
    photos = Photos([(30, 40), (64, 50), (20, 20)])
    got = pipeline.sized(photos, 16)
    assert got.images.shape == (3, 16, 16, 3) and got.classes == ["a", "b"] and list(got.labels) == [0, 1, 0]
    expected = data.transforms.resize_shorter_center_crop(photos[1][0], 16)
    assert np.array_equal(got.images[1], expected)


@pytest.mark.parametrize("sizes, message", [
    ([(30, 40), (64, 50)], r"its images differ in size \(2 sizes: 30x40, 64x50\)"),
    ([(30, 40), (30, 40)], "its images are 30x40; the crops and test views need square images"),
])
def test_sized_without_a_size_names_what_is_wrong(sizes, message):
    with pytest.raises(pipeline.SizeError, match=message):
        pipeline.sized(Photos(sizes))


def test_hold_out_splits_the_training_images_into_two_disjoint_parts():
    shapes = data.SyntheticShapes(50)
    train, val = pipeline.hold_out(shapes, 5)
    assert len(train) == 45 and len(val) == 5
    rows = {image.tobytes() for image in shapes.images}
    assert {i.tobytes() for i in train.images} | {i.tobytes() for i in val.images} == rows
    assert not {i.tobytes() for i in train.images} & {i.tobytes() for i in val.images}
    assert np.array_equal(pipeline.hold_out(shapes, 5)[1].images, val.images)  # the same images every time
    with pytest.raises(ValueError, match="n must be between 1 and 49"):
        pipeline.hold_out(shapes, 50)


def test_a_spec_is_json_and_builds_the_same_test_transform_after_a_round_trip():
    images = data.SyntheticShapes(20).images
    spec = pipeline.describe(images, pixels="paper", mean="image", augment=("crop", "flip", "pca"))
    again = json.loads(json.dumps(spec))
    assert again["pad"] == pipeline.PAD and again["image_size"] == 32
    direct = pipeline.preprocess(images, pixels="paper", mean="image").batch(images[:2]).transpose(0, 3, 1, 2)
    assert np.allclose(pipeline.test_transform(again).batch(images[:2]), direct, atol=1e-4)
    train = pipeline.train_transform(again, images)
    assert [type(t).__name__ for t in train.transforms] == ["PCALighting", "MeanSubtract", "RandomCrop",
                                                             "RandomFlip", "ToFloat"]
    with pytest.raises(ValueError, match="unknown augmentation rotate"):
        pipeline.describe(images, augment=("rotate",))


def test_a_spec_from_before_the_pixel_scale_was_named_reads_as_unit():
    spec = pipeline.describe(data.SyntheticShapes(4).images)
    del spec["pixels"]
    assert pipeline.test_transform(spec).transforms[0].scale == 1.0
