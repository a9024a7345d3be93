"""``load(name_or_path)``: the one place that turns a data set's name or location into a data set."""
import os
import shutil
from pathlib import Path

from .cifar10 import FOLDER, CIFAR10
from .download import cache_dir, extract
from .folder import ImageFolder, class_folders
from .synthetic import SyntheticShapes

SYNTHETIC_SIZES = {True: 10_000, False: 2_000}
_MARKER = ".source"  # in an unpacked archive's cache folder: which archive it holds (see _unpacked)


def load(name_or_path, train=True, download=False):
    """The training (or test) split of a data set named on the command line.

    - ``"synthetic"``: ``SyntheticShapes`` (10,000 training / 2,000 test images), drawn offline
    - ``"cifar10"``: ``CIFAR10`` from the cache (``$TINYALEX_DATA`` or ``~/.cache/tinyalex``);
      ``download=True`` fetches it there first
    - a folder holding ``cifar-10-batches-py/`` (or that folder itself): ``CIFAR10`` read from it
    - a folder with ``train/`` and ``test/`` class folders: ``ImageFolder`` of one of them
      (decoded once, then kept in memory), labelled by the class folders of ``train/``
    - a ``.tar.gz`` / ``.tgz`` / ``.tar`` of such a folder: unpacked (safely) into the cache, then read
    """
    if name_or_path == "synthetic":
        return SyntheticShapes(SYNTHETIC_SIZES[bool(train)], seed=0, train=train)
    if name_or_path == "cifar10":
        return CIFAR10(train=train, download=download)
    path = Path(name_or_path)
    if not path.exists():
        raise FileNotFoundError(f"load: {name_or_path} does not exist (and is not 'synthetic' or 'cifar10')")
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        return load(_single_folder(_unpacked(path)), train=train)
    if (path / FOLDER).is_dir():
        return CIFAR10(path, train=train)
    if path.name == FOLDER and path.is_dir():
        return CIFAR10(path.parent, train=train)
    split = path / ("train" if train else "test")
    if split.is_dir():  # the labels of both splits index the training split's classes
        classes = class_folders(path / "train") if not train and (path / "train").is_dir() else None
        return ImageFolder(split, cache=True, classes=classes)
    raise ValueError(f"load: do not know how to read {name_or_path!r}: expected 'synthetic', 'cifar10', "
                     f"a folder with {FOLDER}/ or with train/ and test/ class folders, or a .tar.gz of one")


def _unpacked(archive):
    """The cache folder ``<cache>/<archive name>/`` holding ``archive`` unpacked, unpacked only when needed.

    The folder records which archive it came from (path, size and modification time, in a marker
    file), so the same archive is unpacked once, while a different or updated archive under the
    same name is unpacked afresh rather than served the old files. A content hash would be surer,
    but it would read the whole archive (a data set's worth of images) on every load.
    """
    stat = archive.stat()
    source = f"{archive.resolve()}\n{stat.st_size} {stat.st_mtime_ns}\n"
    target = cache_dir() / archive.name.split(".")[0]
    marker = target / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == source:
        return target
    part = target.with_name(target.name + ".part")
    shutil.rmtree(part, ignore_errors=True)  # what an interrupted unpack left
    try:
        extract(archive, part)
    except BaseException:  # a damaged archive leaves nothing behind in the cache
        shutil.rmtree(part, ignore_errors=True)
        raise
    # The marker goes in before the rename, so it appears with the whole folder or not at all; the
    # old folder loses its marker first, so a crash while deleting it leaves nothing a load trusts.
    (part / _MARKER).write_text(source, encoding="utf-8")
    if target.is_dir():
        marker.unlink(missing_ok=True)
        shutil.rmtree(target)
    os.replace(part, target)
    return target


def _single_folder(path):
    """An archive that unpacks to one folder (``cifar10/train ...``) is read from inside it."""
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name != "train" else path
