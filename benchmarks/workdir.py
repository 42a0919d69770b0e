"""The folder a benchmark generates its data and writes its outputs in.

`--workdir DIR` keeps them there (to look at, or to rerun on the same files); without it they go
to a temp folder that is removed at the end, whatever happens. Shared by the benchmark scripts.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def work_folder(given: Path | None, prefix: str) -> Iterator[Path]:
    """`given` (made if missing, kept), else a new temp folder named `prefix...`, removed after."""
    work = given or Path(tempfile.mkdtemp(prefix=prefix))
    work.mkdir(parents=True, exist_ok=True)
    try:
        yield work
    finally:
        if given is None:
            shutil.rmtree(work, ignore_errors=True)
