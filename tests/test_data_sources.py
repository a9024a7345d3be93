"""data.load of an archive: unpacked into the cache once per archive, and a changed or different
archive of the same name is unpacked afresh instead of reading the old files."""
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
    assert list((tmp_path / "cache").iterdir()) == []
