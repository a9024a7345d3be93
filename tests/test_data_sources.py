"""data.load of an archive: unpacked into the cache once per archive, a changed or different archive
of the same name is unpacked afresh instead of reading the old files, and nothing tinyalex did not
make (a user's folder of the archive's name, the downloaded CIFAR-10, the cache itself) is touched."""
import os
import tarfile

import numpy as np
import pytest
from PIL import Image

from tinyalex import data
from tinyalex.data import sources


def make_archive(path, per_class):
    """A .tar.gz of ``set/{train,test}/cat`` with ``per_class`` images in each split; returns path."""
    root = path.parent / f"{path.name}.src"
    for split in ("train", "test"):
        (root / split / "cat").mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(root / split / "cat" / f"{i}.png")
    with tarfile.open(path, "w:gz") as tar:
        tar.add(root, arcname="set")
    return path


@pytest.fixture
def unpacks(tmp_path, monkeypatch):
    """The cache in tmp_path, and a list that records every archive ``load`` unpacks."""
    monkeypatch.setenv("TINYALEX_DATA", str(tmp_path / "cache"))
    calls = []

    def counting_extract(archive, dest):
        calls.append(archive)
        return extract(archive, dest)

    extract = sources.extract
    monkeypatch.setattr(sources, "extract", counting_extract)
    return calls


def test_the_same_archive_is_unpacked_once_and_another_of_the_same_name_afresh(tmp_path, unpacks):
    first, second = make_archive(tmp_path / "a" / "set.tar.gz", 1), make_archive(tmp_path / "b" / "set.tar.gz", 3)
    assert len(data.load(first)) == 1 and len(data.load(first, train=False)) == 1
    assert unpacks == [first]
    assert len(data.load(second)) == 3 and unpacks == [first, second]
    assert len(data.load(first)) == 1  # back to the first: its files again, not the second's


def test_an_archive_replaced_in_place_is_unpacked_afresh(tmp_path, unpacks):
    path = make_archive(tmp_path / "set.tar.gz", 1)
    assert len(data.load(path)) == 1
    os.replace(make_archive(tmp_path / "new" / "set.tar.gz", 2), path)  # an updated download, same name
    assert len(data.load(path)) == 2 and len(unpacks) == 2


def test_an_interrupted_unpack_of_a_changed_archive_leaves_nothing_that_a_later_load_trusts(
        tmp_path, unpacks, monkeypatch):
    path = make_archive(tmp_path / "set.tar.gz", 1)
    assert len(data.load(path)) == 1
    os.replace(make_archive(tmp_path / "new" / "set.tar.gz", 2), path)

    def killed_halfway(archive, dest):
        (dest / "set" / "train" / "cat").mkdir(parents=True)
        raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(sources, "extract", killed_halfway)
        with pytest.raises(KeyboardInterrupt):
            data.load(path)
    assert len(data.load(path)) == 2


def test_a_damaged_archive_leaves_nothing_in_the_cache(tmp_path, unpacks):
    path = make_archive(tmp_path / "set.tar.gz", 1)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="set.tar.gz is damaged"):
        data.load(path)
    assert [p for p in (tmp_path / "cache").rglob("*") if not p.is_dir()] == []


def tree(folder):
    """Every file under ``folder`` (relative path -> bytes) and every folder (-> None): to compare byte for byte."""
    return {p.relative_to(folder).as_posix(): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


def user_folder(path):
    """A folder of the user's own, with notes and an image, as they would keep it under the cache."""
    (path / "train" / "cat").mkdir(parents=True)
    (path / "notes.txt").write_text("my labels, do not lose\n")
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(path / "train" / "cat" / "mine.png")
    return path


@pytest.mark.parametrize("name, mine", [
    ("flowers.tar.gz", "flowers"),                          # the user's data/flowers beside the cache
    ("cifar-10-batches-py.tar.gz", "cifar-10-batches-py"),  # the downloaded CIFAR-10
    ("set.tar.gz", "unpacked/set"),                         # a folder inside tinyalex's own one, but not its
])
def test_an_archive_never_deletes_a_folder_of_the_same_name(tmp_path, unpacks, name, mine):
    cache = tmp_path / "cache"
    before = tree(user_folder(cache / mine))
    assert len(data.load(make_archive(tmp_path / name, 2))) == 2
    assert tree(cache / mine) == before


def test_an_archive_named_only_by_its_extension_leaves_the_cache_alone(tmp_path, unpacks):
    cache = tmp_path / "cache"
    before = tree(user_folder(cache / "flowers"))
    archive = make_archive(tmp_path / "set.tar.gz", 1).rename(tmp_path / ".tar.gz")
    assert len(data.load(archive)) == 1
    assert tree(cache / "flowers") == before
    assert [p.name.split("-")[0] for p in (cache / "unpacked").iterdir()] == ["archive"]


def test_a_folder_where_the_unpacked_copy_would_go_but_without_its_marker_is_refused_and_kept(tmp_path, unpacks):
    archive = make_archive(tmp_path / "set.tar.gz", 1)
    target = tmp_path / "cache" / "unpacked" / f"set-{sources.sha256_of(archive)[:16]}"
    before = tree(user_folder(target))
    with pytest.raises(FileExistsError, match=f"{target.name} exists but is not tinyalex's"):
        data.load(archive)
    assert tree(target) == before and unpacks == []


def test_the_unpacked_copy_is_named_by_the_archive_content(tmp_path, unpacks):
    archive = make_archive(tmp_path / "set.tar.gz", 1)
    data.load(archive)
    os.utime(archive, ns=(0, 0))  # touched, same bytes: the same copy, not a second unpack
    data.load(archive)
    assert unpacks == [archive]
