"""The commands the tool suggests are spelled one way (ui/hints): quoted as a shell needs them,
so a file name with a space can be pasted back as it is shown."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from helpers import run_cli


def _requests(path: Path, *, model: str | None) -> Path:
    body: dict[str, object] = {"messages": [{"role": "user", "content": "hi"}]}
    if model:
        body["model"] = model
    line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions", "body": body}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_a_rejected_file_with_a_space_is_named_so_it_can_be_pasted(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _requests(tmp_path / "my requests.jsonl", model=None)  # no model: rejected
    code, _out, err = run_cli(capsys, "start-batch", path.name)
    assert code == 1 and "would be rejected" in err
    validate = shlex.join(["openai-batch", "utils", "validate", path.name])
    assert f"`{validate}`" in err
    assert fake_api.batch_create_count == 0


def test_a_file_never_started_points_at_start_batch_quoted(
    fake_api: FakeOpenAI, capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = _requests(tmp_path / "my requests.jsonl", model="gpt-4o-mini")
    code, _out, err = run_cli(capsys, "get-batch-results", path.name)
    assert code == 1 and "no batch was started from" in err
    assert "`openai-batch start-batch 'my requests.jsonl'`" in err
