"""How images become network inputs: the pixel scale and the mean they lose, by name.

AlexNet, section 2: "We did not pre-process the images in any other way, except for subtracting the
mean activity over the training set from each pixel." The paper does not say on which scale; its
code does. cuda-convnet's CIFAR-10 data provider (``convdata.py``) hands the network the raw bytes
minus the training set's mean image, ``x - mean`` with x in [0, 255] and no other scaling, and the
paper's constants were chosen for that scale: LRN's divisor ``(k + alpha * sum a^2)^beta`` with
k = 2, alpha = 1e-4 reacts to activations of tens, not of the [0, 1] scale's tenths (lesson 04).

``pixels``:
    - ``"unit"``: x / 255 in [0, 1], minus the mean on that scale (tinyalex's default, PyTorch's habit)
    - ``"paper"``: x in [0, 255] minus the mean, as cuda-convnet fed the paper's networks
``mean``:
    - ``"image"``: the mean image, per pixel and channel (AlexNet section 2, cuda-convnet)
    - ``"colour"``: the mean RGB value (VGG section 2.1; any image size)
    - ``None``: nothing subtracted

A run's input is described by one JSON-able dict, its *spec* (``describe``), which a checkpoint
keeps: the transforms of training (``train_transform``) and of testing (``test_transform``, also
``evaluate`` and ``predict`` on a saved run) are built from it, so both always agree.
"""
import numpy as np

from . import transforms as T
from .memory import Arrays

PIXEL_SCALES = {"unit": 1.0, "paper": 255.0}
MEANS = ("image", "colour", None)
AUGMENTS = ("crop", "flip", "pca")
PAD = 4  # the random crops are windows of the image padded by 4 pixels (the modern CIFAR habit)


class SizeError(ValueError):
    """A data set whose images the crops cannot take as they are: of several sizes, or not square."""


def preprocess(train_images, pixels="unit", mean="image"):
    """The first transform of every image: ``MeanSubtract`` of ``train_images`` (N, H, W, C) uint8 on
    the scale ``pixels`` names (see the module docstring). Float32 HWC out; crops, flips and
    ``ToFloat`` (which only transposes float images) come after it."""
    if pixels not in PIXEL_SCALES:
        raise ValueError(f"preprocess: pixels must be one of {', '.join(PIXEL_SCALES)}, got {pixels!r}")
    if mean not in MEANS:
        raise ValueError(f"preprocess: mean must be 'image', 'colour' or None, got {mean!r}")
    if mean is None:
        return T.MeanSubtract(np.zeros(train_images.shape[-1], np.float32), scale=PIXEL_SCALES[pixels])
    fitted = T.MeanSubtract.fit(train_images, per_pixel=mean == "image")
    return T.MeanSubtract(fitted.mean, scale=PIXEL_SCALES[pixels])


def sized(dataset, size=None):
    """``dataset`` as ``Arrays`` in memory, every image square and of one size.

    ``size`` S: each image's shorter side rescaled to S, then its central S x S patch (AlexNet,
    section 2: "we first rescaled the image such that the shorter side was of length 256, and then
    cropped out the central 256 x 256 patch"). Without ``size`` the images must already be square
    and of one size; else SizeError names the sizes found.
    """
    if size is not None:
        images = np.stack([T.resize_shorter_center_crop(dataset[i][0], size) for i in range(len(dataset))])
        return Arrays(images, np.asarray(dataset.labels), dataset.classes)
    if hasattr(dataset, "images"):  # in memory already
        images = dataset.images
    else:  # an image folder, decoded one file at a time
        decoded = [dataset[i][0] for i in range(len(dataset))]
        shapes = sorted({im.shape[:2] for im in decoded})
        if len(shapes) > 1:
            shown = ", ".join(f"{h}x{w}" for h, w in shapes[:3]) + (" ..." if len(shapes) > 3 else "")
            raise SizeError(f"its images differ in size ({len(shapes)} sizes: {shown})")
        images = np.stack(decoded)
    if images.shape[1] != images.shape[2]:
        raise SizeError(f"its images are {images.shape[1]}x{images.shape[2]}; the crops and test views need "
                        "square images")
    return Arrays(images, np.asarray(dataset.labels), dataset.classes)


def hold_out(dataset, n, seed=0):
    """(training, validation): ``n`` images of ``dataset`` (``Arrays``) drawn at random from ``seed``
    for validation, the others for training; the same ``seed`` always holds out the same images.

    The papers report on ImageNet's validation set because its test labels are withheld; on a set
    whose test labels are at hand, choosing a checkpoint or a learning-rate cut on the test images
    would make the test error an optimistic estimate, so they are chosen on images held out of training.
    """
    if not 0 < n < len(dataset):
        raise ValueError(f"hold_out: n must be between 1 and {len(dataset) - 1} (the training images less one), "
                         f"got {n}")
    order = np.random.default_rng(seed).permutation(len(dataset))
    keep, val = np.sort(order[n:]), np.sort(order[:n])
    return tuple(Arrays(dataset.images[i], dataset.labels[i], dataset.classes) for i in (keep, val))


def describe(train_images, pixels="unit", mean="colour", augment=("crop", "flip"), resize=None):
    """The spec of a run's input: the named options with the statistics of ``train_images`` (N, S, S, C).

    ``{"pixels", "mean" (the fitted mean, as a list), "augment", "image_size" S, "pad" (of the
    crops, 0 without "crop"), "resize" (``sized``'s size, or None)}``: JSON, for a checkpoint.
    """
    unknown = [a for a in augment if a not in AUGMENTS]
    if unknown:
        raise ValueError(f"describe: unknown augmentation {', '.join(unknown)}; expected some of {', '.join(AUGMENTS)}")
    return {"pixels": pixels, "mean": preprocess(train_images, pixels, mean).mean.tolist(), "augment": list(augment),
            "image_size": int(train_images.shape[1]), "pad": PAD if "crop" in augment else 0, "resize": resize}


def _first(spec):
    # checkpoints written before the pixel scale was named were on the unit scale
    return T.MeanSubtract(spec["mean"], scale=PIXEL_SCALES[spec.get("pixels", "unit")])


def train_transform(spec, train_images):
    """The training augmentations the spec names (AlexNet, section 4.1), then the mean, then CHW floats.

    pca: the colour augmentation along the principal components of ``train_images``' RGB pixels
    (first, on the [0, 1] scale it is fitted on); crop: "image translations", S x S windows of the
    image padded by ``spec["pad"]`` pixels; flip: "horizontal reflections" with probability 1/2.
    """
    augment = spec["augment"]
    steps = [T.PCALighting.fit(train_images)] if "pca" in augment else []
    steps.append(_first(spec))
    if "crop" in augment:
        steps.append(T.RandomCrop(spec["image_size"], padding=spec["pad"]))
    if "flip" in augment:
        steps.append(T.RandomFlip())
    return T.Compose(steps + [T.ToFloat()])


def test_transform(spec, pad=0):
    """Image -> network input: the spec's mean subtracted on its pixel scale, CHW float.

    ``pad``: zero-pad the border (after the mean subtraction, as the training crops are), so that the
    10 test views of ``evaluate --ten-crop`` are corner and centre windows of the padded image.
    """
    steps = [_first(spec)]
    if pad:
        steps.append(lambda image, rng=None: np.pad(image, ((pad, pad), (pad, pad), (0, 0))))
    return T.Compose(steps + [T.ToFloat()])
