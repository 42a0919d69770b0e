"""review.ReviewProcess: the child process answers exactly what the in-process functions do."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from helpers import HANG_SECONDS, command_group, ctrl_c, wait_while_running
from openai_batch.cli import main
from openai_batch.errors import BatchError
from openai_batch.estimate.options import EstimateOptions
from openai_batch.requestfile import review
from openai_batch.requestfile.make import check_first_line
from openai_batch.template.compile import load_template


def _make(tmp_path: Path, rows: int = 300) -> tuple[Path, Path]:
    template = tmp_path / "t.json"
    template.write_text(
        json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "<<Text>>"}]})
    )
    data = tmp_path / "d.csv"
    data.write_text("Text\n" + "".join(f'"row {i}, say ""hi"""\n' for i in range(rows)))
    return template, data


def test_child_review_equals_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    template, data = _make(tmp_path)
    assert (
        main(
            [
                "make-batch-file",
                str(template),
                str(data),
                "-o",
                str(tmp_path / "r.jsonl"),
                "-q",
                "--max-requests",
                "100",
            ]
        )
        == 0
    )
    files = [(p, 100) for p in sorted(tmp_path.glob("r-*.jsonl"))]
    child = review.ReviewProcess.start("o200k_base")
    assert child is not None
    try:
        for k in (1000, 30):
            got = child.review(files, k, EstimateOptions(expected_output=20))
            assert got is not None  # the child answered: no silent fallback
            assert got == review.review_files(files, k, options=EstimateOptions(expected_output=20))
        line = files[0][0].read_text().splitlines()[0]
        tmpl = load_template(template, ["Text"])
        assert child.check_first_line(line, "/v1/chat/completions", tmpl) == "gpt-4o-mini"
        bad = json.loads(line)
        del bad["body"]["model"]
        with pytest.raises(BatchError, match='no "model"'):  # redone here, with its message
            child.check_first_line(json.dumps(bad), "/v1/chat/completions", tmpl)
        assert check_first_line(line, "/v1/chat/completions", tmpl) == "gpt-4o-mini"
    finally:
        child.close()
    assert child._proc.returncode is not None  # no process left behind


def test_dead_child_means_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(tmp_path / "home"))
    template, data = _make(tmp_path, rows=10)
    assert (
        main(["make-batch-file", str(template), str(data), "-o", str(tmp_path / "r.jsonl"), "-q"])
        == 0
    )
    files = [(tmp_path / "r.jsonl", 10)]
    child = review.ReviewProcess.start("o200k_base")
    assert child is not None
    child._proc.kill()
    child._proc.wait()
    assert child.review(files, 500, {}) is None
    assert review.review_files(files, child=child) == review.review_files(files)
    child.close()


def test_make_batch_file_reports_the_same_from_a_child(tmp_path, monkeypatch, capsys):
    """The whole command, once with the review in a child process and once in this one: the
    same files, the same summary (estimate, problems, sample size)."""
    from helpers import cli_json

    template, data = _make(tmp_path, rows=700)
    template.write_text(  # an unknown field deep inside: a warning the review must find
        json.dumps(
            {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "<<Text>>", "nmae": "x"}],
                "max_tokens": 30,
            }
        )
    )
    from openai_batch.estimate import tokens

    summaries = {}
    for threshold in (0, 1 << 40):  # every data file reviewed in a child; none
        monkeypatch.setattr(review, "CHILD_PROCESS_BYTES", threshold)
        tokens.forget()  # as in a fresh process: a child is worth starting
        with review.warm_up(data=data) as started:
            assert isinstance(started.child, review.ReviewProcess) == (threshold == 0)
        tokens.forget()
        out = tmp_path / f"out-{threshold}"
        code, summary = cli_json(capsys, "make-batch-file", template, data, "-o", out / "r.jsonl")
        assert code == 0
        for f in summary["files"]:
            f["path"] = Path(f["path"]).name
        summaries[threshold] = summary
    child, here = summaries.values()
    assert child == here
    assert child["checked_requests"] == 500  # a sample: 700 rows
    assert any("unknown field" in p["message"] for p in child["problems"])


def test_the_summary_says_when_it_checked_a_sample(tmp_path, capsys):
    from helpers import run_cli

    template, data = _make(tmp_path, rows=700)
    code, out, _ = run_cli(capsys, "make-batch-file", template, data, "-o", tmp_path / "a.jsonl")
    assert code == 0
    assert "Checked 500 of the 700 requests, sampled at random" in out
    assert "Estimate: 700 requests · ~" in out  # the count is marked as scaled
    small = tmp_path / "small.csv"
    small.write_text("Text\n" + "".join(f"row {i}\n" for i in range(20)))
    code, out, _ = run_cli(capsys, "make-batch-file", template, small, "-o", tmp_path / "b.jsonl")
    assert code == 0
    assert "Checked" not in out and "Estimate: 20 requests · " in out and "~" not in out


# Ctrl-C while the child is stuck (stopped, swapping): make used to wait for its answer for ever.


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # gone meanwhile
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc")
def test_ctrl_c_does_not_wait_for_a_stuck_review_child(tmp_path: Path) -> None:
    template, data = _make(tmp_path, rows=60_000)  # over CHILD_PROCESS_BYTES: a review child
    assert data.stat().st_size >= review.CHILD_PROCESS_BYTES
    with command_group("make-batch-file", template, data, "-o", "r.jsonl", cwd=tmp_path) as proc:
        wait_while_running(proc, lambda: bool(_children(proc.pid)), "the review child")
        (child,) = _children(proc.pid)
        os.kill(child, signal.SIGSTOP)  # stuck: it will never answer
        # the first part is made once the first block rendered and its check was asked
        wait_while_running(proc, lambda: any(tmp_path.glob(".r.jsonl.*.part")), "rendering")
        ctrl_c(proc)
        _, err = proc.communicate(timeout=HANG_SECONDS)  # it used to hang here for ever
    assert proc.returncode == 130, err[-500:]
    assert "Traceback" not in err and "error: interrupted" in err
    assert not list(tmp_path.glob(".*.part"))


def test_an_abandoned_child_answers_no_one(tmp_path: Path) -> None:
    """A question in flight to a stuck child ends at once when the child is abandoned, and is
    not worked out in this process instead (nobody wants the answer)."""
    import threading

    line = json.dumps(
        {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}}
    )  # fmt: skip
    child = review.ReviewProcess.start("o200k_base")
    assert child is not None
    os.kill(child._proc.pid, signal.SIGSTOP)
    outcome: list[BaseException | str | None] = []

    def ask() -> None:
        try:
            outcome.append(child.check_first_line(line, "/v1/chat/completions", None))
        except BaseException as exc:  # what the asking thread ends with
            outcome.append(exc)

    asking = threading.Thread(target=ask)
    asking.start()
    try:
        asking.join(0.5)
        assert asking.is_alive()  # waiting for the stuck child
        child.abandon()
        asking.join(HANG_SECONDS)
        assert not asking.is_alive()
        assert len(outcome) == 1 and isinstance(outcome[0], review.Abandoned)
    finally:
        child.abandon()
        asking.join(HANG_SECONDS)
        child.close()
    assert child._proc.returncode is not None  # no process left behind
