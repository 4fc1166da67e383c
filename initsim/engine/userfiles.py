"""Opening a file a user named, whatever it turns out to be: a folder, a pipe with no writer (which
would block a plain open forever), a device, a socket, or a path with a NUL in it."""

from __future__ import annotations

import os
import stat
from pathlib import Path

_FILE_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a pipe (FIFO)"), (stat.S_ISCHR, "a device"),
               (stat.S_ISBLK, "a device"), (stat.S_ISSOCK, "a socket"))


class UnreadableFile(Exception):
    """Why a file cannot be read, in words: "cannot read: a folder, not a checkpoint file"."""


def open_regular(path: str | Path, purpose: str) -> int:
    """A descriptor of ``path`` open for reading, if it is a regular file (also through a link); the
    caller closes it. Opened without blocking and checked after opening, so what is checked is what
    is read. ``purpose`` says what the file should have been ("a checkpoint file") when it is not a
    file. Any problem raises UnreadableFile."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
                     | getattr(os, "O_BINARY", 0))
    except (OSError, ValueError) as exc:  # ValueError: a NUL in the path
        raise UnreadableFile(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as exc:
        os.close(fd)
        raise UnreadableFile(f"cannot read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        kind = next((name for is_kind, name in _FILE_KINDS if is_kind(mode)), "not a regular file")
        raise UnreadableFile(f"cannot read: {kind}, not {purpose}")
    return fd
