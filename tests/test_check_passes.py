"""A request file this build passed in full is not checked again; anything else is.

start-batch, upload-batch-file and `utils validate` remember in the ledger that a file's exact
bytes passed the pre-upload check under a stamp (this build's code and dependencies, the
service's limits: validate/stamp.py). A file edited since, a pass by another build or against
other limits, is checked in full again and refused as before.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from fake_openai import FakeOpenAI
from helpers import assert_clean_error, run_cli
from openai_batch.ledger.checkedfiles import CheckedFile
from openai_batch.ledger.digests import digest_of
from openai_batch.ledger.store import open_ledger
from openai_batch.requestfile.limits import OPENAI, FileLimits
from openai_batch.service.profiles import select
from openai_batch.validate.stamp import check_stamp

REFUSED = "would be rejected by the Batch API"


def request_file(path: Path, temperature: float = 1, rows: int = 3) -> Path:
    """Chat requests; a temperature over 2 is refused by the check (the fake takes it)."""
    lines = [
        {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions",
         "body": {"model": "gpt-4o-mini", "temperature": temperature,
                  "messages": [{"role": "user", "content": f"row {i}"}]}}
        for i in range(rows)
    ]  # fmt: skip
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return path


def passes(digest: str, limits: FileLimits) -> list[CheckedFile]:
    with open_ledger() as ledger:
        found = ledger.checked_file(digest, check_stamp(limits))
    return [found] if found is not None else []


def remember(path: Path, stamp: str) -> None:
    """A pass recorded for `path`'s bytes under `stamp`, as an earlier check would have."""
    with open_ledger() as ledger:
        ledger.record_checked_file(
            CheckedFile(digest_of(path), stamp, 3, "/v1/chat/completions", "gpt-4o-mini", 0)
        )


def test_a_file_that_passes_is_remembered_with_what_the_check_found(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = request_file(tmp_path / "good.jsonl")
    code, _out, _err = run_cli(capsys, "utils", "validate", good)
    assert code == 0
    [found] = passes(digest_of(good), select(None).limits)
    assert (found.requests, found.endpoint, found.model, found.warnings) == (
        3, "/v1/chat/completions", "gpt-4o-mini", 0,
    )  # fmt: skip
    code, _out, _err = run_cli(capsys, "start-batch", good)
    assert code == 0 and fake_api.batch_create_count == 1


def test_a_file_that_fails_is_not_remembered(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    code, _out, _err = run_cli(capsys, "utils", "validate", bad)
    assert code == 1
    code, _out, err = run_cli(capsys, "start-batch", bad)
    assert_clean_error(code, err, REFUSED, "temperature")
    assert passes(digest_of(bad), select(None).limits) == []


def test_a_file_edited_by_hand_after_it_passed_is_checked_again(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = request_file(tmp_path / "r.jsonl")
    code, _out, _err = run_cli(capsys, "upload-batch-file", path)
    assert code == 0 and passes(digest_of(path), select(None).limits)
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('"temperature": 1,', '"temperature": 5,', 1), encoding="utf-8")
    code, _out, err = run_cli(capsys, "start-batch", path)
    assert_clean_error(code, err, REFUSED, "line 1: body.temperature")
    assert fake_api.batch_create_count == 0


def test_a_pass_by_another_build_lets_nothing_through(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    remember(bad, "a stamp of another build")
    remember(bad, check_stamp(FileLimits(requests=10)))  # this build, other limits
    code, _out, err = run_cli(capsys, "start-batch", bad)
    assert_clean_error(code, err, REFUSED, "temperature")
    code, _out, err = run_cli(capsys, "upload-batch-file", bad)
    assert_clean_error(code, err, REFUSED, "temperature")
    assert fake_api.batch_create_count == 0


def test_a_file_this_build_passed_is_not_read_again(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Shown by a pass recorded for a file the check would refuse: only the ledger's word can
    let it through (the bytes are not checked again), and --no-check is not needed."""
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    remember(bad, check_stamp(select(None).limits))
    code, _out, _err = run_cli(capsys, "start-batch", bad)
    assert code == 0 and fake_api.batch_create_count == 1


@pytest.mark.parametrize(
    ("requests", "endpoint", "warnings"),
    [("many", "/v1/chat/completions", 0), (3, None, 0), (3, "/v1/chat/completions", -1)],
    ids=["count-as-text", "no-endpoint", "negative"],
)
def test_a_damaged_pass_in_the_ledger_is_no_pass(
    fake_api: FakeOpenAI,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    requests: object,
    endpoint: object,
    warnings: object,
) -> None:
    """A row damaged or written by hand: the file is checked (it crashed on int("many"), and a
    batch was asked for with no endpoint)."""
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    with open_ledger() as ledger, ledger.transaction() as db:
        db.execute(
            "INSERT INTO checked_files (digest, stamp, requests, endpoint, model, warnings, "
            "checked_at) VALUES (?, ?, ?, ?, 'gpt-4o-mini', ?, 0)",
            (digest_of(bad), check_stamp(select(None).limits), requests, endpoint, warnings),
        )
    code, _out, err = run_cli(capsys, "start-batch", bad)
    assert_clean_error(code, err, REFUSED, "temperature")
    assert fake_api.batch_create_count == 0


def stamp_in(src: Path) -> str:
    code = "from openai_batch.validate.stamp import check_stamp; print(check_stamp(OPENAI))"
    env = {**os.environ, "PYTHONPATH": str(src)}
    setup = "from openai_batch.requestfile.limits import OPENAI; "
    done = subprocess.run(
        [sys.executable, "-c", setup + code], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def test_the_stamp_changes_with_any_of_the_code_and_with_the_limits(tmp_path: Path) -> None:
    import openai_batch

    package = Path(openai_batch.__file__).parent
    copies = []
    for name in ("a", "b"):
        shutil.copytree(package, tmp_path / name / "openai_batch",
                        ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
        copies.append(tmp_path / name)
    assert stamp_in(copies[0]) == stamp_in(copies[1])  # the same code: the same build
    rules = copies[1] / "openai_batch" / "validate" / "body_rules.py"
    rules.write_text(rules.read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    assert stamp_in(copies[0]) != stamp_in(copies[1])
    assert check_stamp(OPENAI) != check_stamp(FileLimits(requests=10))
    assert check_stamp(OPENAI) == check_stamp(FileLimits())


# ---------------------------------------------------------------------------------------------
# Several files: checked in worker processes, with what one after another would give


SCAN_ALL = """
import contextlib, json, sys
from dataclasses import asdict
from openai_batch.errors import BatchError
from openai_batch.ledger.store import open_ledger
from openai_batch.requestfile import scanpool
from openai_batch.requestfile.limits import OPENAI

scanpool.PARALLEL_BYTES = int(sys.argv[1])
files = sys.argv[3:]
with open_ledger() if sys.argv[2] == "ledger" else contextlib.nullcontext() as ledger:
    try:
        infos = scanpool.scan_request_files(files, check=True, limits=OPENAI, ledger=ledger)
        out = [{**asdict(i), "path": str(i.path)} for i in infos]
    except BatchError as exc:
        out = [str(exc)]
print(json.dumps({"workers": scanpool._workers([__import__("pathlib").Path(f) for f in files]),
                  "outcome": out}))
"""


def scan_all(paths: list[Path], parallel_bytes: int, ledger: bool = False) -> tuple[int, list[Any]]:
    """scan_request_files in a process of its own (a fork needs a process with one thread;
    this one may have the fake service's), with this test's ledger or none."""
    mode = "ledger" if ledger else "none"
    args = [sys.executable, "-c", SCAN_ALL, str(parallel_bytes), mode, *map(str, paths)]
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    found = json.loads(done.stdout)
    return found["workers"], found["outcome"]


def needs_workers() -> None:
    if (os.cpu_count() or 1) < 2 or sys.platform != "linux":
        pytest.skip("one core, or no fork: the files are checked one after another")


def test_several_files_checked_in_workers_give_what_one_after_another_gives(
    tmp_path: Path,
) -> None:
    needs_workers()
    good = [request_file(tmp_path / f"good{i}.jsonl", rows=4 + i) for i in range(3)]
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    notes = tmp_path / "notes.txt"
    notes.write_text("x\n", encoding="utf-8")
    cases = [good, [*good, bad], [bad, good[0], notes], [good[0], notes, bad]]
    for files in cases:
        workers, pooled = scan_all(files, 0)
        assert workers == 2
        assert pooled == scan_all(files, 1 << 60)[1]  # as one after another
    assert scan_all(cases[0], 1 << 60)[0] == 1
    assert [info["requests"] for info in scan_all(good, 0)[1]] == [4, 5, 6]
    [refused] = scan_all(cases[1], 0)[1]
    assert REFUSED in str(refused) and "bad.jsonl" in str(refused)
    [refused] = scan_all(cases[2], 0)[1]
    assert "bad.jsonl" in str(refused)
    [refused] = scan_all(cases[3], 0)[1]
    assert "notes.txt" in str(refused) and "temperature" not in str(refused)


def test_files_checked_in_workers_are_remembered_and_not_read_again(tmp_path: Path) -> None:
    needs_workers()
    files = [request_file(tmp_path / f"r{i}.jsonl", rows=2 + i) for i in range(3)]
    workers, first = scan_all(files, 0, ledger=True)
    assert workers == 2
    expected = [
        CheckedFile(digest_of(f), check_stamp(OPENAI), 2 + i, "/v1/chat/completions",
                    "gpt-4o-mini", 0)
        for i, f in enumerate(files)
    ]  # fmt: skip
    assert [passes(digest_of(f), OPENAI)[0] for f in files] == expected
    remember(request_file(files[1], temperature=5, rows=5), check_stamp(OPENAI))
    _, second = scan_all(files, 0, ledger=True)  # r1: a refused temperature, and a pass
    assert [i["digest"] for i in second] == [digest_of(f) for f in files]
    assert [i["digest"] for i in first] != [i["digest"] for i in second]
    assert [i["requests"] for i in second] == [2, 3, 4]  # r1's (5 lines) from the pass
    _, third = scan_all(files, 0)  # without the ledger: read, and refused
    assert REFUSED in str(third[0]) and "r1.jsonl" in str(third[0])


def test_validate_still_checks_when_the_ledger_cannot_be_opened(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Remembering a pass is a convenience: `utils validate` says why it could not, and checks."""
    home = tmp_path / "home"
    home.write_text("a file, not a folder\n", encoding="utf-8")
    monkeypatch.setenv("OPENAI_BATCH_HOME", str(home))
    good = request_file(tmp_path / "good.jsonl")
    code, out, err = run_cli(capsys, "utils", "validate", good)
    assert code == 0 and "— ok" in out
    assert "warning: the files that pass are not remembered" in err and "Traceback" not in err
    bad = request_file(tmp_path / "bad.jsonl", temperature=5)
    code, out, err = run_cli(capsys, "utils", "validate", bad)
    assert code == 1 and "temperature" in out


KILLED_WORKER = """
import os, signal, sys
from pathlib import Path
from openai_batch.errors import BatchError
from openai_batch.requestfile import scanpool
from openai_batch.requestfile.limits import OPENAI

scanpool.PARALLEL_BYTES = 0
real = scanpool.read_and_check
def killed_on_the_second(path, **kwargs):
    if path.name == "b.jsonl":
        os.kill(os.getpid(), signal.SIGKILL)  # as the out-of-memory killer would
    return real(path, **kwargs)
scanpool.read_and_check = killed_on_the_second
try:
    scanpool.scan_request_files([Path(p) for p in sys.argv[1:]], check=True, limits=OPENAI)
except BatchError as exc:
    print(exc)
    sys.exit(1)
"""


def test_a_worker_killed_mid_check_is_an_error_not_a_hang(tmp_path: Path) -> None:
    """multiprocessing.Pool waited forever for the killed worker's answer."""
    needs_workers()
    files = [request_file(tmp_path / f"{n}.jsonl") for n in "ab"]
    done = subprocess.run(
        [sys.executable, "-c", KILLED_WORKER, *map(str, files)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "a worker process checking the request files stopped" in done.stdout
    assert "Traceback" not in done.stderr


def test_passes_under_stamps_long_unused_or_too_old_are_dropped(tmp_path: Path) -> None:
    """The ledger keeps passes only under the few stamps used last (each build, and each
    service's limits, checks under a stamp of its own; an upgraded install never matches its
    old ones again) and for a limited time, so the table does not grow forever. Dropping a pass
    costs only a check of that file again."""
    from openai_batch.ledger import checkedfiles

    count = checkedfiles.KEPT_STAMPS + 2  # stamp-0 ... stamp-5, recorded in that order
    files = [request_file(tmp_path / f"r{i}.jsonl", rows=i + 1) for i in range(count)]
    stamps = [f"stamp-{i}" for i in range(count)]
    for path, stamp in zip(files, stamps, strict=True):
        remember(path, stamp)
    again = request_file(tmp_path / "again.jsonl", rows=9)
    remember(again, stamps[0])  # stamp-0 used again: among the last used, its old pass gone

    def kept() -> list[bool]:
        with open_ledger() as ledger:
            pairs = [*zip(files, stamps, strict=True), (again, stamps[0])]
            return [ledger.checked_file(digest_of(p), s) is not None for p, s in pairs]

    assert kept() == [False, False, False, True, True, True, True]
    with open_ledger() as ledger, ledger.transaction() as db:  # stamp-3's pass long unused
        age = checkedfiles.KEPT_SECONDS + 60
        db.execute("UPDATE checked_files SET checked_at = checked_at - ?, used_at = used_at - ? "
                   "WHERE stamp = ?", (age, age, stamps[3]))  # fmt: skip
    remember(files[0], stamps[0])
    assert kept() == [True, False, False, False, True, True, True]


DAY = 24 * 3600


def _days_go_by(days: float) -> None:
    """Every pass recorded and used `days` earlier than it was (each time the table holds)."""
    with open_ledger() as ledger, ledger.transaction() as db:
        columns = {row["name"] for row in db.execute("PRAGMA table_info(checked_files)")}
        for column in sorted(columns & {"checked_at", "used_at"}):
            db.execute(f"UPDATE checked_files SET {column} = {column} - ?", (days * DAY,))


def _kept(path: Path, stamp: str) -> bool:
    """Whether the ledger holds a pass for `path` under `stamp` (looked at, not used)."""
    with open_ledger() as ledger:
        row = ledger.db.execute(
            "SELECT 1 FROM checked_files WHERE digest = ? AND stamp = ?", (digest_of(path), stamp)
        ).fetchone()
    return row is not None


def test_a_pass_used_again_and_again_outlives_the_days_since_it_was_recorded(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Passes were kept 90 days from when they were recorded: a file started again and again in
    a long project was read again once its pass was 90 days old. They are kept 90 days from
    their last use."""
    from openai_batch.ledger import checkedfiles

    bad = request_file(tmp_path / "bad.jsonl", temperature=5)  # only the ledger lets it through
    stamp = check_stamp(select(None).limits)
    remember(bad, stamp)
    _days_go_by(checkedfiles.KEPT_SECONDS / DAY - 1)  # recorded 89 days ago
    code, _out, err = run_cli(capsys, "upload-batch-file", bad)  # the pass is used
    assert code == 0 and fake_api.upload_count == 1, err
    _days_go_by(2)  # recorded 91 days ago, last used 2 days ago
    remember(request_file(tmp_path / "other.jsonl", rows=5), stamp)  # a record drops old passes
    assert _kept(bad, stamp)
    _days_go_by(checkedfiles.KEPT_SECONDS / DAY)  # now unused for 92 days
    remember(request_file(tmp_path / "third.jsonl", rows=6), stamp)
    assert not _kept(bad, stamp)


def test_a_stamp_whose_pass_was_used_lately_is_among_the_stamps_kept(tmp_path: Path) -> None:
    from openai_batch.ledger import checkedfiles

    count = checkedfiles.KEPT_STAMPS + 1
    files = [request_file(tmp_path / f"r{i}.jsonl", rows=i + 1) for i in range(count)]
    stamps = [f"stamp-{i}" for i in range(count)]
    for path, stamp in zip(files[:-1], stamps[:-1], strict=True):
        remember(path, stamp)
    with open_ledger() as ledger:  # stamp-0, recorded first, is used last
        assert ledger.checked_file(digest_of(files[0]), stamps[0]) is not None
    remember(files[-1], stamps[-1])  # one stamp too many: the one used longest ago goes
    assert [_kept(p, s) for p, s in zip(files, stamps, strict=True)] == [
        True, False, True, True, True
    ]  # fmt: skip


def test_a_ledger_from_before_last_use_was_kept_upgrades_with_its_passes(tmp_path: Path) -> None:
    """A ledger of schema 2 (passes with when they were recorded only): each pass counts as
    used when it was recorded, and is matched and dropped by that from then on."""
    import time

    from openai_batch.ledger import checkedfiles
    from openai_batch.ledger import schema as ledger_schema

    recent, old = request_file(tmp_path / "recent.jsonl"), request_file(tmp_path / "old.jsonl", 2)
    stamp = check_stamp(OPENAI)
    now = time.time()
    with pytest.MonkeyPatch.context() as schema_2:  # this test's temp home stays set
        schema_2.setattr(ledger_schema, "MIGRATIONS", ledger_schema.MIGRATIONS[:2])
        with open_ledger() as ledger, ledger.transaction() as db:
            assert ledger.schema_version() == 2
            old_at = now - checkedfiles.KEPT_SECONDS - DAY
            for path, at in ((recent, now - 10 * DAY), (old, old_at)):
                db.execute(
                    "INSERT INTO checked_files (digest, stamp, requests, endpoint, model, "
                    "warnings, checked_at) VALUES (?, ?, 3, '/v1/chat/completions', "
                    "'gpt-4o-mini', 0, ?)",
                    (digest_of(path), stamp, at),
                )
    with open_ledger() as ledger:
        assert ledger.schema_version() == ledger_schema.MIGRATIONS[-1][0] >= 3
        rows = ledger.db.execute("SELECT checked_at, used_at FROM checked_files").fetchall()
        assert len(rows) == 2 and all(row[0] == row[1] for row in rows)
        assert ledger.checked_file(digest_of(recent), stamp) is not None
    remember(request_file(tmp_path / "new.jsonl", rows=4), stamp)
    assert _kept(recent, stamp) and not _kept(old, stamp)
