"""utils chat-complete under a rate limit, and what it says about a server's errors.

The fake's token bucket (`fake.rate_limit`) answers 429 with `retry-after-ms` the way the API's
limiter does. These tests check outcomes (one run, every answer once, the limit really hit),
never timings: the pace itself is measured by benchmarks/bench_chat_complete.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from fake_openai import error_body
from helpers import assert_clean_error, read_jsonl, run_cli, write
from openai_batch.flow.chat_complete import default_output_path
from openai_batch.service.pacing import Limits, Pacer, parse_duration, retry_after

CHAT = "/v1/chat/completions"


def write_requests(path: Any, n: int) -> Any:
    lines = (
        {
            "custom_id": f"id_{i}",
            "method": "POST",
            "url": CHAT,
            "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q {i}"}]},
        }
        for i in range(n)
    )
    return write(path, "".join(json.dumps(line) + "\n" for line in lines))


def answers(path: Any) -> dict[str, int]:
    lines = read_jsonl(path)
    ids = [line["custom_id"] for line in lines]
    assert len(ids) == len(set(ids)), "a custom_id appears twice"
    return {line["custom_id"]: line["response"]["status_code"] for line in lines}


@pytest.mark.parametrize("headers", [True, False], ids=["rate-limit-headers", "429s-only"])
def test_every_request_is_answered_in_one_run_under_a_rate_limit(
    fake_api, tmp_path, capsys, headers
):
    """429s slow the run down; they never use up a request's retries (--max-retries 0)."""
    fake_api.rate_limit(40, burst=4, headers=headers)
    fake_api.latency = 0.02
    path = write_requests(tmp_path / "r.jsonl", 48)
    code, out, err = run_cli(
        capsys, "utils", "chat-complete", path, "-c", "16", "--max-retries", "0", "-q", "--json"
    )
    assert code == 0, err
    report = json.loads(out)
    assert report["complete"] and report["succeeded"] == 48 and report["failed"] == 0
    assert answers(default_output_path(path)) == {f"id_{i}": 200 for i in range(48)}
    assert fake_api.rate_limited_count > 0  # the limit was really hit
    assert report["rate_limited"] == fake_api.rate_limited_count
    if headers:  # the server's own numbers keep refusals rare
        assert fake_api.rate_limited_count < 48


def test_the_user_s_own_limit_keeps_clear_of_429s(fake_api, tmp_path, capsys):
    fake_api.rate_limit(1000, burst=1000)  # generous server: only --max-rps holds the pace
    path = write_requests(tmp_path / "r.jsonl", 12)
    code, out, err = run_cli(
        capsys, "utils", "chat-complete", path, "--max-rps", "50", "--max-tpm", "60000", "-q"
    )
    assert code == 0, err
    assert "12 of 12 requests answered" in out
    assert fake_api.rate_limited_count == 0


@pytest.mark.parametrize("flag", ["--max-rps", "--max-tpm", "--give-up-after"])
def test_limits_must_be_positive(tmp_path, capsys, flag):
    path = write_requests(tmp_path / "r.jsonl", 1)
    code, _, err = run_cli(capsys, "utils", "chat-complete", path, flag, "0")
    assert_clean_error(code, err, flag)


def test_a_server_refusing_everything_stops_after_the_stated_time(fake_api, tmp_path, capsys):
    fake_api.inject("POST", CHAT + "$", 429, times=None, retry_after_ms=20)
    path = write_requests(tmp_path / "r.jsonl", 5)
    code, _, err = run_cli(
        capsys, "utils", "chat-complete", path, "--give-up-after", "0.5", "-c", "2", "-q"
    )
    assert_clean_error(code, err, "429 (rate limited) for 0.5 seconds", "--give-up-after")
    assert code == 3
    assert not default_output_path(path).exists()  # nothing answered, nothing written


def test_server_error_text_is_redacted_on_screen_and_in_the_output(
    fake_api, tmp_path, capsys, monkeypatch
):
    """A server that echoes the Authorization header must not put the key anywhere."""
    fake_api.api_key = "local-token-0123456789abcdef"  # not shaped like an OpenAI key
    fake_api.echo_auth = True

    def picky(line: dict[str, Any]) -> tuple[int, Any]:
        if line["body"]["messages"][0]["content"] == "q 1":
            return 400, error_body(400, "Invalid value for 'messages'.", param="messages")
        return fake_api.default_responder(line)

    fake_api.responder = picky
    monkeypatch.setenv("MY_LLM_KEY", fake_api.api_key)
    path = write_requests(tmp_path / "r.jsonl", 3)
    code, out, err = run_cli(
        capsys,
        "utils",
        "chat-complete",
        path,
        "--base-url",
        fake_api.base_url,
        "--api-key-env",
        "MY_LLM_KEY",
    )
    assert code == 4, err
    assert "Authorization: Bearer <redacted>" in err
    text = default_output_path(path).read_text()
    assert "Bearer <redacted>" in text
    assert fake_api.api_key not in out + err + text

    # a rejected key: the same redaction on the error line
    monkeypatch.setenv("MY_LLM_KEY", "local-wrong-token-0123456789")
    code, out, err = run_cli(
        capsys,
        "utils",
        "chat-complete",
        path,
        "--base-url",
        fake_api.base_url,
        "--api-key-env",
        "MY_LLM_KEY",
        "-o",
        tmp_path / "2.jsonl",
        "-q",
    )
    assert_clean_error(code, err, "MY_LLM_KEY was rejected (401)")
    assert "local-wrong-token" not in out + err


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("6m0s", 360.0), ("20ms", 0.02), ("1h2m3.5s", 3723.5), ("0.5", 0.5), ("1s", 1.0)],
)
def test_reset_durations_in_openai_s_format(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "soon", "5 s", "1x"])
def test_unreadable_reset_durations_are_ignored(text):
    assert parse_duration(text) is None


def test_retry_after_prefers_milliseconds_and_ignores_dates():
    assert retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert retry_after({"retry-after": "2"}) == 2.0
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert retry_after({"retry-after": "inf"}) is None


def test_the_progress_bar_shows_pace_and_share_of_429s():
    pacer = Pacer(Limits(concurrency=4))
    assert set(pacer.status()) == {"pace", "429s"}
    assert pacer.status()["429s"] == "0.0%"


def test_the_server_s_bucket_is_mirrored_from_its_headers():
    """remaining 40 of 100, full again in 600 ms: 100/s; what was sent since is owed."""
    from openai_batch.service.pacing import Ticket

    pacer = Pacer(Limits(concurrency=8))
    headers = {
        "x-ratelimit-limit-requests": "100",
        "x-ratelimit-remaining-requests": "40",
        "x-ratelimit-reset-requests": "600ms",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "10000",
        "x-ratelimit-reset-tokens": "0s",
    }
    pacer._sent = 10  # this answer's request was the 4th: six left after it
    ticket = Ticket(sent_at=100.0, seq=3, tokens_before=0.0, flight=1)
    pacer._learn(headers, ticket, now=100.0)
    requests, tokens = pacer._mirrors
    assert requests.bucket is not None
    assert requests.bucket.rate == pytest.approx(100.0)
    assert requests.bucket.capacity == 100.0
    assert requests.bucket.level == pytest.approx(40 - 6)
    assert tokens.bucket is None  # full and never seen draining: nothing to pace by


def test_a_server_refusing_without_saying_when_is_not_hammered(fake_api, tmp_path, capsys):
    """429s with no retry-after: pauses grow with the time nothing got through."""
    fake_api.inject("POST", CHAT + "$", 429, times=None)
    path = write_requests(tmp_path / "r.jsonl", 4)
    code, _, err = run_cli(
        capsys, "utils", "chat-complete", path, "--give-up-after", "1", "-c", "4", "-q"
    )
    assert_clean_error(code, err, "429 (rate limited) for 1 seconds")
    assert len([s for _, p, s in fake_api.log if p == CHAT]) < 40  # not a tight loop


def test_the_python_api_runs_inside_an_event_loop(fake_api, tmp_path):
    """From a notebook (a running event loop), run_requests still works."""
    import asyncio

    from openai_batch.flow.chat_complete import run_requests

    path = write_requests(tmp_path / "r.jsonl", 3)

    async def notebook_cell() -> Any:
        return run_requests(path, progress=False)

    summary = asyncio.run(notebook_cell())
    assert summary.complete and summary.succeeded == 3
