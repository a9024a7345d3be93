"""``load(name_or_path)``: the one place that turns a data set's name or location into a data set."""
import os
from pathlib import Path

from .cifar10 import FOLDER, CIFAR10
from .download import cache_dir, extract
from .folder import ImageFolder
from .synthetic import SyntheticShapes

SYNTHETIC_SIZES = {True: 10_000, False: 2_000}


def load(name_or_path, train=True, download=False):
    """The training (or test) split of a data set named on the command line.

    - ``"synthetic"``: ``SyntheticShapes`` (10,000 training / 2,000 test images), drawn offline
    - ``"cifar10"``: ``CIFAR10`` from the cache (``$TINYALEX_DATA`` or ``~/.cache/tinyalex``);
      ``download=True`` fetches it there first
    - a folder holding ``cifar-10-batches-py/`` (or that folder itself): ``CIFAR10`` read from it
    - a folder with ``train/`` and ``test/`` class folders: ``ImageFolder`` of one of them
      (decoded once, then kept in memory)
    - a ``.tar.gz`` / ``.tgz`` / ``.tar`` of such a folder: unpacked (safely) into the cache, then read
    """
    if name_or_path == "synthetic":
        return SyntheticShapes(SYNTHETIC_SIZES[bool(train)], seed=0, train=train)
    if name_or_path == "cifar10":
        return CIFAR10(train=train, download=download)
    path = Path(name_or_path)
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        stem = path.name.split(".")[0]
        target = cache_dir() / stem
        if not target.is_dir():  # unpacked beside it, then renamed: a crash leaves no half folder here
            os.replace(extract(path, target.with_name(stem + ".part")), target)
        return load(_single_folder(target), train=train)
    if (path / FOLDER).is_dir():
        return CIFAR10(path, train=train)
    if path.name == FOLDER and path.is_dir():
        return CIFAR10(path.parent, train=train)
    split = path / ("train" if train else "test")
    if split.is_dir():
        return ImageFolder(split, cache=True)
    raise ValueError(f"load: do not know how to read {name_or_path!r}: expected 'synthetic', 'cifar10', "
                     f"a folder with {FOLDER}/ or with train/ and test/ class folders, or a .tar.gz of one")


def _single_folder(path):
    """An archive that unpacks to one folder (``cifar10/train ...``) is read from inside it."""
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name != "train" else path
