"""What a request file's check depends on, as one stamp: a pass is kept under it.

The pre-upload check (every line against the API's request types) is most of what starting a
big job costs locally. A file whose exact bytes passed it before need not be read again, but
only when nothing that decides the verdict has changed since: openai-batch's own code (every
module and the bundled API schema, by content, so an edited checkout counts as another build),
the versions of the SDK and pydantic whose types it checks against, Python, and the service's
limits. The stamp is a digest of all of them; the ledger keeps passes under it
(`ledger/checkedfiles.py`), and a file edited by hand has another digest, so it is checked.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from openai_batch.requestfile.limits import FileLimits

# What validation imports beside openai-batch's own code (Python's version is in cache.key).
DEPENDENCIES = ("openai", "pydantic", "pydantic-core", "typing-extensions", "msgspec")


def check_stamp(limits: FileLimits) -> str:
    """The stamp of a check against `limits` by this build (see the module's docstring)."""
    from openai_batch.local import cache as disk

    return disk.key(_build(), repr(limits))


@cache
def _build() -> str:
    """This build: its own sources and its dependencies' versions (read once a process,
    a few milliseconds)."""
    import openai_batch
    from openai_batch.ledger.digests import new_digest
    from openai_batch.local import cache as disk

    package = Path(openai_batch.__file__).parent
    hasher = new_digest()
    for path in sorted(package.rglob("*")):
        if path.suffix in (".py", ".json") and "__pycache__" not in path.parts:
            hasher.update(path.relative_to(package).as_posix().encode() + b"\0")
            hasher.update(path.read_bytes())
    return disk.key(
        disk.versions(*DEPENDENCIES), disk.installed_stamp("openai"), str(hasher.hexdigest())
    )
