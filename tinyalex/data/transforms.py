"""The papers' preprocessing and augmentation, one small piece each.

Conventions (read these before composing):

- Images are HWC arrays, RGB, as the data sets hand them out; a batch is (N, H, W, C).
- Pixel scale: uint8 images are on [0, 255]; float images are on [0, 1] (``ToFloat`` divides by 255).
  Colour statistics (``MeanSubtract``, ``PCALighting``) always live on the [0, 1] scale: fitting them
  on [0, 255] pixels and applying them to [0, 1] pixels is the classic factor-of-255 bug.
- Every transform is called ``t(image, rng)`` with a NumPy Generator (deterministic ones ignore it),
  so one seed repeats an epoch's augmentation exactly; without one, random transforms draw from the
  engine's generator (``tinyalex.manual_seed``).
- Geometric transforms (crops, flips, resizing) keep the dtype; photometric ones return float32 [0, 1].
- Transforms with a ``batch(images, rng)`` method do a whole (N, H, W, C) batch in one vectorised
  step (one fancy-index gather for crop and flip); ``DataLoader`` uses it when every transform of a
  ``Compose`` has one. Calling such a transform on one image runs its batch code on a batch of one.
- ``ToFloat`` is the last step: float32 CHW on [0, 1] (the layout the network takes).
"""
from pathlib import Path

import numpy as np

from .. import backend
from ..io import atomic_write


class Compose:
    """Apply transforms in order: ``Compose([RandomCrop(24), RandomFlip(), ToFloat()])``."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, image, rng=None):
        for t in self.transforms:
            image = t(image, rng)
        return image

    @property
    def batchable(self):
        """Whether every transform, and every one inside a nested ``Compose``, takes whole batches."""
        return all(takes_batches(t) for t in self.transforms)

    def batch(self, images, rng=None):
        if not self.batchable:
            slow = [type(t).__name__ for t in self.transforms if not takes_batches(t)]
            raise TypeError(f"Compose.batch: {', '.join(slow)} work(s) one image at a time")
        for t in self.transforms:
            images = t.batch(images, rng)
        return images

    def __repr__(self):
        return f"Compose({self.transforms!r})"


def takes_batches(transform):
    """Whether ``transform`` works on whole (N, H, W, C) batches (else the loader calls it per image)."""
    return getattr(transform, "batchable", hasattr(transform, "batch"))


def _generator(rng):
    return backend.default_generator.for_device("cpu") if rng is None else rng


class _Batched:
    """A transform written once, for batches; one image is a batch of one."""

    def __call__(self, image, rng=None):
        return self.batch(image[None], rng)[0]


def unit_float(images):
    """uint8 [0, 255] -> float32 [0, 1]; float input is taken to be on [0, 1] already."""
    if images.dtype == np.uint8:
        return images.astype(np.float32) / np.float32(255)
    if images.dtype.kind != "f":
        raise TypeError(f"transforms: expected uint8 or float images, got {images.dtype}")
    return images.astype(np.float32, copy=False)


class ToFloat(_Batched):
    """uint8 HWC on [0, 255] -> float32 CHW on [0, 1] (x / 255); float input is only transposed."""

    def batch(self, images, rng=None):
        return np.ascontiguousarray(unit_float(images).transpose(0, 3, 1, 2))

    def __repr__(self):
        return "ToFloat()"


# ---------------------------------------------------------------- geometry
def _size(op, size):
    h, w = (size, size) if isinstance(size, int) else tuple(size)
    if h < 1 or w < 1:
        raise ValueError(f"{op}: size must be positive, got {size!r}")
    return h, w


def _check_fits(op, H, W, h, w):
    if h > H or w > W:
        raise ValueError(f"{op}: cannot cut a {h}x{w} patch from a {H}x{W} image")


def crop_flip(images, top, left, flip, h, w):
    """Windows (top[n], left[n], h, w) of each image of an (N, H, W, C) batch, mirrored where flip[n].

    One fancy-index gather for the whole batch: row and column indices per image, the columns read
    backwards for the mirrored ones.
    """
    rows = top[:, None] + np.arange(h)                              # (N, h)
    cols = left[:, None] + np.arange(w)                             # (N, w)
    cols = np.where(flip[:, None], cols[:, ::-1], cols)
    n = np.arange(len(images))[:, None, None]
    return images[n, rows[:, :, None], cols[:, None, :]]


def center_crop(image, size):
    """The central ``size`` patch of an (H, W, C) image (or of each image of a batch)."""
    h, w = _size("center_crop", size)
    H, W = image.shape[-3:-1]
    _check_fits("center_crop", H, W, h, w)
    top, left = (H - h) // 2, (W - w) // 2
    return image[..., top:top + h, left:left + w, :]


class CenterCrop(_Batched):
    """``center_crop`` as a transform, for test-time pipelines."""

    def __init__(self, size):
        self.size = _size("CenterCrop", size)

    def batch(self, images, rng=None):
        return center_crop(images, self.size)

    def __repr__(self):
        return f"CenterCrop({self.size})"


class RandomCrop(_Batched):
    """A random ``size`` patch of each image, optionally after padding the border.

    AlexNet, section 4.1: "extracting random 224 x 224 patches (and their horizontal reflections)
    from the 256 x 256 images and training our network on these extracted patches". For CIFAR-10
    the paper's own code cut 24 x 24 patches from the 32 x 32 images; the modern habit pads by 4
    and cuts 32 x 32 (``RandomCrop(32, padding=4)``; ``padding_mode="reflect"`` mirrors the border
    instead of adding black).
    """

    def __init__(self, size, padding=0, padding_mode="zeros"):
        if padding_mode not in ("zeros", "reflect"):
            raise ValueError(f"RandomCrop: padding_mode must be 'zeros' or 'reflect', got {padding_mode!r}")
        if not isinstance(padding, int) or padding < 0:
            raise ValueError(f"RandomCrop: padding must be an int >= 0, got {padding!r}")
        self.size, self.padding, self.padding_mode = _size("RandomCrop", size), padding, padding_mode

    def batch(self, images, rng=None):
        p = self.padding
        if p:
            mode = "constant" if self.padding_mode == "zeros" else "reflect"
            images = np.pad(images, ((0, 0), (p, p), (p, p), (0, 0)), mode=mode)
        h, w = self.size
        N, H, W = images.shape[:3]
        _check_fits("RandomCrop", H, W, h, w)
        rng = _generator(rng)
        top, left = rng.integers(0, H - h + 1, N), rng.integers(0, W - w + 1, N)
        return crop_flip(images, top, left, np.zeros(N, bool), h, w)

    def __repr__(self):
        return f"RandomCrop({self.size}, padding={self.padding}, padding_mode={self.padding_mode!r})"


class RandomFlip(_Batched):
    """Mirror each image left-right with probability ``p``.

    AlexNet, section 4.1: "generating image translations and horizontal reflections"; the CIFAR-10
    recipe reflects half of the patches.
    """

    def __init__(self, p=0.5):
        if not 0 <= p <= 1:
            raise ValueError(f"RandomFlip: p must be in [0, 1], got {p!r}")
        self.p = p

    def batch(self, images, rng=None):
        N, H, W = images.shape[:3]
        zeros = np.zeros(N, np.int64)
        return crop_flip(images, zeros, zeros, _generator(rng).random(N) < self.p, H, W)

    def __repr__(self):
        return f"RandomFlip(p={self.p})"


def ten_crop(image, size, channels_last=True):
    """The 10 test views: 4 corner patches, the centre patch, then the same 5 mirrored.

    AlexNet, section 4.1: "At test time, the network makes a prediction by extracting five 224 x 224
    patches (the four corner patches and the center patch) as well as their horizontal reflections
    (hence ten patches in all), and averaging the predictions made by the network's softmax layer
    on the ten patches." (The paper's CIFAR-10 code does the same with 24 x 24 patches of 32 x 32.)

    image: (..., H, W, C), or (..., C, H, W) with ``channels_last=False`` -- one image or a batch,
    NumPy or CuPy. Returns (10, ..., size, size, C) (or (10, ..., C, size, size)), in the order
    top-left, top-right, bottom-left, bottom-right, centre, and their mirrors. Average the softmax
    outputs over the first axis.
    """
    h, w = _size("ten_crop", size)
    H, W = image.shape[-3:-1] if channels_last else image.shape[-2:]
    _check_fits("ten_crop", H, W, h, w)
    channel = (slice(None),) if channels_last else ()
    corners = [(0, 0), (0, W - w), (H - h, 0), (H - h, W - w), ((H - h) // 2, (W - w) // 2)]
    views = [image[(..., slice(t, t + h), slice(l, l + w)) + channel] for t, l in corners]
    xp = backend.xp(image)
    return xp.stack(views + [xp.flip(v, axis=-1 - len(channel)) for v in views])


# ---------------------------------------------------------------- rescaling
def resize_shorter(image, S):
    """Rescale a uint8 (H, W, C) image (bilinear) so that its shorter side is ``S``."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise TypeError(f"resize_shorter: expected a uint8 (H, W, C) image, got {image.dtype} {image.shape}")
    from PIL import Image  # imported when an image is resized: `import tinyalex` stays quick
    H, W = image.shape[:2]
    scale = S / min(H, W)
    size = (max(S, round(W * scale)), max(S, round(H * scale)))  # PIL wants (width, height)
    return np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))


def resize_shorter_center_crop(image, S=256):
    """AlexNet's ImageNet preprocessing: shorter side to S, then the central S x S patch.

    AlexNet, section 2: "Given a rectangular image, we first rescaled the image such that the
    shorter side was of length 256, and then cropped out the central 256 x 256 patch from the
    resulting image."
    """
    return center_crop(resize_shorter(image, S), S)


class ScaleJitter:
    """VGG's scale jittering: rescale each training image so its shorter side is S ~ U[Smin, Smax].

    VGG, section 3.1: "each training image is individually rescaled by randomly sampling S from a
    certain range [Smin, Smax] (we used Smin = 256 and Smax = 512)", then a fixed-size 224 x 224
    crop is taken (follow with ``RandomCrop(224)``). Works one image at a time (sizes differ).
    """

    def __init__(self, smin=256, smax=512):
        if not 1 <= smin <= smax:
            raise ValueError(f"ScaleJitter: need 1 <= smin <= smax, got {smin}, {smax}")
        self.smin, self.smax = smin, smax

    def __call__(self, image, rng=None):
        return resize_shorter(image, int(_generator(rng).integers(self.smin, self.smax + 1)))

    def __repr__(self):
        return f"ScaleJitter({self.smin}, {self.smax})"


def multi_scale(image, Q=(256, 384, 512)):
    """VGG's multi-scale testing: the image rescaled to each test scale Q (shorter side), in a list.

    VGG, section 4.2: the model is "run over several rescaled versions of a test image
    (corresponding to different values of Q), followed by averaging the resulting class
    posteriors"; for a model trained with S in [Smin, Smax] it uses Q = {Smin, (Smin + Smax)/2, Smax}.
    Run the network on each (densely, or on its ``ten_crop``) and average the softmax outputs.
    """
    return [resize_shorter(image, q) for q in Q]


# ---------------------------------------------------------------- colour
class MeanSubtract(_Batched):
    """Subtract the training set's mean image (per pixel) or mean colour (per channel).

    AlexNet, section 2: "We did not pre-process the images in any other way, except for subtracting
    the mean activity over the training set from each pixel." (VGG subtracts the mean RGB value.)
    ``mean`` is float32 on the [0, 1] scale, shape (H, W, C) or (C,); the output is float32 HWC,
    ``(x / 255 - mean) * scale``: ``scale=1`` keeps the [0, 1] scale, ``scale=255`` gives raw pixel
    values minus the mean, the scale cuda-convnet fed the paper's networks (and for which LRN's
    k = 2, alpha = 1e-4 were chosen; see ``data.pipeline``). A per-pixel mean needs images of its
    size: subtract it before cropping.
    """

    def __init__(self, mean, scale=1.0):
        self.mean = np.asarray(mean, np.float32)
        self.scale = float(scale)
        if self.mean.ndim not in (1, 3):
            raise ValueError(f"MeanSubtract: mean must be (C,) or (H, W, C), got shape {self.mean.shape}")
        if not self.scale > 0 or not np.isfinite(self.scale):
            raise ValueError(f"MeanSubtract: scale must be a positive number, got {scale!r}")

    @classmethod
    def fit(cls, images, per_pixel=True, cache=None):
        """Mean of a training set (N, H, W, C) on the [0, 1] scale; ``cache``: .npy file to reuse."""
        if cache is not None and Path(cache).is_file():
            return cls(np.load(cache, allow_pickle=False))
        axes = (0,) if per_pixel else (0, 1, 2)
        total = sum(unit_float(images[i:i + 4096]).sum(axis=axes, dtype=np.float64)
                    for i in range(0, len(images), 4096))
        mean = total / (len(images) if per_pixel else images[..., 0].size)
        if cache is not None:
            with atomic_write(cache) as f:
                np.save(f, mean.astype(np.float32), allow_pickle=False)
        return cls(mean)

    def batch(self, images, rng=None):
        if self.mean.ndim == 3 and images.shape[1:] != self.mean.shape:
            raise ValueError(f"MeanSubtract: mean image is {self.mean.shape}, images are {images.shape[1:]}")
        centred = unit_float(images) - self.mean
        return centred if self.scale == 1 else centred * np.float32(self.scale)

    def __repr__(self):
        return f"MeanSubtract(mean of shape {self.mean.shape}" + (f", scale {self.scale:g})" if self.scale != 1 else ")")


class PCALighting(_Batched):
    """AlexNet's colour augmentation along the principal components of the training set's RGB pixels.

    AlexNet, section 4.1: "To each training image, we add multiples of the found principal
    components, with magnitudes proportional to the corresponding eigenvalues times a random
    variable drawn from a Gaussian with mean zero and standard deviation 0.1":

        I_xy += [p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T,   a_i ~ N(0, 0.1), drawn once per image per call

    with p_i, l_i the eigenvectors (columns of ``eigvecs``) and eigenvalues of the 3 x 3 covariance
    of RGB pixel values **on the [0, 1] scale**. Output: float32 HWC on the [0, 1] scale (unclipped,
    as in the paper).
    """

    def __init__(self, eigvals, eigvecs, std=0.1):
        self.eigvals = np.asarray(eigvals, np.float32)
        self.eigvecs = np.asarray(eigvecs, np.float32)
        if self.eigvals.shape != (3,) or self.eigvecs.shape != (3, 3):
            raise ValueError(f"PCALighting: expected eigvals (3,) and eigvecs (3, 3), got "
                             f"{self.eigvals.shape} and {self.eigvecs.shape}")
        self.std = std

    @classmethod
    def imagenet(cls, std=0.1):
        """The values widely used for ImageNet (fb.resnet.torch, torchvision recipes), [0, 1] pixels."""
        return cls([0.2175, 0.0188, 0.0045],
                   [[-0.5675, 0.7192, 0.4009],
                    [-0.5808, -0.0045, -0.8140],
                    [-0.5836, -0.6948, 0.4203]], std)

    @classmethod
    def fit(cls, images, std=0.1):
        """Eigen-decomposition of the RGB covariance of all pixels of (N, H, W, 3) training images."""
        n, s, ss = 0, np.zeros(3), np.zeros((3, 3))
        for i in range(0, len(images), 4096):  # sums in float64, a chunk at a time
            x = unit_float(images[i:i + 4096]).reshape(-1, 3).astype(np.float64)
            n, s, ss = n + len(x), s + x.sum(axis=0), ss + x.T @ x
        mean = s / n
        eigvals, eigvecs = np.linalg.eigh(ss / n - np.outer(mean, mean))
        order = np.argsort(eigvals)[::-1]
        return cls(eigvals[order], eigvecs[:, order], std)

    def batch(self, images, rng=None):
        alpha = _generator(rng).normal(0, self.std, (len(images), 3)).astype(np.float32)
        shift = (alpha * self.eigvals) @ self.eigvecs.T                   # (N, 3): sum_i a_i l_i p_i
        return unit_float(images) + shift[:, None, None, :]

    def __repr__(self):
        return f"PCALighting(eigvals={self.eigvals.tolist()}, std={self.std})"
