"""Content digests: how the ledger recognises a request file or a data file again.

The digest is an identity for files on the user's own machine (was this file uploaded, started,
edited since?), not a security boundary: nobody gains by forging a collision with their own
files. So it is XXH3-128, a fast non-cryptographic 128-bit hash, kept for speed:
make-batch-file hashes every byte it writes (~0.9 GB per million rows) and must run at the speed
of the disk, and the join hashes the whole data file every time. XXH3 takes ~0.04 s of CPU for
900 MB where SHA-256 takes ~0.5 s. 128 bits keep accidental collisions out of reach for any
number of files one machine will ever hold. A digest is 32 hex characters.

`xxhash` is imported inside the functions, so importing this module costs nothing at
`openai-batch --help` time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ALGORITHM = "xxh3_128"
BLOCK = 4 << 20  # bytes read at a time: large enough that the hash, not Python, is the cost


def new_digest() -> Any:
    """A fresh hasher: `.update(bytes or any buffer)` then `.hexdigest()` (32 hex chars)."""
    import xxhash

    return xxhash.xxh3_128()


def digest_of(path: Path) -> str:
    """The digest of a file's bytes, read in blocks (files may be larger than memory) into one
    buffer: a new bytes object per block cost a third more CPU (its allocation, page faults and
    copy), and the join checks every request file this way before it starts."""
    hasher = new_digest()
    buffer = bytearray(BLOCK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as fh:
        while size := fh.readinto(buffer):
            hasher.update(view[:size])
    return str(hasher.hexdigest())


def digest_bytes(data: bytes) -> str:
    """The digest of bytes in memory; equal to `digest_of` a file holding them."""
    hasher = new_digest()
    hasher.update(data)
    return str(hasher.hexdigest())


def matches(path: Path, recorded: str) -> bool:
    """Whether the file still has the content `recorded` for it."""
    return digest_of(path) == recorded
