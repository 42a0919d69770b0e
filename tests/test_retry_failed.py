"""`utils retry-failed`: a request file of what failed or never ran, and the merge it feeds.

End to end through the real CLI and SDK against the strict fake: batches with failed, expired and
cancelled requests, a retry batch started from the retry file, and get-batch-results on the
ORIGINAL request file merging every batch into one ok row per input row.
"""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI, error_body
from helpers import cli_json, need_seed, read_csv, read_jsonl, run_cli
from openai_batch.ledger.digests import digest_of
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
WAIT = ("--wait", "--poll-interval", "0.01")
ORIGINAL = "batch-requests.jsonl"


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BATCH_STRICT", "1")
    return fake_api


def make_batch_file(capsys: Capsys, tmp_path: Path, rows: int, *extra: str) -> tuple[Path, Path]:
    """make-batch-file on a small table: `batch-requests.jsonl`, custom_ids id_0..id_N-1."""
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Say hello to <<Name>>"}],
            }
        ),
        encoding="utf-8",
    )
    data = tmp_path / "people.csv"
    data.write_text(
        "Name,Note\n" + "".join(f"P{i},note {i}\n" for i in range(rows)), encoding="utf-8"
    )
    assert run_cli(capsys, "make-batch-file", template, data, "-q", *extra)[0] == 0
    return template, data


def start(capsys: Capsys, path: str | Path, *extra: str) -> str:
    code, started = cli_json(capsys, "start-batch", path, *extra)
    assert code == 0, started
    return started[0]["id"]


def finish(capsys: Capsys, target: str | Path, *extra: str | Path) -> tuple[int, str, str]:
    return run_cli(capsys, "get-batch-results", target, *extra, *WAIT)


def lines_of(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def original_lines(ids: list[int], path: Path = Path(ORIGINAL)) -> list[bytes]:
    """Those request lines as they are in the file (a last line gets its missing newline)."""
    by_id = {json.loads(line)["custom_id"]: line for line in lines_of(path)}
    return [by_id[f"id_{i}"].rstrip(b"\n") + b"\n" for i in ids]


# ---------------------------------------------------------------------------------------------


def test_partial_failure_retry_then_merge_on_the_original(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """fail -> retry-failed -> start-batch retry -> get-batch-results ORIGINAL --csv: all ok,
    the retried rows carrying the retry batch's answers, one row per input row."""
    make_batch_file(capsys, tmp_path, 10)
    fake.plan(fail_custom_ids={"id_1", "id_4", "id_7"}, error_status=429)
    answer = fake.responder
    fake.responder = lambda line: (
        (500, error_body(500)) if line["custom_id"] in {"id_2", "id_5"} else answer(line)
    )
    first = start(capsys, ORIGINAL)
    code, out, err = finish(capsys, first, "--csv", "first.csv")
    assert code == 4
    assert "utils retry-failed" in err and first in err  # the hint is on now

    code, out, err = run_cli(capsys, "utils", "retry-failed", ORIGINAL, "-o", "retry.jsonl")
    assert code == 0, err
    assert "Retry file written: retry.jsonl (5 of 10 requests" in out
    assert "5 failed (429 rate_limit_exceeded: 3, 500 server_error: 2)" in out
    assert "start-batch retry.jsonl" in out and "get-batch-results" in out
    # the original lines, byte for byte, in the original order
    assert lines_of(Path("retry.jsonl")) == original_lines([1, 2, 4, 5, 7])
    with open_ledger() as ledger:
        record = ledger.request_file(path="retry.jsonl", digest=digest_of(Path("retry.jsonl")))
        assert record is not None and record.parent_digest == digest_of(Path(ORIGINAL))
        assert record.requests == 5

    fake.responder = answer  # the retry batch succeeds
    second = start(capsys, "retry.jsonl")
    assert second != first
    code, out, err = finish(capsys, ORIGINAL, "--csv", "merged.csv")
    assert code == 0, err
    assert first in out and second in out  # both batches were merged
    rows = read_csv(Path("merged.csv"))
    assert [r["Name"] for r in rows] == [f"P{i}" for i in range(10)]
    assert [r["custom_id"] for r in rows] == [f"id_{i}" for i in range(10)]
    assert all(r["status"] == "ok" and r["error"] == "" for r in rows)
    assert all(r["content"] == f"Fake answer for id_{i}: Say hello to P{i}" for i, r in
               enumerate(rows))  # fmt: skip
    # the retried requests' lines are the retry batch's, the others the first batch's
    responses = {x["custom_id"]: x for x in read_jsonl(Path("batch-responses.jsonl"))}
    assert list(responses) == [f"id_{i}" for i in range(10)]
    from_retry = {x["custom_id"]: x["id"] for x in fake.output_lines(second)}
    from_first = {x["custom_id"]: x["id"] for x in fake.output_lines(first)}
    assert set(from_retry) == {"id_1", "id_2", "id_4", "id_5", "id_7"}
    for cid, line in responses.items():
        assert line["id"] == (from_retry[cid] if cid in from_retry else from_first[cid])

    # the retry file stands for the whole family too
    code, _, err = finish(capsys, "retry.jsonl", "-o", "via-retry.jsonl", "--csv", "r.csv")
    assert code == 0, err
    assert [r["status"] for r in read_csv(Path("r.csv"))] == ["ok"] * 10

    # and now there is nothing left to retry: said so, no file written, exit 0
    code, out, err = run_cli(capsys, "utils", "retry-failed", first, "-o", "again.jsonl")
    assert code == 0, err
    assert "Nothing to retry: all 10 requests" in out
    assert not Path("again.jsonl").exists()


def test_retry_of_a_retry_merges_three_batches_latest_wins(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    make_batch_file(capsys, tmp_path, 9)
    fake.plan(fail_custom_ids={"id_1", "id_4", "id_7"}, error_status=500)
    fake.plan(fail_custom_ids={"id_4"}, error_status=429)  # the retry fails again, differently
    fake.plan()
    first = start(capsys, ORIGINAL)
    finish(capsys, first)
    assert run_cli(capsys, "utils", "retry-failed", first, "-o", "retry.jsonl")[0] == 0
    second = start(capsys, "retry.jsonl")
    assert finish(capsys, second, "-o", "second.jsonl")[0] == 4

    # judged by both batches: only id_4 is left, with the LATER batch's reason
    code, report = cli_json(capsys, "utils", "retry-failed", second, "-o", "retry.jsonl")
    assert code == 0
    assert report["retried"] == 1 and report["ok"] == 8 and report["total"] == 9
    assert report["failed_by_reason"] == {"429 rate_limit_exceeded": 1}
    assert [b["id"] for b in report["batches"]] == [first, second]
    assert report["parent_digest"] == digest_of(Path(ORIGINAL))  # the root, not the retry
    assert Path(report["requests_file"]).name == ORIGINAL
    assert lines_of(Path("retry.jsonl")) == original_lines([4])

    third = start(capsys, "retry.jsonl")
    code, out, err = finish(capsys, ORIGINAL, "--csv", "all.csv")
    assert code == 0, err
    assert all(b in out for b in (first, second, third))
    rows = read_csv(Path("all.csv"))
    assert [(r["Name"], r["status"]) for r in rows] == [(f"P{i}", "ok") for i in range(9)]


def test_expired_batch_retries_what_never_ran(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    make_batch_file(capsys, tmp_path, 9)
    fake.plan("expired", stop_after=5)
    batch = start(capsys, ORIGINAL)
    assert finish(capsys, batch)[0] == 4
    code, out, err = run_cli(capsys, "utils", "retry-failed", batch, "-o", "retry.jsonl")
    assert code == 0, err
    assert "4 expired" in out and "failed" not in out.split("\n")[1]
    assert f"{batch} (expired)" in err
    retried = [json.loads(x)["custom_id"] for x in lines_of(Path("retry.jsonl"))]
    done = {x["custom_id"] for x in fake.output_lines(batch)}
    assert len(retried) == 4 and not set(retried) & done
    assert retried == sorted(retried, key=lambda c: int(c[3:]))  # original order
    start(capsys, "retry.jsonl")
    code, _, err = finish(capsys, ORIGINAL, "--csv", "t.csv")
    assert code == 0, err
    assert [r["status"] for r in read_csv(Path("t.csv"))] == ["ok"] * 9


def test_cancelled_batch_requests_without_a_result_are_missing(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    make_batch_file(capsys, tmp_path, 9)
    fake.plan("cancelled", stop_after=3)  # the fake omits the requests that never ran
    batch = start(capsys, ORIGINAL)
    finish(capsys, batch)
    code, report = cli_json(capsys, "utils", "retry-failed", ORIGINAL, "-o", "retry.jsonl")
    assert code == 0
    assert report["ok"] == 3 and report["missing"] == 6 and report["retried"] == 6
    assert report["batches"] == [{"id": batch, "status": "cancelled"}]
    assert len(lines_of(Path("retry.jsonl"))) == 6


def test_everything_failed_gives_the_original_content_and_still_merges(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """A retry of every request is the original's very bytes: start-batch needs --force (a
    completed batch of that content exists), and the join still finds the data."""
    make_batch_file(capsys, tmp_path, 4)
    fake.plan(fail_every=1, error_status=500)
    fake.plan()
    batch = start(capsys, ORIGINAL)
    finish(capsys, batch)
    code, out, err = run_cli(capsys, "utils", "retry-failed", batch, "-o", "retry.jsonl")
    assert code == 0, err
    assert Path("retry.jsonl").read_bytes() == Path(ORIGINAL).read_bytes()
    assert "start-batch retry.jsonl --force" in out
    start(capsys, "retry.jsonl", "--force")
    code, _, err = finish(capsys, ORIGINAL, "--csv", "t.csv")
    assert code == 0, err
    rows = read_csv(Path("t.csv"))
    assert [(r["Name"], r["status"]) for r in rows] == [(f"P{i}", "ok") for i in range(4)]


def test_a_batch_still_running_is_not_retried(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    make_batch_file(capsys, tmp_path, 4)
    batch = start(capsys, ORIGINAL)
    fake.auto_advance = False
    fake.advance(steps=2)
    code, _, err = run_cli(capsys, "utils", "retry-failed", ORIGINAL, "-o", "retry.jsonl")
    assert code == 1 and "Traceback" not in err
    assert f"batch {batch} is still in_progress" in err and "cancel-batch" in err
    assert not Path("retry.jsonl").exists()


def test_results_file_with_requests_works_offline_and_checks_the_pairing(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_batch_file(capsys, tmp_path, 9)
    fake.plan(fail_every=3, error_status=429)
    batch = start(capsys, ORIGINAL)
    finish(capsys, batch, "-o", "merged.jsonl")
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "elsewhere"))  # another machine
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")  # and no service at all

    code, out, err = run_cli(capsys, "utils", "retry-failed", "merged.jsonl", "-o", "r.jsonl")
    assert code == 1 and "--requests" in err and "Traceback" not in err
    assert not Path("r.jsonl").exists()

    code, out, err = run_cli(
        capsys, "utils", "retry-failed", "merged.jsonl", "--requests", ORIGINAL, "-o", "r.jsonl"
    )
    assert code == 0, err
    assert "3 failed (429 rate_limit_exceeded: 3)" in out
    assert lines_of(Path("r.jsonl")) == original_lines([2, 5, 8])

    # a raw output file holds the successes only: the failures have no result there
    output_file = Path(fake.batches[batch].output_file_id + ".jsonl")
    output_file.write_bytes(fake.file_content(fake.batches[batch].output_file_id))
    code, report = cli_json(
        capsys, "utils", "retry-failed", output_file, "--requests", ORIGINAL, "-o", "r2.jsonl"
    )
    assert code == 0
    assert report["missing"] == 3 and report["failed"] == 0 and report["ok"] == 6
    assert Path("r2.jsonl").read_bytes() == Path("r.jsonl").read_bytes()

    # results that do not answer the given request file are refused
    other = tmp_path / "other.jsonl"
    other.write_bytes(b"".join(original_lines([0, 1, 2])).replace(b'"id_', b'"other_'))
    code, out, err = run_cli(
        capsys, "utils", "retry-failed", "merged.jsonl", "--requests", other, "-o", "r3.jsonl"
    )
    assert code == 1 and "not in" in err and "Traceback" not in err
    assert not Path("r3.jsonl").exists()


def test_batch_unknown_to_the_ledger_needs_requests_then_merges(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _template, data = make_batch_file(capsys, tmp_path, 6)
    fake.plan(fail_custom_ids={"id_0", "id_5"}, error_status=500)
    fake.plan()
    batch = start(capsys, ORIGINAL)
    finish(capsys, batch)
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "new-home"))  # another machine
    code, _, err = run_cli(capsys, "utils", "retry-failed", batch, "-o", "retry.jsonl")
    assert code == 1 and "--requests" in err and "Traceback" not in err

    short = tmp_path / "short.jsonl"
    short.write_bytes(b"".join(original_lines([0, 1])))
    code, _, err = run_cli(
        capsys, "utils", "retry-failed", batch, "--requests", short, "-o", "retry.jsonl"
    )
    assert code == 1 and "6 requests" in err  # not this batch's request file

    code, _, err = run_cli(
        capsys, "utils", "retry-failed", batch, "--requests", ORIGINAL, "-o", "retry.jsonl"
    )
    assert code == 0, err
    assert lines_of(Path("retry.jsonl")) == original_lines([0, 5])
    start(capsys, "retry.jsonl")
    code, _, err = finish(capsys, ORIGINAL, "--csv", "t.csv", "--data", data)
    assert code == 0, err
    assert [(r["Name"], r["status"]) for r in read_csv(Path("t.csv"))] == [
        (f"P{i}", "ok") for i in range(6)
    ]


def test_user_mistakes_are_clear_errors(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    make_batch_file(capsys, tmp_path, 3)
    fake.plan(fail_every=2)
    batch = start(capsys, ORIGINAL)
    finish(capsys, batch)
    before = Path(ORIGINAL).read_bytes()

    def refused(*args: str | Path, exit_code: int = 1) -> str:
        code, _out, err = run_cli(capsys, "utils", "retry-failed", *args)
        assert code == exit_code, err
        assert "Traceback" not in err and "error: " in err
        return err

    assert "would destroy it" in refused(batch, "-o", ORIGINAL)
    assert Path(ORIGINAL).read_bytes() == before
    assert "no batch batch_doesnotexist" in refused(
        "batch_doesnotexist", "-o", "r.jsonl", exit_code=3
    )
    assert "only .jsonl" in refused(batch, "-o", "retry.txt")
    assert "no such file" in refused("nowhere/results.jsonl", "-o", "r.jsonl")
    assert "--requests goes with" in refused(ORIGINAL, "--requests", ORIGINAL, "-o", "r.jsonl")
    stranger = tmp_path / "stranger.jsonl"
    stranger.write_bytes(b"".join(original_lines([0])).replace(b"id_0", b"x_0"))
    assert "knows no batch" in refused(stranger, "-o", "r.jsonl")
    # another request file with batches of its own is not overwritten either
    shutil.copy(ORIGINAL, "kept.jsonl")
    other = Path("other.jsonl")
    other.write_bytes(stranger.read_bytes())
    start(capsys, other)
    assert "other batches" in refused(batch, "-o", other)
    assert other.read_bytes() == stranger.read_bytes()
    assert not Path("r.jsonl").exists()


def test_sharded_results_hint_names_one_retry_per_request_file(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    make_batch_file(capsys, tmp_path, 6, "--max-requests", "3")
    fake.plan()
    fake.plan(fail_custom_ids={"id_4"}, error_status=500)
    first = start(capsys, "batch-requests-001.jsonl")
    second = start(capsys, "batch-requests-002.jsonl")
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch-requests-001.jsonl", "batch-requests-002.jsonl",
        "--csv", "t.csv", *WAIT,
    )  # fmt: skip
    assert code == 4
    # only the file with a failure gets a retry command: the first one all succeeded
    assert "retry-failed batch-requests-001.jsonl" not in err
    assert "utils retry-failed batch-requests-002.jsonl -o batch-requests-002-retry.jsonl" in err
    code, out, _ = run_cli(capsys, "utils", "retry-failed", first, "-o", "one.jsonl")
    assert code == 0 and "Nothing to retry" in out
    code, out, _ = run_cli(capsys, "utils", "retry-failed", second, "-o", "two.jsonl")
    assert code == 0 and "(1 of 3 requests" in out
    assert lines_of(Path("two.jsonl")) == original_lines([4], Path("batch-requests-002.jsonl"))
    start(capsys, "two.jsonl")
    code, _, err = run_cli(
        capsys, "get-batch-results", "batch-requests-001.jsonl", "batch-requests-002.jsonl",
        "--csv", "t.csv", *WAIT,
    )  # fmt: skip
    assert code == 0, err
    assert [(r["Name"], r["status"]) for r in read_csv(Path("t.csv"))] == [
        (f"P{i}", "ok") for i in range(6)
    ]


def test_seed_fixtures_real_output_as_results_file(
    capsys: Capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The REAL Batch output for the seed requests: nothing to retry; with three answers
    dropped, exactly those three original lines come back."""
    seed = need_seed()
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    requests = seed / "batch-requests.jsonl"
    real = seed / "batch-responses.openai.jsonl"
    code, out, err = run_cli(
        capsys, "utils", "retry-failed", real, "--requests", requests, "-o", "r.jsonl"
    )
    assert code == 0, err
    assert "Nothing to retry: all 100 requests" in out and not Path("r.jsonl").exists()

    kept = [x for x in real.read_bytes().splitlines(keepends=True)
            if json.loads(x)["custom_id"] not in {"id_0", "id_42", "id_99"}]  # fmt: skip
    partial = tmp_path / "partial.jsonl"
    partial.write_bytes(b"".join(kept))
    code, report = cli_json(
        capsys, "utils", "retry-failed", partial, "--requests", requests, "-o", "r.jsonl"
    )
    assert code == 0
    assert report["missing"] == 3 and report["ok"] == 97
    assert lines_of(Path("r.jsonl")) == original_lines([0, 42, 99], requests)


def test_a_retry_that_fails_again_prints_a_start_command_that_starts_it(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """The second retry has the first retry's content; plain start-batch would only show the
    finished batch of that content ("Already started ... completed") and start nothing."""
    make_batch_file(capsys, tmp_path, 6)
    fake.plan(fail_custom_ids={"id_1", "id_4"}, error_status=500)
    fake.plan(fail_custom_ids={"id_1", "id_4"}, error_status=500)  # the retry fails the same way
    fake.plan()
    first = start(capsys, ORIGINAL)
    finish(capsys, first)
    assert run_cli(capsys, "utils", "retry-failed", ORIGINAL, "-o", "retry.jsonl")[0] == 0
    second = start(capsys, "retry.jsonl")
    finish(capsys, second)

    code, out, err = run_cli(capsys, "utils", "retry-failed", ORIGINAL, "-o", "retry2.jsonl")
    assert code == 0, err
    assert lines_of(Path("retry2.jsonl")) == lines_of(Path("retry.jsonl"))
    (command,) = [
        line.split("Start it:", 1)[1].strip() for line in out.splitlines() if "Start it:" in line
    ]
    assert command.startswith("openai-batch ")
    args = shlex.split(command)[1:]
    code, started = cli_json(capsys, *args)
    assert code == 0 and started[0]["id"] not in (first, second)
    assert not started[0].get("reused")
    code, out, err = finish(capsys, ORIGINAL, "--csv", "all.csv")
    assert code == 0, err
    assert [r["status"] for r in read_csv(Path("all.csv"))] == ["ok"] * 6
