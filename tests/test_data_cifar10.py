"""CIFAR-10: the official Python layout read safely, and the download checked end to end on a fixture."""
import functools
import hashlib
import http.server
import io
import os
import pickle
import socket
import tarfile
import threading

import numpy as np
import pytest

from tinyalex import data
from tinyalex.data import cifar10, download

NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def write_batches(folder, n=4, seed=0):
    """A tiny cifar-10-batches-py in the official format: pickled dicts with bytes keys and a
    uint8 (n, 3072) array of red, green and blue planes. Returns the HWC images and labels written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in cifar10.TRAIN_BATCHES + cifar10.TEST_BATCHES:
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": name.encode(), b"labels": labels,
                 b"data": images.transpose(0, 3, 1, 2).reshape(n, 3072),
                 b"filenames": [f"{i}.png".encode() for i in range(n)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        written[name] = images, labels
    meta = {b"label_names": [c.encode() for c in NAMES], b"num_cases_per_batch": n, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def test_reads_the_official_layout_as_hwc_rgb(tmp_path):
    written = write_batches(tmp_path / cifar10.FOLDER)
    train, test = data.CIFAR10(tmp_path), data.CIFAR10(tmp_path, train=False)
    assert len(train) == 5 * 4 and len(test) == 4
    assert train.images.shape == (20, 32, 32, 3) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int64 and train.classes == NAMES
    np.testing.assert_array_equal(train.images[4:8], written["data_batch_2"][0])
    np.testing.assert_array_equal(test.images, written["test_batch"][0])
    image, label = test[1]
    assert isinstance(label, int) and label == written["test_batch"][1][1]


class _Payload:
    def __reduce__(self):
        return (os.system, ("echo owned",))


def test_a_pickle_carrying_code_is_refused(tmp_path):
    folder = tmp_path / cifar10.FOLDER
    write_batches(folder)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": _Payload(), b"labels": []}))
    with pytest.raises(ValueError, match=r"refusing to load .*test_batch.*system"):
        data.CIFAR10(tmp_path, train=False)


def test_missing_files_say_where_to_put_them(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"cifar-10-batches-py.*download=True.*data_batch_1"):
        data.CIFAR10(tmp_path)


def test_wrong_shapes_are_named(tmp_path):
    folder = tmp_path / cifar10.FOLDER
    write_batches(folder)
    bad = {b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}
    (folder / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(ValueError, match=r"test_batch holds data uint8 \(2, 100\)"):
        data.CIFAR10(tmp_path, train=False)


# ---------------------------------------------------------------- download
def make_archive(path, tmp_path, extra=None):
    """A .tar.gz like the official one (cifar-10-batches-py/ at the top); returns (md5, sha256)."""
    write_batches(tmp_path / "src" / cifar10.FOLDER)
    with tarfile.open(path, "w:gz") as tar:
        tar.add(tmp_path / "src" / cifar10.FOLDER, arcname=cifar10.FOLDER)
        if extra is not None:
            info = tarfile.TarInfo(extra)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    blob = path.read_bytes()
    return hashlib.md5(blob).hexdigest(), hashlib.sha256(blob).hexdigest()


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server (127.0.0.1 only) serving tmp_path/www; yields its base URL."""
    (tmp_path / "www").mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(tmp_path / "www")))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join(5)


def test_download_checks_and_unpacks_over_http(tmp_path, server):
    md5, sha256 = make_archive(tmp_path / "www" / "c.tar.gz", tmp_path)
    root = tmp_path / "cache"
    folder = cifar10.download_cifar10(root, url=f"{server}/c.tar.gz", md5=md5, sha256=sha256)
    assert folder == root / cifar10.FOLDER
    assert sorted(p.name for p in root.iterdir()) == [cifar10.FOLDER]  # no archive or temp files left
    assert len(data.CIFAR10(root, train=False)) == 4


def test_download_true_uses_the_cache_dir(tmp_path, monkeypatch):
    md5, sha256 = make_archive(tmp_path / "c.tar.gz", tmp_path)
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "cache"))
    monkeypatch.setattr(cifar10, "download_cifar10", functools.partial(
        cifar10.download_cifar10, url=(tmp_path / "c.tar.gz").as_uri(), md5=md5, sha256=sha256))
    assert len(data.CIFAR10(download=True)) == 20
    assert (tmp_path / "cache" / cifar10.FOLDER / "data_batch_5").is_file()


@pytest.mark.parametrize("which", ["MD5", "SHA-256"])
def test_a_corrupted_archive_is_refused_and_deleted(tmp_path, server, which):
    md5, sha256 = make_archive(tmp_path / "www" / "c.tar.gz", tmp_path)
    wrong = "0" * 32 if which == "MD5" else "0" * 64
    md5, sha256 = (wrong, sha256) if which == "MD5" else (md5, wrong)
    root = tmp_path / "cache"
    with pytest.raises(ValueError, match=f"has {which} .* expected {wrong}"):
        cifar10.download_cifar10(root, url=f"{server}/c.tar.gz", md5=md5, sha256=sha256)
    assert list(root.iterdir()) == []


def test_download_never_replaces_an_existing_cifar_folder(tmp_path, server):
    md5, sha256 = make_archive(tmp_path / "www" / "c.tar.gz", tmp_path)
    root = tmp_path / "cache"
    (root / cifar10.FOLDER).mkdir(parents=True)
    (root / cifar10.FOLDER / "notes.txt").write_bytes(b"my own copy, half done")
    with pytest.raises(FileExistsError, match=f"already holds {cifar10.FOLDER}"):
        cifar10.download_cifar10(root, url=f"{server}/c.tar.gz", md5=md5, sha256=sha256)
    assert [p.name for p in (root / cifar10.FOLDER).iterdir()] == ["notes.txt"]
    assert (root / cifar10.FOLDER / "notes.txt").read_bytes() == b"my own copy, half done"


def test_an_archive_put_in_the_cache_by_hand_is_checked_used_and_kept(tmp_path):
    root = tmp_path / "cache"
    root.mkdir()
    md5, sha256 = make_archive(root / "cifar-10-python.tar.gz", tmp_path)
    offline = "http://127.0.0.1:9/never-fetched"
    assert cifar10.download_cifar10(root, url=offline, md5=md5, sha256=sha256) == root / cifar10.FOLDER
    assert (root / "cifar-10-python.tar.gz").is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "cifar-10-python.tar.gz").write_bytes(b"not it")
    with pytest.raises(ValueError, match="not the published archive"):
        cifar10.download_cifar10(other, url=offline, md5=md5, sha256=sha256)
    assert (other / "cifar-10-python.tar.gz").read_bytes() == b"not it"


def test_the_official_checksums_are_pinned():
    assert cifar10.MD5 == "c58f30108f718f92721af3b95e74349a"
    assert cifar10.URL.startswith("https://") and len(cifar10.SHA256) == 64


@pytest.mark.parametrize("member", ["../escape.txt", "/tmp/absolute.txt"])
def test_path_traversal_is_refused(tmp_path, member):
    make_archive(tmp_path / "c.tar.gz", tmp_path, extra=member)
    with pytest.raises(ValueError, match="outside the destination"):
        download.extract(tmp_path / "c.tar.gz", tmp_path / "out")
    assert not (tmp_path / "escape.txt").exists()
    assert list((tmp_path / "out").iterdir()) == []


@pytest.mark.parametrize("damage", ["truncated", "a flipped byte", "not an archive"])
def test_a_damaged_archive_is_refused_in_one_line(tmp_path, damage):
    make_archive(tmp_path / "c.tar.gz", tmp_path)
    packed = bytearray((tmp_path / "c.tar.gz").read_bytes())
    if damage == "truncated":
        packed = packed[:len(packed) // 2]
    elif damage == "a flipped byte":  # tar stops at its end marker, before gzip's checksum is read
        packed[len(packed) // 2] ^= 0xFF
    else:
        packed = b"hello"
    (tmp_path / "c.tar.gz").write_bytes(packed)
    with pytest.raises(ValueError, match=r"extract: .*c\.tar\.gz is damaged or not a tar archive") as e:
        download.extract(tmp_path / "c.tar.gz", tmp_path / "out")
    assert "\n" not in str(e.value) and list((tmp_path / "out").iterdir()) == []


def test_links_are_refused(tmp_path):
    with tarfile.open(tmp_path / "l.tar", "w") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/link")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(info)
    with pytest.raises(ValueError, match="link or special file"):
        download.extract(tmp_path / "l.tar", tmp_path / "out")


def test_offline_fails_at_once_saying_where_to_put_the_files(tmp_path):
    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    root = tmp_path / "cache"
    with pytest.raises(ConnectionError, match=r"cannot fetch .*unpack it so that .*data_batch_1"):
        cifar10.download_cifar10(root, url=f"http://127.0.0.1:{port}/c.tar.gz")
    assert list(root.iterdir()) == []


def test_load_finds_cifar_folders(tmp_path):
    write_batches(tmp_path / cifar10.FOLDER)
    assert len(data.load(tmp_path)) == 20
    assert len(data.load(tmp_path / cifar10.FOLDER, train=False)) == 4
