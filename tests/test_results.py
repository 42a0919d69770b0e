"""Merging, ordering and joining batch results (library level, no server)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from helpers import need_seed, read_csv
from openai_batch.errors import BatchError
from openai_batch.requestfile.make import iter_identified_chunks
from openai_batch.results.answers import extract
from openai_batch.results.join import result_column_names, write_csv
from openai_batch.results.merge import ResultIndex, iter_request_ids, natural_key, write_responses


def ok_line(custom_id: str, content: str = "hi", **usage: int) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {
            "status_code": 200,
            "request_id": "r",
            "body": {
                "object": "chat.completion",
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content, "refusal": None},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 7, "completion_tokens": 3, **usage},
            },
        },
        "error": None,
    }


def err_line(custom_id: str, status: int = 500, code: str = "server_error") -> dict[str, Any]:
    body = {"error": {"message": "boom", "type": "server_error", "param": None, "code": code}}
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": {"status_code": status, "request_id": "r", "body": body},
        "error": None,
    }


def expired_line(custom_id: str) -> dict[str, Any]:
    return {
        "id": f"batch_req_{custom_id}",
        "custom_id": custom_id,
        "response": None,
        "error": {"code": "batch_expired", "message": "not executed before the window expired"},
    }


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def test_natural_order_compares_numbers_as_numbers() -> None:
    ids = ["id_10", "id_2", "id_1", "id_100", "b", "a_3", "id_02"]
    assert sorted(ids, key=natural_key)[:5] == ["a_3", "b", "id_1", "id_02", "id_2"]
    assert sorted(ids, key=natural_key)[-2:] == ["id_10", "id_100"]


def test_extract_chat_completion() -> None:
    row = extract(ok_line("id_0", "Hello"))
    assert (row.status, row.content, row.finish_reason) == ("ok", "Hello", "stop")
    assert (row.prompt_tokens, row.completion_tokens, row.fields) == (7, 3, None)


def test_extract_structured_output_gives_fields() -> None:
    row = extract(ok_line("id_0", '{"label": "spam", "score": 0.9, "tags": ["a"]}'))
    assert row.fields == {"label": "spam", "score": 0.9, "tags": ["a"]}


def test_extract_refusal() -> None:
    line = ok_line("id_0", "")
    message = line["response"]["body"]["choices"][0]["message"]
    message.update(content=None, refusal="I can't help with that")
    row = extract(line)
    assert (row.status, row.content, row.refusal) == ("ok", "", "I can't help with that")


def test_extract_responses_endpoint() -> None:
    body = {
        "object": "response",
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [
                    {"type": "output_text", "text": "Part one. "},
                    {"type": "output_text", "text": "Part two."},
                ],
            },
        ],
        "usage": {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16},
    }
    line = {"custom_id": "x", "response": {"status_code": 200, "body": body}, "error": None}
    row = extract(line)
    assert (row.content, row.finish_reason) == ("Part one. Part two.", "completed")
    assert (row.prompt_tokens, row.completion_tokens) == (11, 5)


def test_extract_embeddings_gives_the_vector_as_json() -> None:
    body = {
        "object": "list",
        "data": [{"object": "embedding", "index": 0, "embedding": [0.5, -0.25]}],
        "usage": {"prompt_tokens": 4, "total_tokens": 4},
    }
    row = extract({"custom_id": "x", "response": {"status_code": 200, "body": body}})
    assert json.loads(row.content) == [0.5, -0.25]
    assert (row.prompt_tokens, row.completion_tokens) == (4, None)


def test_extract_errors_name_code_and_message() -> None:
    assert extract(err_line("a", 429, "rate_limit_exceeded")).error == "rate_limit_exceeded: boom"
    expired = extract(expired_line("b"))
    assert expired.status == "error"
    assert expired.error.startswith("batch_expired: not executed")


def test_later_success_wins_and_success_beats_a_later_error(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "first.jsonl", [err_line("id_0"), ok_line("id_1", "old")])
    second = write_jsonl(
        tmp_path / "second.jsonl",
        [ok_line("id_0", "retried"), ok_line("id_1", "new"), err_line("id_2")],
    )
    third = write_jsonl(tmp_path / "third.jsonl", [err_line("id_1"), err_line("id_2", 400, "x")])
    index = ResultIndex()
    for rank, path in enumerate((first, second, third)):
        index.add_file(path, rank)
    assert index.result("id_0").content == "retried"
    assert index.result("id_1").content == "new"  # a later error does not undo a success
    assert index.result("id_2").error == "x: boom"  # among errors, the latest
    assert index.result("id_9").status == "missing"
    index.close()


def test_responses_follow_the_request_order_and_keep_lines_verbatim(tmp_path: Path) -> None:
    lines = [ok_line(f"id_{i}") for i in (10, 2, 1)] + [err_line("id_0")]
    raw = [json.dumps(r, indent=None, separators=(", ", ": ")) for r in lines]
    out_file = tmp_path / "out.jsonl"
    out_file.write_text("\n".join(raw[:3]) + "\n", encoding="utf-8")
    err_file = tmp_path / "err.jsonl"
    err_file.write_text(raw[3], encoding="utf-8")  # no final newline
    index = ResultIndex()
    index.add_file(out_file, 0)
    index.add_file(err_file, 0)

    natural = write_responses(index, tmp_path / "natural.jsonl")
    got = (tmp_path / "natural.jsonl").read_text(encoding="utf-8").split("\n")
    assert [json.loads(x)["custom_id"] for x in got[:-1]] == ["id_0", "id_1", "id_2", "id_10"]
    assert got[-1] == ""  # every line ends with a newline
    assert (natural.ok, natural.error, natural.missing) == (3, 1, 0)

    order = ["id_2", "id_0", "id_5", "id_10"]  # id_5 has no result; id_1 is not in the order
    summary = write_responses(index, tmp_path / "ordered.jsonl", order)
    text = (tmp_path / "ordered.jsonl").read_text(encoding="utf-8")
    assert [json.loads(x)["custom_id"] for x in text.splitlines()] == [
        "id_2",
        "id_0",
        "id_10",
        "id_1",
    ]
    assert text.splitlines()[0] == raw[1]  # byte for byte as the API sent it
    assert (summary.missing, summary.extra, summary.lines) == (1, 1, 4)
    index.close()


def test_request_ids_are_read_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "r.jsonl"
    path.write_text(
        '{"custom_id": "b\\"q", "method": "POST", "url": "/v1/x", "body": {}}\n'
        '{"method": "POST", "custom_id": "a", "url": "/v1/x", "body": {}}\n\n',
        encoding="utf-8",
    )
    assert list(iter_request_ids(path)) == ['b"q', "a"]


def test_column_names_never_clash() -> None:
    names = result_column_names(["status", "label", "label_result"], ["label", "custom_id"])
    assert names[:3] == ["custom_id", "status_result", "content"]
    assert names[-2:] == ["label_result2", "custom_id_result"]
    assert len(set(names)) == len(names)


def test_csv_joins_every_row_with_cells_exactly_as_written(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text('name,code,status\nAnn,007,NA\n"Bo, Jr.",,null\nCy,N/A,\n', encoding="utf-8")
    results = write_jsonl(
        tmp_path / "out.jsonl",
        [
            ok_line("id_2", '{"label": "spam", "n": 2}'),
            ok_line("id_0", 'line one\nline two, "quoted"'),
        ],
    )
    index = ResultIndex()
    index.add_file(results, 0)
    summary = write_csv(index, tmp_path / "t.csv", chunks=iter_identified_chunks(data))
    rows = read_csv(tmp_path / "t.csv")
    assert [r["name"] for r in rows] == ["Ann", "Bo, Jr.", "Cy"]
    assert [r["code"] for r in rows] == ["007", "", "N/A"]
    assert [r["status"] for r in rows] == ["NA", "null", ""]  # the data's own column
    assert [r["status_result"] for r in rows] == ["ok", "missing", "ok"]
    assert rows[0]["content"] == 'line one\nline two, "quoted"'
    assert rows[2]["label"] == "spam" and rows[2]["n"] == "2" and rows[0]["label"] == ""
    assert rows[0]["prompt_tokens"] == "7" and rows[1]["prompt_tokens"] == ""
    assert (summary.rows, summary.ok, summary.missing, summary.unmatched) == (3, 2, 1, 0)
    index.close()


def test_csv_keeps_only_the_rows_of_these_requests_and_counts_strays(tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text("x\n" + "".join(f"r{i}\n" for i in range(6)), encoding="utf-8")
    index = ResultIndex()
    index.add_file(write_jsonl(tmp_path / "o.jsonl", [ok_line("id_3"), ok_line("zz")]), 0)
    summary = write_csv(
        index,
        tmp_path / "t.csv",
        chunks=iter_identified_chunks(data),
        keep_row=lambda row, _cid: 2 <= row < 4,  # the shard of rows 2 and 3
    )
    rows = read_csv(tmp_path / "t.csv")
    assert [(r["x"], r["custom_id"], r["status"]) for r in rows] == [
        ("r2", "id_2", "missing"),
        ("r3", "id_3", "ok"),
    ]
    assert summary.unmatched == 1  # "zz" matches no row
    index.close()


def test_csv_without_data_lists_results_only(tmp_path: Path) -> None:
    index = ResultIndex()
    index.add_file(write_jsonl(tmp_path / "o.jsonl", [ok_line("id_1"), err_line("id_0")]), 0)
    write_csv(index, tmp_path / "t.csv", order=["id_0", "id_1", "id_2"])
    rows = read_csv(tmp_path / "t.csv")
    assert [(r["custom_id"], r["status"]) for r in rows] == [
        ("id_0", "error"),
        ("id_1", "ok"),
        ("id_2", "missing"),
    ]
    index.close()


def test_real_batch_output_is_indexed_and_ordered() -> None:
    seed = need_seed()
    index = ResultIndex()
    assert index.add_file(seed / "batch-responses.openai.jsonl", 0) == 100
    order = list(iter_request_ids(seed / "batch-requests.jsonl"))
    assert order == [f"id_{i}" for i in range(100)]
    assert index.counts() == {"ok": 100, "error": 0}
    first = index.result("id_0")
    assert first.content.startswith("As Hank Rodriguez")
    assert (first.prompt_tokens, first.finish_reason) == (1541, "stop")
    index.close()


@pytest.mark.parametrize("bad", [b"not json\n", b'{"no_custom_id": 1}\n', b"[1, 2]\n"])
def test_unreadable_lines_are_counted_not_fatal(tmp_path: Path, bad: bytes) -> None:
    path = tmp_path / "o.jsonl"
    path.write_bytes(bad + (json.dumps(ok_line("id_0")) + "\n").encode())
    index = ResultIndex()
    index.add_file(path, 0)
    assert index.unreadable == 1 and "id_0" in index
    index.close()


def test_natural_order_with_unicode_digits_in_ids():
    from openai_batch.results.merge import natural_key

    ids = ["id_10", "id_2", "area 10²", "area 2²", "x"]
    assert sorted(ids, key=natural_key) == ["area 2²", "area 10²", "id_2", "id_10", "x"]


def test_a_result_file_that_shrinks_before_the_responses_are_written_is_an_error(
    tmp_path: Path,
) -> None:
    """The lines are read back by offset: a file cut short meanwhile is named, never a
    responses file with lines missing or cut."""
    out = write_jsonl(tmp_path / "out.jsonl", [ok_line(f"id_{i}") for i in range(5)])
    with ResultIndex() as index:
        index.add_file(out, 0)
        out.write_bytes(out.read_bytes()[:-40])
        with pytest.raises(BatchError, match="changed while its results were being read"):
            write_responses(index, tmp_path / "responses.jsonl", [f"id_{i}" for i in range(5)])
    assert not (tmp_path / "responses.jsonl").exists()


def test_a_result_file_that_grows_after_a_last_line_without_a_line_feed_is_an_error(
    tmp_path: Path,
) -> None:
    """Its last line had no line feed when indexed; bytes appended since put it mid-file: it
    was written without one, and the next result glued onto it (two results on one line)."""
    lines = [json.dumps(ok_line(f"id_{i}")) for i in range(3)]
    out = tmp_path / "out.jsonl"
    out.write_text("\n".join(lines), encoding="utf-8")
    with ResultIndex() as index:
        index.add_file(out, 0)
        with out.open("a", encoding="utf-8") as fh:
            fh.write("\n" + json.dumps(ok_line("id_9")) + "\n")
        with pytest.raises(BatchError, match="changed while its results were being read"):
            write_responses(index, tmp_path / "responses.jsonl", ["id_0", "id_1", "id_2"])
    assert not (tmp_path / "responses.jsonl").exists()


def test_a_last_line_without_a_line_feed_gets_one_in_the_responses_file(tmp_path: Path) -> None:
    lines = [json.dumps(ok_line(f"id_{i}")) for i in range(3)]
    out = tmp_path / "out.jsonl"
    out.write_text("\n".join(lines), encoding="utf-8")
    with ResultIndex() as index:
        index.add_file(out, 0)
        write_responses(index, tmp_path / "responses.jsonl", ["id_2", "id_0", "id_1"])
    text = (tmp_path / "responses.jsonl").read_text(encoding="utf-8")
    assert text == "".join(lines[i] + "\n" for i in (2, 0, 1))
    with ResultIndex() as index:  # the whole file in order: one read, its end without one
        index.add_file(out, 0)
        write_responses(index, tmp_path / "responses.jsonl", ["id_0", "id_1", "id_2"])
    ordered = (tmp_path / "responses.jsonl").read_text(encoding="utf-8")
    assert ordered == "".join(line + "\n" for line in lines)


def test_the_responses_file_holds_one_piece_of_long_answers_at_a_time(tmp_path: Path) -> None:
    """60 answers of 1 MB, in request order in their file: read in pieces, never a block of
    4,096 lines at once (that would be 60 MB here, gigabytes for a big job)."""
    import tracemalloc

    out = write_jsonl(
        tmp_path / "out.jsonl", [ok_line(f"id_{i}", "x" * 1_000_000) for i in range(60)]
    )
    with ResultIndex() as index:
        index.add_file(out, 0)
        tracemalloc.start()
        try:
            write_responses(index, tmp_path / "responses.jsonl", [f"id_{i}" for i in range(60)])
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert (tmp_path / "responses.jsonl").read_bytes() == out.read_bytes()
    assert peak < 10_000_000, peak


def test_a_custom_id_repeated_in_the_order_is_written_once_near_or_far(tmp_path: Path) -> None:
    """Repeated in the same block of lookups, or blocks apart: its line is written once, where
    the order first names it."""
    from openai_batch.results.merge import RESPONSES_BLOCK

    count = RESPONSES_BLOCK + 100
    out = tmp_path / "out.jsonl"
    line = '{"custom_id": "id_%d", "response": null, "error": {"code": "x", "message": "m"}}\n'
    out.write_text("".join(line % n for n in range(count)), encoding="utf-8")
    order = ["id_1", "id_0", "id_1"] + [f"id_{n}" for n in range(count)] + ["id_0", "id_7"]
    with ResultIndex() as index:
        index.add_file(out, 0)
        summary = write_responses(index, tmp_path / "responses.jsonl", order)
    written = [json.loads(line)["custom_id"] for line in
               (tmp_path / "responses.jsonl").read_text(encoding="utf-8").splitlines()]  # fmt: skip
    assert written == ["id_1", "id_0"] + [f"id_{n}" for n in range(2, count)]
    assert (summary.lines, summary.error, summary.missing, summary.extra) == (count, count, 0, 0)
