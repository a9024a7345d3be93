"""Fetching and unpacking archives safely: the cache directory, checksums, atomic writes, tar checks.

Everything is written atomically (a temporary file or folder in the destination directory, then a
rename), so an interrupted download or extraction never leaves a half-written archive or a
half-filled data folder that a later run would trust.
"""
import gzip
import hashlib
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path

from ..io import atomic_write

TIMEOUT_S = 15  # offline or blocked: fail within seconds, not minutes
_CHUNK = 1 << 20


def cache_dir():
    """Where downloads and extracted data sets go: ``$TINYALEX_DATA``, else ``~/.cache/tinyalex``."""
    return Path(os.environ.get("TINYALEX_DATA") or Path.home() / ".cache" / "tinyalex").expanduser()


def download(url, path, md5, sha256=None, by_hand=""):
    """Fetch ``url`` into ``path``, checking its MD5 (and SHA-256 when given); return ``path``.

    The bytes stream into a temporary file beside ``path`` with a progress bar and are hashed on the
    way; only a file whose checksums match is renamed to ``path``. A network failure raises
    ConnectionError at once, with ``by_hand`` (where to put the files yourself) in the message.
    """
    import urllib.request  # with tqdm, imported when a download starts: `import tinyalex` stays quick
    from tqdm import tqdm
    hashes = {"MD5": (hashlib.md5(), md5), "SHA-256": (hashlib.sha256(), sha256)}
    with atomic_write(path) as out:
        try:
            response = urllib.request.urlopen(url, timeout=TIMEOUT_S)
        except OSError as e:  # urllib's URLError is one
            raise ConnectionError(f"download: cannot fetch {url} ({e}). {by_hand}") from None
        with response, tqdm(total=int(response.headers.get("Content-Length") or 0) or None,
                            unit="B", unit_scale=True, desc=Path(path).name, leave=False) as bar:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                for h, _ in hashes.values():
                    h.update(chunk)
                bar.update(len(chunk))
        for name, (h, expected) in hashes.items():
            if expected is not None and h.hexdigest() != expected.lower():
                raise ValueError(f"download: {url} has {name} {h.hexdigest()}, expected {expected}; "
                                 "the file is corrupt or not the published one, so it was deleted")
    return Path(path)


def _check_member(member, archive):
    """Refuse what a data archive never needs: absolute paths, '..', links, devices."""
    parts = Path(member.name).parts
    if member.name.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
        raise ValueError(f"extract: {archive} holds {member.name!r}, which points outside the "
                         "destination folder; refusing to extract it")
    if not (member.isfile() or member.isdir()):
        raise ValueError(f"extract: {archive} holds {member.name!r}, which is a link or special file; "
                         "refusing to extract it")


def _unpack(archive, folder):
    """Check every member of the tar ``archive`` and unpack it into ``folder``; damage is a ValueError."""
    try:
        with tarfile.open(archive) as tar:
            members = tar.getmembers()
            for m in members:
                _check_member(m, archive)
            if hasattr(tarfile, "data_filter"):
                tar.extractall(folder, members=members, filter="data")
            else:  # Python < 3.11.4: the checks above are the guard
                tar.extractall(folder, members=members)
            # a gzip/xz stream checks its checksum only at its end, which tar's end marker comes before
            while tar.fileobj.read(_CHUNK):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError) as e:
        reason = " ".join(str(e).split())  # tarfile lists, a line each, every compression it tried
        raise ValueError(f"extract: {archive} is damaged or not a tar archive ({type(e).__name__}: {reason})") from None


def extract(archive, dest):
    """Unpack the tar archive ``archive`` into the folder ``dest``; return ``dest``.

    Every member is checked first (no path traversal, no links), and the tar "data" filter guards
    the extraction itself. The files land in a temporary folder inside ``dest``; each top-level
    entry is renamed into place only when the whole archive has been unpacked. Nothing already in
    ``dest`` is replaced: when a top-level name of the archive exists there, FileExistsError is
    raised before anything is moved (it may be the user's own folder of that name).
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest, prefix=".extract."))
    try:
        _unpack(archive, tmp)
        entries = sorted(tmp.iterdir())
        taken = [e.name for e in entries if os.path.lexists(dest / e.name)]
        if taken:
            raise FileExistsError(f"extract: {dest} already holds {', '.join(taken)}, which {archive} would "
                                  "replace; tinyalex leaves what it did not make alone: move it away first")
        for entry in entries:
            os.rename(entry, dest / entry.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def sha256_of(path):
    """The SHA-256 of the file ``path``, as hex (read in chunks: about a second per GB)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()
