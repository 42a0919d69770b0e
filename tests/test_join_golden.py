"""The join writes, byte for byte, what it wrote before the streaming rewrite (d569c40)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from helpers import ROOT, need_seed
from join_cases import chat_case, endpoints_case
from openai_batch.requestfile.make import iter_identified_chunks
from openai_batch.results.join import write_csv
from openai_batch.results.joinplan import DataRows
from openai_batch.results.merge import ResultIndex, iter_request_ids, write_responses
from openai_batch.table.spec import TableSpec

GOLDEN = ROOT / "tests" / "data" / "join_golden"
# sha256 of the seed fixture's outputs (../shared is never copied into the repository)
SEED_RESPONSES = "39401b3d40a56dcab74bc912930588d584d722c79bceae59bf3e8f8bdb5e1224"
SEED_TABLE = "b97440e68c6a4ea6234221906147f00ed18a0d68083080ac4c6ab444550d3520"


def _same(written: Path, name: str) -> None:
    assert written.read_bytes() == (GOLDEN / name).read_bytes(), name


def _rows(path: Path, reader: str) -> Any:
    """The data rows as the join gets them: pandas chunks, or DataRows (Arrow blocks when the
    fast reader reads the table, as get-batch-results does)."""
    if reader == "chunks":
        return iter_identified_chunks(path)
    rows = DataRows(TableSpec(str(path)))
    blocks = rows.arrow_blocks()
    assert blocks is not None
    list(blocks)  # the block path is the one under test: no Fallback to the chunks anywhere
    return rows


@pytest.mark.parametrize("reader", ["chunks", "arrow"])
def test_chat_join_is_byte_identical(tmp_path: Path, reader: str) -> None:
    case = chat_case(tmp_path)
    index = ResultIndex()
    index.add_file(case["output"], 0)
    index.add_file(case["errors"], 0)
    try:
        write_responses(index, tmp_path / "r.jsonl", iter_request_ids(case["requests"]))
        _same(tmp_path / "r.jsonl", "chat-responses.jsonl")
        chunks = _rows(case["data"], reader)
        write_csv(
            index, tmp_path / "t.csv", chunks=chunks, order=iter_request_ids(case["requests"])
        )
        _same(tmp_path / "t.csv", "chat-table.csv")
        write_csv(index, tmp_path / "o.csv", order=iter_request_ids(case["requests"]))
        _same(tmp_path / "o.csv", "chat-results-only.csv")
        kept = _rows(case["data"], reader)
        write_csv(index, tmp_path / "k.csv", chunks=kept, keep_row=lambda r, _c: 5 <= r < 25)
        _same(tmp_path / "k.csv", "chat-rows-kept.csv")
    finally:
        index.close()


def test_every_endpoint_joins_byte_identical(tmp_path: Path) -> None:
    case = endpoints_case(tmp_path)
    index = ResultIndex()
    index.add_file(case["output"], 0)
    try:
        write_responses(index, tmp_path / "r.jsonl")
        _same(tmp_path / "r.jsonl", "endpoints-responses.jsonl")
        write_csv(index, tmp_path / "t.csv")
        _same(tmp_path / "t.csv", "endpoints-table.csv")
    finally:
        index.close()


@pytest.mark.parametrize("name", ["responses", "table", "table-arrow"])
def test_real_batch_output_joins_byte_identical(tmp_path: Path, name: str) -> None:
    seed = need_seed()
    index = ResultIndex()
    index.add_file(seed / "batch-responses.openai.jsonl", 0)
    order = iter_request_ids(seed / "batch-requests.jsonl")
    dest = tmp_path / name
    try:
        if name == "responses":
            write_responses(index, dest, order)
        else:
            reader = "arrow" if name.endswith("arrow") else "chunks"
            chunks = _rows(seed / "simulated_survey_personas.csv", reader)
            write_csv(index, dest, chunks=chunks, order=order)
    finally:
        index.close()
    want = SEED_RESPONSES if name == "responses" else SEED_TABLE
    assert hashlib.sha256(dest.read_bytes()).hexdigest() == want
