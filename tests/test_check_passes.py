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
