"""Content digests: how the ledger recognises a request file or a data file again.

The digest is an identity for files on the user's own machine (was this file uploaded, started,
edited since?), not a security boundary: nobody gains by forging a collision with their own
files. So it is XXH3-128, a fast non-cryptographic 128-bit hash. make-batch-file hashes every
byte it writes (~0.9 GB per million rows) and must run at the speed of the disk: XXH3 takes
~0.04 s of CPU for 900 MB where SHA-256 (used before ledger schema 4) took ~0.5 s. 128 bits keep
accidental collisions out of reach for any number of files one machine will ever hold. A digest
is 32 hex characters, so it never equals a 64-hex SHA-256 that an older ledger recorded.

`xxhash` is imported inside the functions, so importing this module costs nothing at
`openai-batch --help` time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ALGORITHM = "xxh3_128"
BLOCK = 4 << 20  # bytes read at a time: large enough that the hash, not Python, is the cost
LEGACY_HEX_LENGTH = 64  # a SHA-256 recorded before ledger schema 4 (see `matches`)


def new_digest() -> Any:
    """A fresh hasher: `.update(bytes or any buffer)` then `.hexdigest()` (32 hex chars)."""
    import xxhash

    return xxhash.xxh3_128()


def digest_of(path: Path) -> str:
    """The digest of a file's bytes, read in blocks (files may be larger than memory)."""
    hasher = new_digest()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            hasher.update(block)
    return str(hasher.hexdigest())


def digest_bytes(data: bytes) -> str:
    """The digest of bytes in memory; equal to `digest_of` a file holding them."""
    hasher = new_digest()
    hasher.update(data)
    return str(hasher.hexdigest())


def matches(path: Path, recorded: str) -> bool:
    """Whether the file still has the content `recorded` for it, whichever digest that is.

    Ledgers before schema 4 recorded SHA-256 (64 hex characters). Batches run for up to a day,
    so a job, retry or join may span the upgrade: such a value is checked as what it is, rather
    than every pre-upgrade file being reported as changed.
    """
    if len(recorded) == LEGACY_HEX_LENGTH:
        import hashlib

        legacy = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(BLOCK), b""):
                legacy.update(block)
        return legacy.hexdigest() == recorded
    return digest_of(path) == recorded


def legacy_and_current(path: Path) -> tuple[str, str]:
    """(SHA-256, digest) of a file in one read: a file met again after the upgrade to schema 4
    is compared with the SHA-256 an older ledger recorded, and must still be the content
    whose digest the caller holds."""
    import hashlib

    legacy, current = hashlib.sha256(), new_digest()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(BLOCK), b""):
            legacy.update(block)
            current.update(block)
    return legacy.hexdigest(), str(current.hexdigest())
