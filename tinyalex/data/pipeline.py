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
"""
import numpy as np

from . import transforms as T

PIXEL_SCALES = {"unit": 1.0, "paper": 255.0}
MEANS = ("image", "colour", None)


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
