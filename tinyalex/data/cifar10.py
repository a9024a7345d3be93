"""CIFAR-10 in its official Python layout, read without running the pickles' code.

The official archive (``cifar-10-python.tar.gz``) unpacks to ``cifar-10-batches-py/`` with
``data_batch_1`` .. ``data_batch_5`` (50,000 training images), ``test_batch`` (10,000) and
``batches.meta`` (the class names). Each batch is a pickled dict: ``data`` a uint8 array (N, 3072),
each row a 32x32 image stored as its red, green and blue planes; ``labels`` a list of ints. A pickle
can run any code when loaded, so these are read with an unpickler that admits only what the batches
hold: plain containers and NumPy arrays.
"""
import codecs
import pickle
from pathlib import Path

import numpy as np

from .download import cache_dir, download, extract, sha256_of
from .memory import InMemory

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"  # published on the CIFAR-10 page
SHA256 = "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]

# The only callables a CIFAR-10 pickle names: NumPy's array rebuilder and the codec that Python 2
# pickles use for bytes. Looked up from NumPy itself, so the module path (numpy.core or numpy._core,
# depending on the version that wrote the file) does not matter.
_RECONSTRUCT = np.zeros(0).__reduce__()[0]
_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy._core.multiarray", "_reconstruct"): _RECONSTRUCT,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("_codecs", "encode"): codecs.encode,
}


class _BatchUnpickler(pickle.Unpickler):
    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # Python 2 str payloads, as NumPy's own loader does
        self.path = path

    def find_class(self, module, name):
        if (module, name) in _ALLOWED:
            return _ALLOWED[module, name]
        raise ValueError(f"CIFAR10: refusing to load {self.path}: it asks for {module}.{name}, which "
                         "a CIFAR-10 batch never contains (a pickle can run code; this one might)")


def load_batch(path):
    """One batch file -> dict with str keys (``data``, ``labels``, ...), read with the safe unpickler."""
    with open(path, "rb") as f:
        batch = _BatchUnpickler(f, path).load()
    if not isinstance(batch, dict):
        raise ValueError(f"CIFAR10: {path} holds a {type(batch).__name__}, expected a dict")
    return {_text(k): v for k, v in batch.items()}


def _text(name):
    return name.decode("latin1") if isinstance(name, bytes) else str(name)


def _by_hand(root):
    return (f"Without a network, download {URL} (MD5 {MD5}) yourself and unpack it so that "
            f"{Path(root) / FOLDER}/data_batch_1 exists, or point root= (on the command line: --data) at the "
            "folder holding it.")


def download_cifar10(root=None, url=URL, md5=MD5, sha256=SHA256):
    """Fetch, check and unpack the official archive into ``root`` (default: the cache); return its folder.

    An archive already at ``root/cifar-10-python.tar.gz`` (put there by hand, offline) is used when
    its SHA-256 is the published one, and kept; one that differs is refused, never overwritten. A
    downloaded archive is deleted once unpacked. An existing ``cifar-10-batches-py/`` is never
    replaced (``extract`` refuses): it may hold the user's own copy.
    """
    root = Path(root) if root is not None else cache_dir()
    archive = root / "cifar-10-python.tar.gz"
    fetched = not archive.exists()
    if fetched:
        download(url, archive, md5, sha256, by_hand=_by_hand(root))
    elif sha256 is not None and sha256_of(archive) != sha256:
        raise ValueError(f"CIFAR10: {archive} is not the published archive (its SHA-256 is not {sha256}); "
                         "it is left as it is: move it away to download the archive")
    extract(archive, root)
    if not (root / FOLDER).is_dir():
        raise ValueError(f"CIFAR10: the archive from {url} has no {FOLDER}/ folder")
    if fetched:
        archive.unlink()
    return root / FOLDER


class CIFAR10(InMemory):
    """The CIFAR-10 data set (Krizhevsky 2009), a small-image benchmark cited in AlexNet's section 1.

    ``CIFAR10(root=None, train=True, download=False)`` reads ``root/cifar-10-batches-py`` (root
    defaults to ``$TINYALEX_DATA`` or ``~/.cache/tinyalex``); ``download=True`` fetches the official
    archive first when it is missing. Everything is held in memory:

    - ``images``: uint8 (N, 32, 32, 3), HWC, RGB; ``labels``: int64 (N,); N = 50,000 or 10,000
    - ``classes``: the 10 names, index = label
    - ``ds[i]`` -> (image (32, 32, 3) uint8, label int)
    """

    def __init__(self, root=None, train=True, download=False):
        root = Path(root) if root is not None else cache_dir()
        folder = root / FOLDER
        names = TRAIN_BATCHES if train else TEST_BATCHES
        if download and not all((folder / n).is_file() for n in names + ["batches.meta"]):
            download_cifar10(root)
        missing = [n for n in names + ["batches.meta"] if not (folder / n).is_file()]
        if missing:
            raise FileNotFoundError(f"CIFAR10: {folder} lacks {', '.join(missing)}. "
                                    f"Pass download=True, or: {_by_hand(root)}")
        images, labels = [], []
        for n in names:
            batch = load_batch(folder / n)
            data = np.asarray(batch["data"])
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
                raise ValueError(f"CIFAR10: {folder / n} holds data {data.dtype} {data.shape}, "
                                 "expected uint8 (N, 3072)")
            if len(batch["labels"]) != len(data):
                raise ValueError(f"CIFAR10: {folder / n} has {len(data)} images but "
                                 f"{len(batch['labels'])} labels")
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # RGB planes -> HWC
            labels.append(np.asarray(batch["labels"], dtype=np.int64))
        self.images = np.ascontiguousarray(np.concatenate(images))
        self.labels = np.concatenate(labels)
        self.classes = [_text(c) for c in load_batch(folder / "batches.meta")["label_names"]]
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"CIFAR10: labels in {folder} run from {self.labels.min()} to {self.labels.max()}, "
                             f"outside the {len(self.classes)} classes of batches.meta")
        self.train = train

    def __repr__(self):
        return f"CIFAR10({'train' if self.train else 'test'}, {len(self)} images)"
