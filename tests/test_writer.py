"""local/writer.OrderedWriter: jobs run in the order given, on a thread of their own; the first
failure reaches the submitting thread and nothing after it runs."""

from __future__ import annotations

import threading

import pytest

from openai_batch.local.writer import OrderedWriter


def test_jobs_run_in_order_on_another_thread() -> None:
    done: list[int] = []
    threads: set[int] = set()

    def job(n: int) -> None:
        threads.add(threading.get_ident())
        done.append(n)

    writer = OrderedWriter("test", depth=1)
    for n in range(200):
        writer.submit(lambda n=n: job(n))
    writer.stop()
    assert done == list(range(200))
    assert threads and threading.get_ident() not in threads


def test_the_first_failure_is_raised_and_nothing_after_it_runs() -> None:
    done: list[int] = []
    release = threading.Event()

    def fail() -> None:
        release.wait(5)
        raise OSError(27, "File too large")

    writer = OrderedWriter("test", depth=4)
    writer.submit(lambda: done.append(1))
    writer.submit(fail)
    writer.submit(lambda: done.append(3))  # queued behind the failure: skipped
    release.set()
    with pytest.raises(OSError, match="too large"):
        writer.stop()
    assert done == [1]


def test_a_failure_is_raised_at_the_next_submit() -> None:
    writer = OrderedWriter("test", depth=1)
    writer.submit(lambda: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        for _ in range(1000):  # the failure is seen once the thread has run the job
            writer.submit(lambda: None)
            threading.Event().wait(0.001)
    writer.stop(discard=True)


def test_discarding_skips_what_waits_and_raises_nothing() -> None:
    done: list[int] = []
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        release.wait(5)
        done.append(0)

    writer = OrderedWriter("test", depth=4)
    writer.submit(slow)
    started.wait(5)
    for n in range(1, 4):
        writer.submit(lambda n=n: done.append(n))
    release.set()
    writer.stop(discard=True)
    assert done == [0]  # the job running went on; the ones waiting did not
