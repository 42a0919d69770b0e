"""service/: the layer that talks HTTP returns data and tells notices; it never prints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI
from fake_profiles import groq_like
from openai_batch.service import api, notices

Capsys = pytest.CaptureFixture[str]


def _requests(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "q"}]}
    line = {"custom_id": "id_0", "method": "POST", "url": "/v1/chat/completions", "body": body}
    path.write_text(json.dumps(line) + "\n", encoding="utf-8")
    return path


def test_strict_reports_are_notices_for_a_listener_not_prints(
    fake_api: FakeOpenAI, tmp_path: Path, capsys: Capsys
) -> None:
    groq_like().install(fake_api)  # file objects without `status`
    told: list[str] = []
    conn = api.connect(strict=True)
    with notices.listening(told.append):
        api.upload_file(conn, _requests(tmp_path))
        api.upload_file(conn, _requests(tmp_path))  # told once per field and connection
    assert len(told) == 1 and told[0].startswith("strict: ") and "status" in told[0]
    api.upload_file(conn, _requests(tmp_path))  # nobody listens: nothing is printed
    assert capsys.readouterr() == ("", "")
    with notices.listening(told.append):
        api.upload_file(api.connect(strict=True), _requests(tmp_path))  # a new connection
    assert len(told) == 2


def test_the_innermost_listener_hears_and_leaving_restores_the_outer() -> None:
    outer: list[str] = []
    inner: list[str] = []
    notices.tell("nobody")
    with notices.listening(outer.append):
        with notices.listening(inner.append):
            notices.tell("a")
        notices.tell("b")
    notices.tell("nobody again")
    assert (outer, inner) == (["b"], ["a"])
