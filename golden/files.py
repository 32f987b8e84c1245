"""Files and folders golden does not control: whatever stands at a record's or a
checkpoint's path, and the folders it writes into.

A file is read only if it is a regular file, and only up to a size, both checked before
a byte is read: a FIFO would block its reader for ever, and a link to ``/dev/zero`` or a
huge file would exhaust its memory. A folder is proved writable by writing in it, before
the work whose results go there starts.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from pathlib import Path


class UnusableFile(ValueError):
    """Why a file was not read, in a few words."""


def _checked(info: os.stat_result, limit: int) -> None:
    if not stat.S_ISREG(info.st_mode):
        raise UnusableFile("not a regular file")
    if info.st_size > limit:
        raise UnusableFile(f"{info.st_size:,} bytes, over the limit of {limit:,}")


def read_bounded(path: Path, limit: int) -> bytes:
    """The bytes of the regular file ``path`` of at most ``limit`` bytes; UnusableFile
    otherwise, OSError where it cannot be read.

    The path is looked at before it is opened (a device is never opened), opened without
    blocking, and looked at again through the open file, in case it was swapped
    between.
    """
    _checked(os.stat(path), limit)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with open(descriptor, "rb") as stream:
        _checked(os.fstat(descriptor), limit)
        data = stream.read(limit + 1)
    if len(data) > limit:  # it grew since
        raise UnusableFile(f"over the limit of {limit:,} bytes")
    return data


def prove_writable(folder: Path) -> None:
    """Make ``folder`` (and its parents) if needed and write and remove a file in it;
    OSError where that fails (read-only, under a regular file, not a folder, ...)."""
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    probe = folder / f".write-test.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    probe.write_bytes(b"")
    probe.unlink()
