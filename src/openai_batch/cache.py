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
from importlib import metadata
from pathlib import Path
from typing import Any

from . import files

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


def source_of(module_file: str) -> bytes:
    """A module's own source, for a key: an edited module never reads a stale entry."""
    try:
        return Path(module_file).read_bytes()
    except OSError:
        return b""


def load(name: str) -> Any | None:
    """The object stored as `name`, or None when there is none or it cannot be read."""
    try:
        raw = _path(name).read_bytes()
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
        with files.atomic_write(_path(name), "wb") as fh:
            fh.write(data)


def cache_dir() -> Path:
    """`$OPENAI_BATCH_CACHE`; else `cache` in `$OPENAI_BATCH_HOME` when that is set; else the
    platform's user cache folder for openai-batch."""
    if env := os.environ.get("OPENAI_BATCH_CACHE"):
        return Path(env).expanduser()
    if env := os.environ.get("OPENAI_BATCH_HOME"):
        return Path(env).expanduser() / "cache"
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("openai-batch", appauthor=False))


def _path(name: str) -> Path:
    return cache_dir() / f"{name}.pickle"
