"""Image folders ``root/<class>/<image>``: the ImageNet training layout, decoded with Pillow."""
import warnings
from pathlib import Path

import numpy as np

EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".tif", ".tiff", ".webp"}


def decode(path):
    """One image file -> uint8 (H, W, 3) RGB; a file Pillow cannot read raises ValueError naming it.

    16-bit grey images (PNG, TIFF) are scaled to 8 bits: Pillow's own conversion clips them at 255,
    which turns all but the darkest pixels white.
    """
    from PIL import Image  # imported when an image is read: `import tinyalex` stays quick
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I"):  # "I;16...", or "I" as Pillow < 10 opens a 16-bit PNG
                return np.repeat(_grey16_to_8(np.asarray(im))[..., None], 3, axis=2)
            if im.mode == "F":
                raise ValueError("its pixels are floating-point numbers; save it with 8 or 16 bits per channel")
            return np.asarray(im.convert("RGB"))
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError(f"cannot decode image {path}: {e}") from None


def _grey16_to_8(values):
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ValueError(f"its grey values ({values.min()} to {values.max()}) do not fit 16 bits")
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)  # rounded: 65535 -> 255


def class_folders(root):
    """The class names of an image folder: its sub-folders' names, sorted (hidden ones left out)."""
    return sorted(d.name for d in Path(root).iterdir() if d.is_dir() and not d.name.startswith("."))


class ImageFolder:
    """Images sorted into one sub-folder per class, as ImageNet's training set ships.

    ``ImageFolder(root, skip_bad=False, cache=False, classes=None)``: the class names are the sub-folder
    names in sorted order (index = label), or ``classes`` when given (a test split takes its training
    split's, so that a class missing from one split does not shift the labels of the others; a
    sub-folder not among them is a ValueError); files with an image extension are taken in sorted
    order. Images are decoded when asked for (``ds[i]`` -> (uint8 (H, W, 3) RGB, int label)); a file
    that does not decode raises ValueError naming it. ``skip_bad=True`` decodes every file once up
    front and leaves out those that fail, with one warning that counts them. ``cache=True`` keeps each
    decoded image in memory after its first use (CIFAR-sized sets fit easily; ImageNet does not).
    """

    def __init__(self, root, skip_bad=False, cache=False, classes=None):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"ImageFolder: {root} is not a folder")
        self.root = root
        found = class_folders(root)
        self.classes = found if classes is None else list(classes)
        unknown = sorted(set(found) - set(self.classes))
        if unknown:
            raise ValueError(f"ImageFolder: {root} has class folders that are not among the classes given (a test "
                             f"split's are its training split's): {', '.join(unknown[:5])}"
                             f"{' ...' if len(unknown) > 5 else ''}")
        self.files = [(f, label) for label, c in enumerate(self.classes) if c in found
                      for f in sorted((root / c).iterdir()) if f.suffix.lower() in EXTENSIONS and f.is_file()]
        if not self.files:
            raise ValueError(f"ImageFolder: found no images under {root} (expected {root}/<class>/*.jpg|png)")
        decoded = self._drop_bad() if skip_bad else [None] * len(self.files)
        self._cache = decoded if cache else None
        self.labels = np.array([label for _, label in self.files], dtype=np.int64)

    def _drop_bad(self):
        """Decode every file; keep those that decode and return their images."""
        good, bad = [], []
        for f, label in self.files:
            try:
                good.append(((f, label), decode(f)))
            except ValueError:
                bad.append(f)
        if bad:
            shown = ", ".join(str(f) for f in bad[:3]) + (" ..." if len(bad) > 3 else "")
            warnings.warn(f"ImageFolder: skipped {len(bad)} file(s) that do not decode: {shown}", stacklevel=3)
        if not good:
            raise ValueError(f"ImageFolder: none of the {len(bad)} image files under {self.root} decodes")
        self.files = [item for item, _ in good]
        return [image for _, image in good]

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        path, label = self.files[i]
        if self._cache is None:
            return decode(path), label
        if self._cache[i] is None:
            self._cache[i] = decode(path)
        return self._cache[i], label

    def images_labels(self):
        """All images as one uint8 (N, H, W, 3) array (they must share a size) and the labels."""
        images = [self[i][0] for i in range(len(self))]
        sizes = {im.shape for im in images}
        if len(sizes) > 1:
            raise ValueError(f"ImageFolder: images under {self.root} differ in size ({sorted(sizes)[:3]} ...); "
                             "resize them (transforms.resize_shorter_center_crop) before stacking")
        return np.stack(images), self.labels

    def __repr__(self):
        return f"ImageFolder({str(self.root)!r}, {len(self)} images, {len(self.classes)} classes)"
