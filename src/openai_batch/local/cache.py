"""Derived files this machine can rebuild at any time, kept to skip slow start-up work.

Checking a request needs the SDK's request types compiled into validators, and counting tokens
needs the tokenizer's ranks parsed: about a second of start-up together, paid on every
make-batch-file. Both are pure functions of installed packages, so their results are kept in a
cache folder (`cache_dir`), in files named by a key of everything they depend on. A missing,
unreadable or damaged file is rebuilt; a cache that cannot be written is simply not kept.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from openai_batch import settings
from openai_batch.local import files

_FORMAT = b"openai-batch cache 1\n"


def key(*parts: str | bytes) -> str:
    """A short name for a cache entry: changes whenever any of `parts` does."""
    digest = hashlib.sha256(sys.version.encode())
    for part in parts:
        digest.update(part if isinstance(part, bytes) else part.encode())
        digest.update(b"\0")
    return digest.hexdigest()[:20]


def versions(*distributions: str) -> str:
    """The installed versions of `distributions`, for a key ("?" for one not installed)."""
    out = []
    for name in distributions:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name}==?")
    return ",".join(out)


def installed_stamp(package: str) -> str:
    """When `package` was installed (its `__init__.py`'s mtime and size), found without
    importing it: a reinstall under the same version string (a git or editable install)
    then gets a fresh entry too."""
    from importlib.util import find_spec

    try:
        spec = find_spec(package)
        origin = spec.origin if spec is not None else None
        stat = os.stat(origin) if origin else None
    except (ImportError, ValueError, OSError):
        return "?"
    return f"{stat.st_mtime_ns}:{stat.st_size}" if stat else "?"


def source_of(module_file: str) -> bytes:
    """A module's own source, for a key: an edited module never reads a stale entry."""
    try:
        return Path(module_file).read_bytes()
    except OSError:
        return b""


def load(name: str) -> Any | None:
    """The object stored as `name`, or None when there is none, it cannot be read, or it is
    not a file only this user could have written (unpickling runs code: a cache folder shared
    with others, e.g. via OPENAI_BATCH_HOME, must not be able to run theirs)."""
    path = _path(name)
    try:
        with open(path, "rb") as fh:
            if not _trusted(os.fstat(fh.fileno())):
                return None
            raw = fh.read()
    except OSError:
        return None
    if not raw.startswith(_FORMAT):
        return None
    try:
        return pickle.loads(raw[len(_FORMAT) :])  # written by `store` on this machine
    except Exception:  # damaged: rebuilt by the caller
        return None


def store(name: str, value: Any) -> None:
    """Keep `value` as `name`, atomically; a failure to write only costs the next run time."""
    with contextlib.suppress(Exception):
        data = _FORMAT + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        _sweep(_path(name).parent)
        with files.atomic_write(_path(name), "wb", private=True) as fh:
            fh.write(data)


def _trusted(stat: os.stat_result) -> bool:
    """Owned by this user and writable by nobody else (POSIX; elsewhere, the folder's ACLs)."""
    if not hasattr(os, "getuid"):
        return True
    return stat.st_uid == os.getuid() and not stat.st_mode & 0o022


STALE_SECONDS = 3600.0


def _sweep(folder: Path) -> None:
    """Remove temp files an interrupted write left behind (a process killed mid-write)."""
    now = time.time()
    for temp in folder.glob(".*.part"):
        with contextlib.suppress(OSError):
            if now - temp.stat().st_mtime > STALE_SECONDS:
                temp.unlink()


def cache_dir() -> Path:
    """`$OPENAI_BATCH_CACHE`; else `cache` in `$OPENAI_BATCH_HOME` when that is set; else the
    platform's user cache folder for openai-batch."""
    if (cache := settings.cache()) is not None:
        return cache
    if (home := settings.home()) is not None:
        return home / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("openai-batch", appauthor=False))


def _path(name: str) -> Path:
    return cache_dir() / f"{name}.pickle"
