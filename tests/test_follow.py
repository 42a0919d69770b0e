"""flow/follow: the one polling loop for batches and jobs (backoff, reset on change, Ctrl-C)."""

from __future__ import annotations

import time

import pytest

from openai_batch.flow import follow


def test_waits_grow_by_half_up_to_a_minute_and_start_again_on_a_change(monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    changes = {3, 9}
    polls = iter(range(30))

    def poll() -> follow.Polled[int]:
        n = next(polls)
        return follow.Polled(n, final=n == 12, changed=n in changes)

    seen: list[int] = []
    assert follow.follow(poll, poll_interval=20.0, on_update=seen.append) == 12
    assert seen == list(range(13))
    assert slept == [20.0, 30.0, 45.0, 20.0, 30.0, 45.0, 60.0, 60.0, 60.0, 20.0, 30.0, 45.0]
    assert follow.MAX_POLL_INTERVAL == 60.0


def test_an_interval_of_zero_still_grows(monkeypatch) -> None:
    slept: list[float] = []
    monkeypatch.setattr(time, "sleep", slept.append)
    polls = iter(range(4))

    def poll() -> follow.Polled[int]:
        n = next(polls)
        return follow.Polled(n, final=n == 3)

    follow.follow(poll, poll_interval=0)
    assert slept == [0.0, 0.01, 0.015]


def test_ctrl_c_stops_the_waiting_with_the_last_state_seen(monkeypatch) -> None:
    def interrupted(_seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(time, "sleep", interrupted)
    with pytest.raises(follow.StoppedWaiting) as stopped:
        follow.follow(lambda: follow.Polled(["seen"], final=False), poll_interval=1, last=[])
    assert stopped.value.last == ["seen"]
    assert stopped.value.batches == ["seen"]
