"""Writing files safely: every file tinyalex writes (checkpoints, metrics, figures, stubs, caches) goes through here.

A file is written to a temporary file beside it, flushed to disk, and only then renamed over the
target, so a crash or a full disk mid-write leaves the previous file (or none) instead of half of one.
"""
import contextlib
import os
import tempfile


@contextlib.contextmanager
def atomic_write(path, mode="wb"):
    """Open a temporary file next to ``path``; on success fsync and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was. Text modes write
    UTF-8 whatever the locale. Every file the program writes goes through here.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private (0600); a run's files are as open() makes them
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def _umask():
    """The process's file-creation mask (reading it means setting it, so it is set back at once)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
