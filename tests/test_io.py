"""Safe file writing: a file appears whole or not at all, with the permissions open() would give it."""
import os

import pytest

from tinyalex import checkpoint, io


def test_a_write_that_fails_leaves_the_previous_file_and_no_temporary(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("old")
    with pytest.raises(OSError, match="no space"):
        with io.atomic_write(path, "w") as f:
            f.write("the first half of the new")
            raise OSError("no space left on device")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["metrics.json"]


def test_text_is_utf8_whatever_the_locale_and_folders_are_made(tmp_path):
    path = tmp_path / "new" / "folder" / "notes.txt"
    with io.atomic_write(path, "w") as f:
        f.write("Krizhevsky, Sutskever, Hinton — 2012")
    assert path.read_bytes() == "Krizhevsky, Sutskever, Hinton — 2012".encode("utf-8")


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600)])
def test_the_file_gets_the_umasks_permissions_not_mkstemps_private_ones(tmp_path, umask, mode):
    previous = os.umask(umask)
    try:
        with io.atomic_write(tmp_path / "f.bin") as f:
            f.write(b"\x00")
        assert os.umask(umask) == umask  # reading the mask set it back as it was
    finally:
        os.umask(previous)
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == mode


def test_the_checkpoint_module_still_offers_atomic_write():
    assert checkpoint.atomic_write is io.atomic_write
