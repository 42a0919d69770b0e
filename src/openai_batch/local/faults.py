"""Failures of the local system as one `error:` line and a `hint:`, never a traceback.

The disk (full, read-only, a file size limit, a folder where a file should be), permissions,
memory, nesting too deep for a parser, a damaged compressed file and the ledger database each
become a `BatchError` here; `cli.main` asks `explain` about whatever a command raised. Outputs
are written to temp files and renamed into place (files.py), so when one of these happens,
nothing half-written is at a final path and everything written before is kept.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence

from openai_batch.errors import BatchError
from openai_batch.service.redaction import redact

RERUN = "nothing half-written was kept; run the same command again when fixed"


def explain(exc: BaseException) -> BatchError | None:
    """The user-facing error for a local failure, or None when `exc` is not one."""
    if isinstance(exc, MemoryError):  # first: nothing is imported or built before it
        detail = f" ({exc})" if str(exc) else ""
        return BatchError(
            f"out of memory{detail}",
            hint="a cell, template or line may be far larger than expected: check the input, "
            f"or run with more memory; {RERUN}",
        )
    from openai_batch.ledger.faults import explain_if_database_error

    database = explain_if_database_error(exc)
    if database is not None:
        return database
    if isinstance(exc, RecursionError):
        return BatchError(
            "the input is nested too deeply to read (thousands of levels of lists or objects)",
            hint="a template or request line this deep is almost certainly damaged; check it",
        )
    if isinstance(exc, EOFError):
        return BatchError(
            f"a compressed file ended early: {exc}",
            hint="the file is truncated (an interrupted download or copy); get it again",
        )
    import zlib

    if isinstance(exc, zlib.error):
        return BatchError(
            f"a compressed file is damaged: {exc}",
            hint="get the file again, or give it uncompressed",
        )
    if isinstance(exc, OSError):
        return explain_os_error(exc)
    return None


def explain_os_error(exc: OSError) -> BatchError:
    """An OSError from the disk or the file system, named by what to do about it."""
    name = _filename(exc)
    where = f": {name}" if name else ""
    code = exc.errno
    if type(exc).__name__ == "BadGzipFile" or (name is None and "gzip" in str(exc).lower()):
        return BatchError(
            f"not a gzip file, though its name ends .gz ({exc})",
            hint="compress it with gzip, or remove the .gz from its name",
        )
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return BatchError(
            f"no space left on the device (or the disk quota is used up){where}",
            hint=f"free some space or write elsewhere; {RERUN}",
        )
    if code == errno.EFBIG:
        return BatchError(
            f"a file grew past this system's file size limit{where}",
            hint=f"raise the limit (`ulimit -f unlimited`) or write elsewhere; {RERUN}",
        )
    if code in (errno.EACCES, errno.EPERM):
        return BatchError(
            f"permission denied{where}",
            hint="check the permissions of the file and its folder, or choose another path",
        )
    if code == errno.EROFS:
        return BatchError(
            f"the file system is read-only{where}", hint="write somewhere else (-o / --csv)"
        )
    if code == errno.EISDIR:
        return BatchError(f"{name or 'the path'} is a folder, not a file", hint="give a file name")
    if code == errno.ENOTDIR:
        return BatchError(
            f"a part of the path is a file, not a folder{where}",
            hint="check the path; a folder of that name cannot be made while the file is there",
        )
    if code == errno.ENOENT:
        return BatchError(f"no such file or folder{where}", hint="check the path")
    if code in (errno.EMFILE, errno.ENFILE):
        return BatchError(
            "too many open files", hint="raise the limit (`ulimit -n 4096`) and run again"
        )
    reason = exc.strerror or str(exc) or type(exc).__name__
    return BatchError(f"{reason}{where}", hint=f"check the disk and the path; {RERUN}")


def _filename(exc: OSError) -> str | None:
    """The path the error is about; for a temp file beside an output, the output's folder."""
    names = [_shown(str(n)) for n in (exc.filename, exc.filename2) if n is not None]
    return " -> ".join(names) or None


def _shown(name: str) -> str:
    import os.path

    base = os.path.basename(name)
    if base.startswith(".") and base.endswith(".part"):  # files.temp_path_for's temp files
        return f"writing in {os.path.dirname(name) or '.'}"
    return name


def interrupted(argv: Sequence[str]) -> BatchError:
    """Ctrl-C outside the polling loops: the same message and resume hint everywhere."""
    from openai_batch.ui.commandline import command

    error = BatchError(
        "interrupted",
        hint="nothing half-written was kept, and what finished is remembered; to go on, run "
        "the same command again: " + redact(command(argv)),
    )
    error.exit_code = 130
    return error
