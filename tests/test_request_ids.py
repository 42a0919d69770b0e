"""The custom_ids of a request file are read by a fast path for our own lines (issue 15): it
must read every file exactly as the general per-line reading does."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from openai_batch.results.requestids import id_of_line, iter_request_ids

LINES = [
    b'{"custom_id": "id_0", "method": "POST"}\n',
    b'{"custom_id": "b\\u00e9\\n"}\n',  # escapes: read by json
    b'{"custom_id": "\xc3\xa9t\xc3\xa9"}\n',
    b'{"custom_id": "q\\"uote"}\n',
    b'{"custom_id": "unterminated\n',
    b'{"custom_id": "no line end"}',
    b'{"custom_id": "crlf"}\r\n',
    b'{ "custom_id" : "spaced"}\n',
    b'{"x": 1, "custom_id": "later"}\n',
    b'{"custom_id": 5}\n',
    b"\n",
    b"  \t\n",
    b"not json\n",
    b"{\n",
]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=12))
def test_the_fast_path_reads_what_the_general_reading_reads(tmp_path_factory, lines) -> None:
    data = b"".join(lines)
    path = Path(tmp_path_factory.mktemp("ids")) / "r.jsonl"
    path.write_bytes(data)
    general = [c for line in io.BytesIO(data) if (c := id_of_line(line)) is not None]
    assert list(iter_request_ids(path)) == general


def our_line(custom_id: str, ascii_only: bool, pad: int) -> bytes:
    quoted = json.dumps(custom_id, ensure_ascii=ascii_only).encode("utf-8")
    return b'{"custom_id": ' + quoted + b', "body": "' + b"x" * pad + b'"}\n'


ids = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60)
lines = st.one_of(
    st.builds(our_line, ids, st.booleans(), st.integers(0, 120)),
    st.builds(
        our_line,
        st.from_regex(r"id_[0-9]{1,7}", fullmatch=True),
        st.just(True),
        st.integers(0, 120),
    ),
    st.sampled_from(LINES),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(lines, max_size=40), st.integers(1, 400), st.booleans())
def test_ids_found_a_block_at_a_time_are_the_general_reading_s(
    tmp_path_factory, lines, block, cut_end
) -> None:
    """Blocks of any size: lines across blocks, longer than a block, windows past a block's
    end, escapes, ids longer than the window, unicode, other files' lines."""
    data = b"".join(lines)
    if cut_end:
        data = data.rstrip(b"\n")
    path = Path(tmp_path_factory.mktemp("ids")) / "r.jsonl"
    path.write_bytes(data)
    general = [c for line in io.BytesIO(data) if (c := id_of_line(line)) is not None]
    assert list(iter_request_ids(path, block)) == general
    assert list(iter_request_ids(path)) == general


def test_an_id_that_is_not_utf8_is_refused_as_by_the_general_reading(tmp_path) -> None:
    data = our_line("id_0", True, 90) + b'{"custom_id": "b\xffd", "body": "' + b"x" * 90 + b'"}\n'
    path = tmp_path / "r.jsonl"
    path.write_bytes(data)
    with pytest.raises(UnicodeDecodeError):
        id_of_line(data.splitlines(keepends=True)[1])
    with pytest.raises(UnicodeDecodeError):
        list(iter_request_ids(path))


def test_a_million_of_our_lines_a_block_at_a_time(tmp_path) -> None:
    """Our own lines in 1 MiB blocks: every id, in order, across the blocks' edges."""
    path = tmp_path / "r.jsonl"
    with path.open("wb") as fh:
        fh.writelines(our_line(f"id_{n}", True, n % 300) for n in range(20_000))
    assert list(iter_request_ids(path)) == [f"id_{n}" for n in range(20_000)]
