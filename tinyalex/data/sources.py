"""``load(name_or_path)``: the one place that turns a data set's name or location into a data set."""
import os
import shutil
import tempfile
from pathlib import Path

from .cifar10 import FOLDER, CIFAR10
from .download import cache_dir, extract, sha256_of
from .folder import ImageFolder, class_folders
from .synthetic import SyntheticShapes

SYNTHETIC_SIZES = {True: 10_000, False: 2_000}
_MARKER = ".tinyalex-unpacked"  # in an unpacked archive's cache folder: the archive's hash (see _unpacked)


def load(name_or_path, train=True, download=False):
    """The training (or test) split of a data set named on the command line.

    - ``"synthetic"``: ``SyntheticShapes`` (10,000 training / 2,000 test images), drawn offline
    - ``"cifar10"``: ``CIFAR10`` from the cache (``$TINYALEX_DATA`` or ``~/.cache/tinyalex``);
      ``download=True`` fetches it there first
    - a folder holding ``cifar-10-batches-py/`` (or that folder itself): ``CIFAR10`` read from it
    - a folder with ``train/`` and ``test/`` class folders: ``ImageFolder`` of one of them
      (decoded once, then kept in memory), labelled by the class folders of ``train/``
    - a ``.tar.gz`` / ``.tgz`` / ``.tar`` of such a folder: unpacked (safely) into ``<cache>/unpacked/``, then read
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
    """The cache folder ``<cache>/unpacked/<name>-<hash>/`` holding ``archive`` unpacked, made when missing.

    The folder is named by the archive's name and the first 16 hex digits of its SHA-256, and holds
    a marker with the whole hash: the same archive is unpacked once, a different or updated archive
    of the same name gets a folder of its own, and no folder of the user's (``<cache>/flowers``, the
    downloaded ``cifar-10-batches-py``, the cache itself) is ever touched. A folder at that place
    without the marker is not tinyalex's and is left alone, with an error.
    """
    digest = sha256_of(archive)
    home = cache_dir() / "unpacked"
    target = home / f"{archive.name.split('.')[0] or 'archive'}-{digest[:16]}"
    record = f"sha256 {digest}\n"
    if not _holds(target, record):
        home.mkdir(parents=True, exist_ok=True)
        part = Path(tempfile.mkdtemp(dir=home, prefix=f".{target.name}.part-"))
        try:
            extract(archive, part)
            (part / _MARKER).write_text(record, encoding="utf-8")  # before the rename: whole or nothing
            os.rename(part, target)  # refuses a non-empty target, so nothing of anyone's is replaced
        except OSError:
            if not _holds(target, record):  # not another process that unpacked the same archive first
                raise
        finally:
            shutil.rmtree(part, ignore_errors=True)
    return target


def _holds(folder, record):
    """Whether ``folder`` is tinyalex's unpacked copy of the archive ``record`` names; an existing folder
    without that marker raises FileExistsError, as it is someone else's."""
    if not os.path.lexists(folder):
        return False
    marker = folder / _MARKER
    if marker.is_file() and marker.read_text(encoding="utf-8") == record:
        return True
    raise FileExistsError(f"load: {folder} exists but is not tinyalex's unpacked copy of this archive "
                          f"(its {_MARKER} marker is missing or names another); it is left as it is: "
                          "move it away to unpack the archive there")


def _single_folder(path):
    """An archive that unpacks to one folder (``cifar10/train ...``) is read from inside it."""
    entries = [e for e in path.iterdir() if not e.name.startswith(".")]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() and entries[0].name != "train" else path
