"""The file store (``TOUCAN_STORE="file:///path"``): cachelib's ``FileSystemCache``, read faster.

Several workers on one host share it: every read goes to the file, every time
(a logout written by one worker is what the next request in any worker reads;
nothing is kept in a process). Writes, expiry, pruning and the file format are
cachelib's own, untouched: a file is 4 bytes of expiry (``struct "I"``, 0 = never)
then one pickle, and cachelib writes it to a temporary file then renames it, so
a reader sees a whole old file or a whole new one.

What changes is how a file is read, on every request's path (the login record,
the cached tokens): cachelib opens a buffered file object inside a context
manager and unpickles from the stream, which reads it in several small system
calls. :meth:`FileStore.get` reads the whole file in one unbuffered ``read`` and
unpickles the bytes: a third of the time for the same answer, with cachelib's
outcomes for everything else (a missing file is a miss; an unreadable,
truncated or unpicklable one is logged and a miss; an expired one is a miss).
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import time
from typing import Any

from cachelib import FileSystemCache

log = logging.getLogger("flask_toucan")

_EXPIRY = struct.Struct("I")  # cachelib's header: expiry as an unsigned int of seconds, 0 = never
#: One read takes a whole file up to this size (login records and tokens are far smaller);
#: a larger file is read on until its end.
_READ_SIZE = 1 << 16


#: File names remembered per store (cleared when full: a miss only hashes again).
_MAX_NAMES = 4096


class FileStore(FileSystemCache):
    """``FileSystemCache`` whose reads take one system call per file (see module doc)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        #: Key -> file name: a pure function of the key and this store's directory (a hash
        #: and a join per read otherwise). Names only, never a value: every read opens the file.
        #: (Set first: cachelib's own __init__ already names a file.)
        self._names: dict[str, str] = {}
        super().__init__(*args, **kwargs)

    def _get_filename(self, key: str) -> str:
        name = self._names.get(key) if type(key) is str else None
        if name is None:
            name = super()._get_filename(key)
            if len(self._names) >= _MAX_NAMES:
                self._names.clear()
            self._names[key] = name
        return name

    def get(self, key: str) -> Any:
        filename = self._get_filename(key)
        try:
            data = _read_all(filename)
        except FileNotFoundError:
            return None
        except PermissionError:
            # Some file systems refuse an open while another process replaces the file:
            # cachelib's own read retries with a back-off.
            return super().get(key)
        except OSError:
            log.warning("flask-toucan: could not read a file store entry", exc_info=True)
            return None
        if len(data) < _EXPIRY.size:
            log.warning("flask-toucan: a file store entry is truncated; treated as missing")
            return None
        (expires,) = _EXPIRY.unpack_from(data)
        if expires != 0 and expires < time.time():
            return None
        try:
            return pickle.loads(memoryview(data)[_EXPIRY.size :])  # noqa: S301 - files this app wrote (mode 0600)
        except (pickle.PickleError, EOFError, ValueError, IndexError):
            log.warning("flask-toucan: a file store entry could not be read; treated as missing")
            return None

    def get_many(self, *keys: str) -> list[Any]:
        return [self.get(key) for key in keys]


def _read_all(filename: str) -> bytes:
    """The whole file, in one ``read`` for any file under :data:`_READ_SIZE` bytes."""
    fd = os.open(filename, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        data = os.read(fd, _READ_SIZE)
        if len(data) < _READ_SIZE:
            return data
        chunks = [data]
        while chunk := os.read(fd, _READ_SIZE):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
