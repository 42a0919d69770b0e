"""One definition of each Batch API limit: every module that checks a request file uses it."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import run_cli
from openai_batch.requestfile import limits as requestfile_limits
from openai_batch.requestfile.limits import OPENAI, FileLimits, human_decimal
from openai_batch.validate import api_schema, sdk_types
from openai_batch.validate import check as validate

SRC = Path(requestfile_limits.__file__).parents[1]


def test_the_limits_are_the_api_s_in_decimal_bytes():
    assert FileLimits(requests=50_000, file_bytes=200_000_000) == OPENAI
    assert OPENAI.describe() == "50,000 requests and 200 MB"
    assert OPENAI.exceeded_by(50_001, 1) and OPENAI.exceeded_by(1, 200_000_001)
    assert not OPENAI.exceeded_by(50_000, 200_000_000)
    assert human_decimal(1234) == "1,234 bytes"


def test_no_module_keeps_its_own_copy_of_a_limit():
    """The 207,286,890-byte file: BatchJob checked 200 MiB while upload checked 200 MB."""
    copies = re.compile(r"\b50_?000\b|\b200_?000_?000\b|200 \* 1024|200 \* 2 ?\*\* ?20")
    found = []
    for path in SRC.rglob("*.py"):
        if path == Path(requestfile_limits.__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            code = line.split("#")[0]
            if copies.search(code):
                found.append(f"{path.relative_to(SRC)}:{number}: {line.strip()}")
    assert found == []


def test_endpoints_are_the_ones_validate_checks_and_the_sdk_lists():
    assert set(requestfile_limits.ENDPOINTS) == set(sdk_types.BODY_TYPES)
    assert set(requestfile_limits.ENDPOINTS) == set(api_schema.endpoints())
    assert set(requestfile_limits.ENDPOINTS) <= set(validate.batch_endpoints())


def test_make_batch_file_refuses_more_than_the_limit(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "t.json").write_text(
        '{"model": "m", "messages": [{"role": "user", "content": "<<a>>"}]}'
    )
    (tmp_path / "d.csv").write_text("a\nx\n")
    code, _, err = run_cli(capsys, "make-batch-file", "t.json", "d.csv", "--max-bytes", "200000001")
    assert code == 1 and "at most 200MB (200,000,000 bytes)" in err
