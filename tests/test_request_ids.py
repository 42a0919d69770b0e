"""The custom_ids of a request file are read by a fast path for our own lines (issue 15): it
must read every file exactly as the general per-line reading does."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from openai_batch.results.merge import _id_of_line, iter_request_ids

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
    general = [c for line in io.BytesIO(data) if (c := _id_of_line(line)) is not None]
    assert list(iter_request_ids(path)) == general
