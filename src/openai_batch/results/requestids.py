"""The custom_ids of a request file, in its line order: the order the responses file and the
table are written in.

Our own request files start every line with `{"custom_id": "` and an id without escapes, so
the ids are found a 1 MiB block at a time with numpy: the line starts (one search for line
feeds), then a window of bytes after each start, which must begin with that prefix and hold the
id's closing quote before any backslash or line feed; the ids of those lines are decoded
together. Any other line (someone else's file, escapes, a long id, a blank line) is read by
itself exactly as before: the same ids in the same order either way (a test holds the two
together). Reading the lines one by one cost twice as much: a bytes object of ~880 bytes per line
only to look at its first thirty.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from openai_batch.errors import BatchError, Command
from openai_batch.jsondepth import TOO_DEEP, too_deep

BLOCK = 1 << 20  # bytes read at a time
_ID_AT_START = re.compile(rb'^\{\s*"custom_id"\s*:\s*("(?:[^"\\]|\\.)*")')
_OURS = b'{"custom_id": "'  # how every line of our own request files starts
_WIDTH = 48  # bytes after the prefix looked at for the closing quote (a UUID is 36)


class NestedTooDeeply(ValueError):
    """A line whose custom_id only a whole reading finds, nested past jsondepth.MAX_DEPTH."""


def iter_request_ids(path: Path, block: int | None = None) -> Iterator[str]:
    """The custom_ids of a request file, in its line order (`block`: bytes read at a time)."""
    for ids in request_id_blocks(path, block):
        yield from ids


def request_id_blocks(path: Path, block: int | None = None) -> Iterator[list[str]]:
    """iter_request_ids a list at a time: the ids of the lines that end in each `block` of
    bytes read (BLOCK unless given; a million ids one generator step at a time cost more).
    A line nested too deeply to read for its custom_id is an error naming the line: leaving
    it out would put the answers after it out of the file's order."""
    import numpy as np

    block = block or BLOCK

    # one buffer for every read, and one for where its line feeds are: a new 1 MiB object
    # per read cost a third of the time in page faults, and left the heap fragmented
    buffer = bytearray(block)
    feeds = np.empty(block, dtype=bool)
    try:
        with open(path, "rb", buffering=0) as fh:
            carry: list[bytes] = []  # the start of a line that goes on in the next block
            while size := fh.readinto(buffer):
                first = buffer.find(b"\n", 0, size)
                if first < 0:
                    carry.append(bytes(buffer[:size]))
                    continue
                custom_id = line_id(b"".join([*carry, buffer[: first + 1]]))
                last = buffer.rfind(b"\n", 0, size)
                ids = _block_ids(buffer, first + 1, last + 1, feeds)
                if custom_id is not None:
                    ids.insert(0, custom_id)
                if ids:
                    yield ids
                carry = [bytes(buffer[last + 1 : size])]
            if any(carry):
                custom_id = line_id(b"".join(carry))
                if custom_id is not None:
                    yield [custom_id]
    except NestedTooDeeply:
        raise _too_deep(path) from None


def _too_deep(path: Path) -> BatchError:
    """The error for a request file with a line too deep to find its custom_id in, naming the
    first such line (found again: only this error pays for counting lines)."""
    where = ""
    with open(path, "rb") as fh:
        for number, line in enumerate(fh, start=1):
            try:
                line_id(line)
            except NestedTooDeeply:
                where = f", line {number}"
                break
            except ValueError:  # not UTF-8: not the line looked for
                continue
    return BatchError(
        f"{path}{where}: {TOO_DEEP}, so its custom_id cannot be found",
        hint=("`", Command("utils", "validate", path), "` names every line it cannot read"),
    )


def line_id(line: bytes) -> str | None:
    """One line's custom_id (None without one): our own lines' fast form, else the general."""
    start = len(_OURS)
    if line.startswith(_OURS):  # the id runs to the first quote when nothing is escaped
        end = line.find(b'"', start)
        if end > 0 and b"\\" not in line[start:end]:
            return line[start:end].decode("utf-8")
    return id_of_line(line)


def id_of_line(line: bytes) -> str | None:
    """The general reading of one line's custom_id: any JSON object's, None without one;
    NestedTooDeeply when only the json module could find it and the line is too deep for it."""
    if not line.strip():
        return None
    match = _ID_AT_START.match(line)
    if match:
        quoted = match.group(1)
        if b"\\" in quoted:
            return json.loads(quoted)  # type: ignore[no-any-return]
        return quoted[1:-1].decode("utf-8")
    if too_deep(line):  # the json module would recurse near the interpreter's limit (jsondepth)
        raise NestedTooDeeply(TOO_DEEP)
    try:
        custom_id = json.loads(line).get("custom_id")
    except (ValueError, AttributeError):
        return None
    return custom_id if isinstance(custom_id, str) else None


def _block_ids(data: bytearray, start: int, stop: int, feeds: Any) -> list[str]:
    """The custom_ids of the whole lines in data[start:stop] (each ends in a line feed);
    `feeds`: room for a flag per byte."""
    import numpy as np

    if start >= stop:
        return []
    flags = feeds[: stop - start]
    np.equal(np.frombuffer(data, dtype=np.uint8, count=stop)[start:], 10, out=flags)
    ends = np.flatnonzero(flags)
    ends += start + 1  # one past each line's line feed
    starts = np.empty_like(ends)
    starts[0], starts[1:] = start, ends[:-1]
    fast, ids = _fast_ids(data, starts)
    if fast is None:
        return ids
    ours = iter(ids)
    found = []
    for line_start, line_end, is_ours in zip(
        starts.tolist(), ends.tolist(), fast.tolist(), strict=True
    ):
        custom_id = next(ours) if is_ours else line_id(bytes(data[line_start:line_end]))
        if custom_id is not None:
            found.append(custom_id)
    return found


def _fast_ids(data: bytearray, starts: Any) -> tuple[Any, list[str]]:
    """The ids of the lines at `starts` in our own form: (None, ids) when every line is, else
    (which lines are, their ids)."""
    import numpy as np
    from numpy.lib.stride_tricks import sliding_window_view

    prefix = np.frombuffer(_OURS, dtype=np.uint8)
    everything = np.frombuffer(data, dtype=np.uint8)
    fast = np.zeros(len(starts), dtype=bool)
    inside = starts <= len(data) - len(_OURS) - _WIDTH  # a whole window inside the data
    if not inside.any():
        return fast, []
    windows = sliding_window_view(everything, len(_OURS) + _WIDTH)[starts[inside]]
    rest = windows[:, len(_OURS) :]
    stops = (rest == ord('"')) | (rest == ord("\\")) | (rest == ord("\n"))
    quote = stops.argmax(axis=1)  # the first stop (0 when there is none: not a quote then)
    rows = np.arange(len(quote))
    fast[inside] = (windows[:, : len(_OURS)] == prefix).all(axis=1) & (rest[rows, quote] == 34)
    chosen = fast[inside]
    text = rest[chosen].copy()
    text[np.arange(len(text)), quote[chosen]] = ord("\n")  # the quote ends the id
    try:
        ids = text[np.arange(_WIDTH) <= quote[chosen, None]].tobytes().decode("utf-8")
    except UnicodeDecodeError:  # read line by line, where the general reading says what it is
        fast[:] = False
        return fast, []
    found = ids.split("\n")[:-1]
    return (None if fast.all() else fast), found
