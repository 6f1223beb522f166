"""File tools every layer uses: write a file atomically (``atomic_write``), flush a path to the disk
(``fsync_path``), hash a file (``file_sha256``). Part of the foundation: it imports nothing of the
package and no third-party library.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

# The process's umask, read once (os.umask can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def fsync_path(path: Path) -> None:
    """Flush a file's (or a folder's: its entries, e.g. a rename) data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, flush the file to the disk, then rename it onto ``path`` and flush the
    folder, so that ``path`` is never a half-written file, not even after a power cut or a crash of the
    machine (a checkpoint cut short would otherwise be what a resumed run finds); remove the temp file
    on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600 files; give the usual permissions
        fsync_path(Path(tmp))  # the contents on the disk before the rename publishes them
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)  # the rename itself


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def rewrite_marked_block(path: Path, name: str, body: str, writer: str) -> None:
    """Replace what stands between ``<!-- name:begin -->`` and ``<!-- name:end -->`` in a Markdown page
    with ``body`` (plus a line saying ``writer`` wrote it), atomically; the page must hold each marker once."""
    begin, end = f"<!-- {name}:begin -->", f"<!-- {name}:end -->"
    text = Path(path).read_text()
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"error: {path} needs one {begin} and one {end}")
    head, rest = text.split(begin)
    tail = rest.split(end)[1]
    atomic_write(Path(path), lambda t: t.write_text(
        f"{head}{begin}\n<!-- written by {writer}: do not edit -->\n{body}\n{end}{tail}"))
