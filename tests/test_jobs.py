"""Jobs larger than one batch: many shards, the enqueued-token quota, one command to follow them.

Everything drives the real CLI (in-process, or as subprocesses for kills and races) against the
strict fake server, which measures what it had in flight (`max_tokens_in_flight`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import signal
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI, estimate_tokens
from helpers import (
    HANG_SECONDS,
    ROOT,
    command_group,
    ctrl_c,
    kill_group,
    read_csv,
    read_jsonl,
    run_cli,
    wait_while_running,
)
from openai_batch.estimate.sampled import prompt_tokens
from openai_batch.ledger import jobstore
from openai_batch.ledger.store import open_ledger

Capsys = pytest.CaptureFixture[str]
FAST = ("--poll-interval", "0")


@pytest.fixture
def fake(fake_api: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("OPENAI_BATCH_STRICT", "1")
    return fake_api


def make_inputs(folder: Path, rows: int) -> tuple[Path, Path]:
    """A template and a table whose rows all have the same length (so shards weigh the same)."""
    template = folder / "t.json"
    template.write_text(
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "Classify this message: <<Text>>"}],
            }
        ),
        encoding="utf-8",
    )
    data = folder / "messages.csv"
    text = "".join(f"m{i:05d},message number {i:05d} about the weather\n" for i in range(rows))
    data.write_text("Id,Text\n" + text, encoding="utf-8")
    return template, data


def shard_weights(
    capsys: Capsys, template: Path, data: Path, per_shard: int
) -> list[tuple[int, int]]:
    """(our estimate, the fake's estimate) of each shard make-batch-file writes for these inputs."""
    code, _, err = run_cli(
        capsys, "make-batch-file", template, data, "--max-requests", per_shard, "-q"
    )
    assert code == 0, err
    weights = []
    for path in sorted(Path().glob("batch-requests-*.jsonl")):
        lines = read_jsonl(path)
        ours = prompt_tokens(path, len(lines))
        theirs = sum(estimate_tokens(line["body"]) for line in lines)
        weights.append((ours, theirs))
    return weights


def quota_for(weights: list[tuple[int, int]], admitted: int) -> int:
    """A quota that admits exactly `admitted` shards by our estimate and holds them at the fake."""
    quota = admitted * max(max(w) for w in weights)
    assert quota < (admitted + 1) * min(ours for ours, _ in weights), weights
    return quota


def assert_every_row_ok(path: Path, rows: int) -> list[dict[str, str]]:
    table = read_csv(path)
    assert [r["Id"] for r in table] == [f"m{i:05d}" for i in range(rows)]
    assert [r["custom_id"] for r in table] == [f"id_{i}" for i in range(rows)]
    assert all(r["status"] == "ok" for r in table)
    for i, r in enumerate(table):  # each answer is its own row's (the fake echoes the prompt)
        assert r["content"].endswith(f"message number {i:05d} about the weather")
    return table


# ---------------------------------------------------------------------------------------------


def test_seven_shards_run_two_at_a_time_under_the_quota(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 70)
    weights = shard_weights(capsys, template, data, 10)
    assert len(weights) == 7
    quota = quota_for(weights, 2)
    fake.enqueued_token_limit = quota  # overshooting would fail a batch here (and be seen below)

    code, out, err = run_cli(
        capsys,
        "run",
        template,
        data,
        "--max-requests",
        "10",
        "--max-enqueued-tokens",
        quota,
        "--wait",
        "--csv",
        "all.csv",
        *FAST,
    )
    assert code == 0, err
    assert fake.max_tokens_in_flight <= quota
    assert fake.max_concurrent_in_flight == 2  # the quota admitted two at a time, not fewer
    assert fake.upload_count == 7 and fake.batch_create_count == 7
    assert all(b.status == "completed" for b in fake.batches.values())
    assert "Job messages: 7 request files, 70 requests" in err
    assert out.count("Started batch: batch_") == 2  # the first pass; the rest as room freed
    assert "Table written to: all.csv (70 rows: 70 ok, 0 error)" in out
    assert_every_row_ok(Path("all.csv"), 70)
    lines = read_jsonl(Path("batch-responses.jsonl"))
    assert [x["custom_id"] for x in lines] == [f"id_{i}" for i in range(70)]
    for batch in fake.batches.values():  # the batches say which job and shard they are
        assert batch.metadata["job"] == "messages"
        assert batch.metadata["shard"].endswith("/7")

    # the same command again: nothing new is uploaded or started, the same files come out
    before = Path("all.csv").read_bytes()
    code, out, err = run_cli(
        capsys, "run", template, data, "--max-requests", "10", "--wait", "--csv", "all.csv", *FAST
    )
    assert code == 0, err
    assert out.count("Already started: batch_") == 7
    assert fake.upload_count == 7 and fake.batch_create_count == 7
    assert Path("all.csv").read_bytes() == before


def test_without_wait_the_queue_moves_with_each_command(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 30)
    weights = shard_weights(capsys, template, data, 10)
    quota = quota_for(weights, 1)
    fake.auto_advance = False
    code, out, err = run_cli(
        capsys,
        "run",
        template,
        data,
        "--max-requests",
        "10",
        "--max-enqueued-tokens",
        quota,
        "--job",
        "weather",
        *FAST,
    )
    assert code == 0, err
    assert fake.upload_count == 3 and fake.batch_create_count == 1  # all uploaded, one started
    assert "2 shards wait for room under the quota" in out
    assert "openai-batch get-batch-results --job weather -o batch-responses.jsonl --wait" in out
    table = [line.split() for line in out[out.index("Job weather:") :].splitlines()[2:5]]
    assert table[0][:2] == ["1/3", "batch-requests-001.jsonl"] and table[0][3] == "validating"
    assert table[0][2] in fake.batches
    assert [row[2:4] for row in table[1:]] == [["-", "queued"], ["-", "queued"]]

    code, out, _ = run_cli(capsys, "get-batch-results", "--job", "weather", *FAST)
    assert code == 0 and fake.batch_create_count == 1  # shard 1 still runs: no room
    fake.finish()
    code, out, _ = run_cli(capsys, "get-batch-results", "--job", "weather", *FAST)
    assert code == 0 and fake.batch_create_count == 2  # shard 1 done: shard 2 started
    assert "Started batch: batch_" in out and "batch-requests-002.jsonl" in out
    assert not Path("batch-responses.jsonl").exists()
    with open_ledger() as ledger:
        job = jobstore.load_job(ledger, "weather")
        assert [s.state for s in job.shards] == ["done", "running", "queued"]
        assert job.max_enqueued_tokens == quota
        assert all(s.prompt_tokens and s.prompt_tokens > 0 for s in job.shards)

    fake.auto_advance = True
    code, out, err = run_cli(
        capsys, "get-batch-results", "--job", "weather", "--csv", "w.csv", "--wait", *FAST
    )
    assert code == 0, err
    assert fake.batch_create_count == 3 and fake.max_concurrent_in_flight == 1
    assert_every_row_ok(Path("w.csv"), 30)

    code, out, _ = run_cli(capsys, "list-batches", "--job", "weather")
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["shard", "id"]
    assert [line.split()[0] for line in lines[1:]] == ["1/3", "2/3", "3/3"]
    assert all("completed" in line for line in lines[1:])
    assert len(fake.batches) == 3


def test_a_shard_failed_with_token_limit_exceeded_is_queued_again(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 30)
    fake.plan(token_limit_exceeded=True)  # the first batch created fails at validation
    code, out, err = run_cli(
        capsys, "run", template, data, "--max-requests", "10", "--wait", "--csv", "t.csv", *FAST
    )
    assert code == 0, err  # not reported as lost: restarted and completed
    assert fake.batch_create_count == 4
    failed = [b for b in fake.batches.values() if b.status == "failed"]
    assert len(failed) == 1 and failed[0].errors[0]["code"] == "token_limit_exceeded"
    assert "enqueued-token limit; queued again" in err
    assert "FAILED" not in out
    assert_every_row_ok(Path("t.csv"), 30)
    with open_ledger() as ledger:
        job = jobstore.load_job(ledger, "messages")
        assert [s.requeues for s in job.shards] == [1, 0, 0]
        assert all(s.status == "completed" for s in job.shards)
    code, listed = json_of(capsys, "list-batches", "--job", "messages")
    assert [b["openai_batch"]["shard"] for b in listed] == [1, 1, 2, 3]
    assert sorted(b["status"] for b in listed) == ["completed"] * 3 + ["failed"]


def test_a_lone_shard_over_the_limit_keeps_its_place_until_it_fits(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 5)
    fake.plan(token_limit_exceeded=True)
    fake.plan(token_limit_exceeded=True)
    code, _out, err = run_cli(
        capsys,
        "run",
        template,
        data,
        "--max-enqueued-tokens",
        "1",
        "--wait",
        "--csv",
        "o.csv",
        *FAST,
    )
    assert code == 0, err
    assert "over --max-enqueued-tokens 1: starting it alone" in err
    assert fake.batch_create_count == 3
    assert_every_row_ok(Path("o.csv"), 5)


def test_the_combined_csv_accounts_for_every_row(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 30)
    fake.plan(fail_custom_ids={"id_3", "id_7"}, error_status=500)  # shard 1
    fake.plan("expired", stop_after=4)  # shard 2: 6 requests never ran
    code, report = json_of(
        capsys, "run", template, data, "--max-requests", "10", "--wait", "--csv", "c.csv", *FAST
    )
    assert code == 4
    assert report["finished"] is True and report["job"]["name"] == "messages"
    assert [s["status"] for s in report["job"]["shards"]] == ["completed", "expired", "completed"]
    assert report["csv"]["rows"] == 30
    assert (report["csv"]["ok"], report["csv"]["error"], report["csv"]["missing"]) == (22, 8, 0)
    rows = read_csv(Path("c.csv"))
    assert [r["Id"] for r in rows] == [f"m{i:05d}" for i in range(30)]
    status = {r["custom_id"]: r["status"] for r in rows}
    assert status["id_3"] == status["id_7"] == "error"
    assert [status[f"id_{i}"] for i in range(10, 20)] == ["ok"] * 4 + ["error"] * 6
    assert rows[15]["error"].startswith("batch_expired")
    lines = read_jsonl(Path("batch-responses.jsonl"))
    assert [x["custom_id"] for x in lines] == [f"id_{i}" for i in range(30)]


def test_retries_of_a_shard_merge_into_the_job_results(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 30)
    fake.plan()  # shard 1 fine
    fake.plan(fail_custom_ids={"id_12", "id_17"}, error_status=500)  # shard 2
    args = ("run", template, data, "--max-requests", "10", "--wait", "--csv", "j.csv", *FAST)
    code, _, err = run_cli(capsys, *args)
    assert code == 4, err
    code, _, err = run_cli(
        capsys, "utils", "retry-failed", "batch-requests-002.jsonl", "-o", "retry.jsonl"
    )
    assert code == 0, err
    assert run_cli(capsys, "start-batch", "retry.jsonl")[0] == 0
    code, out, err = run_cli(
        capsys, "get-batch-results", "--job", "messages", "--csv", "j.csv", "--wait", *FAST
    )
    assert code == 0, err
    assert "merging 1 retry batch made" in out
    assert_every_row_ok(Path("j.csv"), 30)
    assert fake.batch_create_count == 4


def test_missing_rows_are_missing_not_dropped(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 20)
    fake.plan("cancelled", stop_after=3)  # cancelled batches leave no line for the rest
    code, out, err = run_cli(
        capsys, "run", template, data, "--max-requests", "10", "--wait", "--csv", "m.csv", *FAST
    )
    assert code == 4, err
    rows = read_csv(Path("m.csv"))
    assert len(rows) == 20
    assert [r["status"] for r in rows[:10]] == ["ok"] * 3 + ["missing"] * 7
    assert all(r["status"] == "ok" for r in rows[10:])
    assert "Table written to: m.csv (20 rows: 13 ok, 0 error, 7 missing)" in out


def test_start_batch_on_several_files_is_one_job(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 25)
    run_cli(capsys, "make-batch-file", template, data, "--max-requests", "10", "-q")
    files = sorted(str(p) for p in Path().glob("batch-requests-*.jsonl"))
    code, out, err = run_cli(capsys, "start-batch", *files, "--parallel", "2")
    assert code == 0, err
    assert out.count("Started batch: batch_") == 3 and fake.upload_count == 3
    assert "Job messages: 3 request files, 25 requests" in err  # named after the recorded data
    code, out, err = run_cli(
        capsys, "get-batch-results", "--job", "messages", "--csv", "s.csv", "--wait", *FAST
    )
    assert code == 0, err
    assert_every_row_ok(Path("s.csv"), 25)
    # the same files again are the same job: nothing new
    code, out, _ = run_cli(capsys, "start-batch", *files)
    assert code == 0 and out.count("Already started:") == 3 and fake.batch_create_count == 3


def test_start_batch_json_is_a_list_of_batches_or_one_job(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """The two shapes the README promises: one file prints a list of batch objects; files that
    form a job print the job, the batches it started and whether it finished."""
    template, data = make_inputs(tmp_path, 25)
    run_cli(capsys, "make-batch-file", template, data, "--max-requests", "10", "-q")
    files = sorted(str(p) for p in Path().glob("batch-requests-*.jsonl"))
    code, out, err = run_cli(capsys, "start-batch", *files, "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["finished"] is False and report["job"]["name"] == "messages"
    assert [s["path"] for s in report["job"]["shards"]] == [str(Path(f).resolve()) for f in files]
    batch_ids = [s["batch_id"] for s in report["job"]["shards"]]
    assert sorted(b["id"] for b in report["batches"]) == sorted(batch_ids)
    run_cli(capsys, "make-batch-file", template, data, "-o", "one.jsonl", "-q")
    code, out, err = run_cli(capsys, "start-batch", "one.jsonl", "--json")
    assert code == 0, err
    single = json.loads(out)
    assert isinstance(single, list) and len(single) == 1
    assert single[0]["id"].startswith("batch_") and single[0]["id"] not in batch_ids


def test_job_errors_are_clean(fake: FakeOpenAI, capsys: Capsys, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "nope")
    assert code == 1 and "no job named 'nope'" in err and "Traceback" not in err
    code, _, err = run_cli(capsys, "list-batches", "--job", "nope")
    assert code == 1 and "no job named 'nope'" in err
    template, data = make_inputs(tmp_path, 3)
    code, _, err = run_cli(capsys, "run", template, data, "--max-enqueued-tokens", "-5", *FAST)
    assert code == 1 and "cannot be negative" in err
    assert run_cli(capsys, "run", template, data, "--job", "j", *FAST)[0] == 0
    code, _, err = run_cli(capsys, "get-batch-results", "--job", "j", "batch_x")
    assert code == 1 and "not both" in err
    # other files under a job name that already started: refused, nothing started
    other = tmp_path / "other.csv"
    other.write_text("Id,Text\nx,another table\n", encoding="utf-8")
    code, _, err = run_cli(capsys, "run", template, other, "-o", "o.jsonl", "--job", "j", *FAST)
    assert code == 1 and "job 'j' was started with other request files" in err
    assert fake.batch_create_count == 1


def test_a_refused_job_name_with_a_space_is_quoted_in_the_hint(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """The command the refusal suggests can be pasted: the job's name is quoted for a shell."""
    template, data = make_inputs(tmp_path, 3)
    assert run_cli(capsys, "run", template, data, "--job", "my job", *FAST)[0] == 0
    other = tmp_path / "other.csv"
    other.write_text("Id,Text\nx,another table\n", encoding="utf-8")
    code, _, err = run_cli(
        capsys, "run", template, other, "-o", "o.jsonl", "--job", "my job", *FAST
    )
    assert code == 1 and "job 'my job' was started with other request files (1 file;" in err
    assert "`openai-batch get-batch-results --job 'my job'`" in err, err
    assert fake.batch_create_count == 1


def json_of(capsys: Capsys, *args: Any) -> tuple[int, Any]:
    code, out, err = run_cli(capsys, *args, "--json")
    assert "Traceback" not in err, err
    return code, json.loads(out)


# ---------------------------------------------------------------------------------------------
# Kills and races: the real command in other processes, the fake in this one


def test_killed_mid_job_resumes_without_doing_anything_twice(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 70)
    quota = quota_for(shard_weights(capsys, template, data, 10), 2)
    args = (
        "run",
        template,
        data,
        "--max-requests",
        "10",
        "--max-enqueued-tokens",
        quota,
        "--wait",
        "--csv",
        "k.csv",
        *FAST,
    )
    fake.auto_advance = False  # the first two batches stay in flight: the job is mid-way
    with command_group(*args, cwd=tmp_path) as proc:
        wait_while_running(proc, lambda: fake.batch_create_count >= 2, "two batches to start")
        wait_while_running(
            proc,
            lambda: sum(1 for m, p, _ in fake.log if m == "GET" and "/batches/" in p) >= 6,
            "the command to poll",
        )
        kill_group(proc)
    assert proc.returncode == -signal.SIGKILL
    assert fake.upload_count == 7 and fake.batch_create_count == 2
    assert not Path("k.csv").exists()

    fake.auto_advance = True
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert out.count("Already started: batch_") == 2
    assert fake.upload_count == 7 and fake.batch_create_count == 7  # nothing twice
    assert fake.max_tokens_in_flight <= quota
    assert_every_row_ok(Path("k.csv"), 70)


def test_killed_at_random_moments_still_ends_with_every_row_once(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    """Kill the command at successive moments of a running job; each rerun picks up."""
    template, data = make_inputs(tmp_path, 50)
    # a quota of 1 token: every shard is over it, so they run one at a time
    args = (
        "run",
        template,
        data,
        "--max-requests",
        "10",
        "--max-enqueued-tokens",
        "1",
        "--wait",
        "--csv",
        "r.csv",
        *FAST,
    )
    for target in (1, 3):  # kill once a first and then a third batch has been created
        with command_group(*args, cwd=tmp_path) as proc:
            started = lambda t=target: fake.batch_create_count >= t  # noqa: E731
            wait_while_running(proc, started, f"batch {target}")
            kill_group(proc)
    code, _, err = run_cli(capsys, *args)
    assert code == 0, err
    assert fake.batch_create_count == 5 and fake.upload_count == 5
    assert fake.max_concurrent_in_flight == 1
    assert_every_row_ok(Path("r.csv"), 50)


def test_ctrl_c_stops_following_the_job_not_its_batches(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 20)
    fake.auto_advance = False
    assert run_cli(capsys, "run", template, data, "--max-requests", "10", *FAST)[0] == 0
    with command_group(
        "get-batch-results", "--job", "messages", "--csv", "x.csv", "--wait", *FAST, cwd=tmp_path
    ) as proc:
        wait_while_running(
            proc,
            lambda: sum(1 for m, p, _ in fake.log if m == "GET" and "/batches/" in p) >= 4,
            "the command to poll",
        )
        ctrl_c(proc)
        out, err = proc.communicate(timeout=HANG_SECONDS)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "Stopped waiting" in err
    assert (
        "openai-batch get-batch-results --job messages -o batch-responses.jsonl --csv x.csv --wait"
        in err
    )
    assert "2 running" in out  # the job's table, as it stood
    assert all(b.status == "validating" for b in fake.batches.values())
    assert not any(p.endswith("/cancel") for _, p, _ in fake.log)


def test_two_processes_on_one_job_start_each_shard_once(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template, data = make_inputs(tmp_path, 70)
    quota = quota_for(shard_weights(capsys, template, data, 10), 2)
    with contextlib.ExitStack() as running:  # both killed on the way out, whatever happens
        procs = [
            running.enter_context(
                command_group(
                    "run",
                    template,
                    data,
                    "--max-requests",
                    "10",
                    "--max-enqueued-tokens",
                    quota,
                    "--wait",
                    "--csv",
                    f"p{n}.csv",
                    "--responses",
                    f"p{n}.jsonl",
                    *FAST,
                    cwd=tmp_path,
                )
            )
            for n in (1, 2)
        ]
        outputs = [p.communicate(timeout=HANG_SECONDS) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert fake.upload_count == 7 and fake.batch_create_count == 7
    assert fake.max_tokens_in_flight <= quota
    text = "".join(out for out, _ in outputs)
    assert "Traceback" not in text + "".join(err for _, err in outputs)
    for n in (1, 2):
        assert_every_row_ok(Path(f"p{n}.csv"), 70)
        assert Path(f"p{n}.jsonl").read_bytes() == Path("p1.jsonl").read_bytes()


# ---------------------------------------------------------------------------------------------
# The "done when": 120,000 emails, 6 shards, a quota of two, a kill and a restart


def emails_table(path: Path, rows: int) -> Path:
    """sample_data/emails.csv repeated to `rows` rows, each with its own id."""
    source = ROOT / "sample_data" / "emails.csv"
    if not source.is_file():
        pytest.skip("sample_data/emails.csv is not present")
    with open(source, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        originals = list(reader)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        for i in range(rows):
            row = list(originals[i % len(originals)])
            row[0] = f"e{i:06d}"
            writer.writerow(row)
    return path


@pytest.mark.slow
def test_done_when_120k_emails_in_six_shards_survive_a_kill(
    fake: FakeOpenAI, capsys: Capsys, tmp_path: Path
) -> None:
    template = ROOT / "templates" / "spam_classifier.json"
    if not template.is_file():
        pytest.skip("templates/spam_classifier.json is not present")
    data = emails_table(tmp_path / "emails.csv", 120_000)
    fake.progress_steps = 1  # 20,000 requests per step: the fake is not what is being timed
    run_cli(capsys, "make-batch-file", template, data, "--max-requests", "20000", "-q")
    files = sorted(Path().glob("batch-requests-*.jsonl"))
    assert len(files) == 6
    ours = [prompt_tokens(p, 20_000) for p in files]
    theirs = [sum(estimate_tokens(x["body"]) for x in read_jsonl(p)) for p in files]
    quota = 2 * max(*ours, *theirs)
    assert quota < 3 * min(ours)
    args = (
        "run",
        template,
        data,
        "--max-requests",
        "20000",
        "--max-enqueued-tokens",
        quota,
        "--wait",
        "--csv",
        "out.csv",
        *FAST,
    )

    fake.auto_advance = False
    with command_group(*args, cwd=tmp_path) as proc:
        wait_while_running(proc, lambda: fake.batch_create_count >= 2, "two shards to start")
        kill_group(proc)
    fake.auto_advance = True

    code, _out, err = run_cli(capsys, *args)
    assert code == 0, err
    assert fake.upload_count == 6 and fake.batch_create_count == 6
    assert fake.max_tokens_in_flight <= quota and fake.max_concurrent_in_flight == 2
    with open("out.csv", newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        count = 0
        for i, row in enumerate(reader):
            assert row["EmailID"] == f"e{i:06d}" and row["custom_id"] == f"id_{i}"
            assert row["status"] == "ok" and row["class_label"] in ("spam", "not_spam")
            count += 1
    assert count == 120_000
