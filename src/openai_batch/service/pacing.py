"""When may the next request go? The pace of `utils chat-complete` under a server's rate limit.

A 429 is the server telling the client its pace, not a failure. The pacer keeps the requests in
flight at or below `--concurrency` and, once the server has pushed back, spaces them out:

- **Rate-limit headers** (`x-ratelimit-limit-*`, `x-ratelimit-remaining-*`,
  `x-ratelimit-reset-*`, as the OpenAI API sends with every answer): the server's token bucket
  is mirrored here (its size, what is left, how fast it refills), so requests go while the
  bucket holds some and at its refill rate once it is empty.
- **Without headers**, additive increase, multiplicative decrease (AIMD, as TCP does): on a
  429 the send rate drops to 85% of the rate answered with 200 over the last two seconds (once
  per round: 429s for requests sent before that cut change nothing); each answer raises it by
  5% of a request per second, so it probes upward again by about 5% a second.
- `retry-after-ms` / `retry-after` on a 429 pause every request, and the sends after the pause
  are spaced out again instead of all firing at once. A 429 without them pauses for half the time
  nothing has gone through (50 ms to 30 s), so a server refusing everything is not hammered.
- `--max-rps` / `--max-tpm` are buckets of the user's own, one second deep (tokens are estimated
  as the request's characters / 4 plus its `max_tokens`, as OpenAI's limiter counts them).

All of this runs on one asyncio event loop, so nothing here takes a lock.
"""

from __future__ import annotations

import asyncio
import collections
import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import NamedTuple

DECREASE = 0.85  # of the requests in flight, after a 429 (once per round)
INCREASE = 1.0  # per round trip: each answer adds INCREASE / window
RATE_WINDOW = 2.0  # seconds of answers that make up the pace shown
MAX_PAUSE = 600.0  # longest server-requested pause honoured (seconds)
MIN_PAUSE = 0.05  # after a 429 that says nothing about when to come back...
QUIET_PAUSE = 30.0  # ...growing with the time nothing got through, up to this
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Limits:
    """What the user told us: the ceiling on requests in flight, optional rate caps, patience."""

    concurrency: int
    max_rps: float | None = None
    max_tpm: float | None = None
    give_up_after: float = 600.0  # seconds of nothing but 429s before the run stops


class Ticket(NamedTuple):
    """One admitted send: when, its place in the sending order, and what was in flight."""

    sent_at: float
    seq: int
    tokens_before: float  # tokens admitted before this request
    flight: int


class RateLimitedTooLong(Exception):
    """Every request was refused with 429 for `Limits.give_up_after` seconds."""

    def __init__(self, seconds: float) -> None:
        super().__init__(f"{seconds:g} s")
        self.seconds = seconds


class Bucket:
    """A token bucket: `rate` tokens a second up to `capacity`; a take may run it into debt."""

    def __init__(self, rate: float, capacity: float, level: float | None = None) -> None:
        self.rate = rate
        self.capacity = capacity
        self.level = capacity if level is None else level
        self.at = time.monotonic()

    def wait(self, cost: float, now: float) -> float:
        """Seconds until `cost` may be taken (a cost above the capacity waits for a full one)."""
        self.level = min(self.capacity, self.level + (now - self.at) * self.rate)
        self.at = now
        short = min(cost, self.capacity) - self.level
        return short / self.rate if short > 0 else 0.0

    def set(self, level: float, rate: float, capacity: float, now: float) -> None:
        self.level, self.rate, self.capacity, self.at = level, rate, capacity, now


def parse_duration(text: str) -> float | None:
    """OpenAI's reset durations ('1s', '6m0s', '20ms', '1h2m3.5s', '0.5') in seconds."""
    text = text.strip()
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        return None
    return sum(float(n) * _UNIT[u] for n, u in parts)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the server asked us to wait: `retry-after-ms`, else `retry-after` (seconds)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw:
            try:
                value = float(raw) * scale
            except ValueError:
                continue
            if math.isfinite(value):
                return min(MAX_PAUSE, max(0.0, value))
    return None  # a date or nothing: the AIMD rate decides


@dataclass
class _Mirror:
    """The server's bucket for one kind (requests or tokens), as its headers describe it."""

    kind: str  # "requests" | "tokens"
    bucket: Bucket | None = None

    def update(self, headers: Mapping[str, str], sent_at: float, after: float, now: float) -> None:
        """Re-base on an answer's headers; `after` is what was sent after that request."""
        try:
            limit = float(headers[f"x-ratelimit-limit-{self.kind}"])
            remaining = float(headers[f"x-ratelimit-remaining-{self.kind}"])
        except (KeyError, ValueError):
            return
        reset = parse_duration(headers.get(f"x-ratelimit-reset-{self.kind}", ""))
        if not (limit > 0 and 0 <= remaining <= limit) or reset is None:
            return
        if limit - remaining >= max(1.0, 0.05 * limit) and reset > 0:
            rate = (limit - remaining) / reset  # a bucket refilled evenly: exact enough
        elif self.bucket is not None:
            rate = self.bucket.rate
        else:
            return  # nearly full and never seen draining: nothing to pace yet
        level = remaining + (now - sent_at) * rate - after
        if self.bucket is None:
            self.bucket = Bucket(rate, limit, level)
        self.bucket.set(min(limit, level), rate, limit, now)


class Pacer:
    """Admission control for one run; see the module docstring. Used by the request workers.

    `admit` before each send and `release` after each answer (whatever it was); `answered` /
    `refused` feed back what the server said.
    """

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.window = float(limits.concurrency)  # AIMD: requests allowed in flight
        self.in_flight = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._buckets: list[tuple[Bucket, bool]] = []  # (bucket, counts tokens)
        if limits.max_rps:
            self._buckets.append((Bucket(limits.max_rps, max(1.0, limits.max_rps)), False))
        if limits.max_tpm:
            per_second = limits.max_tpm / 60.0
            self._buckets.append((Bucket(per_second, per_second), True))
        self._mirrors = (_Mirror("requests"), _Mirror("tokens"))
        self._gate = asyncio.Lock()
        self._paced = bool(self._buckets)  # any bucket to wait for (mirrors join when learned)
        self._resume_at = 0.0
        self._last_cut = 0.0
        self._sent = 0  # requests admitted so far (their sequence numbers)
        self._tokens_sent = 0.0
        self.started = time.monotonic()
        self._progress_at = self.started  # last answer that was not a 429
        self._answers: collections.deque[float] = collections.deque()
        self.ok = 0
        self.rate_limited = 0

    # ------------------------------------------------------------------ admission

    async def admit(self, cost: float) -> Ticket:
        """Wait until a request of `cost` tokens may go (holding one of the window's slots)."""
        if self.in_flight < self.window and not self._waiters:
            self.in_flight += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter  # `release` hands this request its slot
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.release()
                raise
        try:
            if self._paced or self._resume_at > time.monotonic():
                async with self._gate:  # one at a time, in order, each wait computed afresh
                    await self._until_clear(cost)
        except asyncio.CancelledError:
            self.release()
            raise
        ticket = Ticket(time.monotonic(), self._sent, self._tokens_sent, self.in_flight)
        self._sent += 1
        self._tokens_sent += cost
        return ticket

    async def _until_clear(self, cost: float) -> None:
        """Sleep until no pause holds and every bucket has room for `cost`, then take it."""
        while True:
            now = time.monotonic()
            wait = self._resume_at - now
            for bucket, tokens in self._active():
                wait = max(wait, bucket.wait(cost if tokens else 1.0, now))
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        for bucket, tokens in self._active():
            bucket.level -= cost if tokens else 1.0

    def _active(self) -> list[tuple[Bucket, bool]]:
        requests, token_mirror = self._mirrors
        active = list(self._buckets)
        if requests.bucket is not None:
            active.append((requests.bucket, False))
        if token_mirror.bucket is not None:
            active.append((token_mirror.bucket, True))
        return active

    def release(self) -> None:
        """A request is answered (or abandoned): its slot goes to the next one waiting."""
        self.in_flight -= 1
        while self._waiters and self.in_flight < self.window:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_flight += 1
                waiter.set_result(None)

    # ------------------------------------------------------------------ feedback

    def answered(self, headers: Mapping[str, str], ticket: Ticket) -> None:
        """Any answer that was not a 429 (success or error): progress, and the headers."""
        now = time.monotonic()
        self.ok += 1
        self._progress_at = now
        answers = self._answers
        answers.append(now)
        while answers[0] < now - RATE_WINDOW:
            answers.popleft()
        self._learn(headers, ticket, now)
        if self.window < self.limits.concurrency:
            self.window = min(self.limits.concurrency, self.window + INCREASE / self.window)

    def refused(self, headers: Mapping[str, str], ticket: Ticket) -> None:
        """A 429: pause everyone as asked; without headers, cut the window once per round."""
        now = time.monotonic()
        self.rate_limited += 1
        if now - self._progress_at > self.limits.give_up_after:
            raise RateLimitedTooLong(self.limits.give_up_after)
        pause = retry_after(headers)
        if pause is None:  # no word on when: back off by how long nothing has gone through
            pause = min(QUIET_PAUSE, max(MIN_PAUSE, (now - self._progress_at) / 2))
        if pause:  # never past the point of giving up: the next 429 then ends the run
            deadline = self._progress_at + self.limits.give_up_after + 0.001
            self._resume_at = max(self._resume_at, min(now + pause, deadline))
        if self._learn(headers, ticket, now):
            return  # the mirrored bucket paces from here
        if ticket.sent_at >= self._last_cut:  # sent at the pace now known to be too fast
            self._last_cut = now
            self.window = max(1.0, DECREASE * min(self.window, ticket.flight))

    def _learn(self, headers: Mapping[str, str], ticket: Ticket, now: float) -> bool:
        """Mirror the server's buckets from its headers; True when it sent any."""
        if "x-ratelimit-remaining-requests" not in headers and (
            "x-ratelimit-remaining-tokens" not in headers
        ):
            return False
        requests, token_mirror = self._mirrors
        requests.update(headers, ticket.sent_at, self._sent - ticket.seq - 1, now)
        token_mirror.update(headers, ticket.sent_at, self._tokens_sent - ticket.tokens_before, now)
        self._paced = self._paced or requests.bucket is not None or token_mirror.bucket is not None
        return True

    def _recent_rate(self, now: float) -> float:
        """Answers per second over the last RATE_WINDOW seconds (or since the start)."""
        answers = self._answers
        while answers and answers[0] < now - RATE_WINDOW:
            answers.popleft()
        span = min(RATE_WINDOW, max(now - self.started, 0.05))
        return len(answers) / span

    # ------------------------------------------------------------------ display

    def status(self) -> dict[str, str]:
        """The pace (answers/s lately) and the share of 429s, for the progress bar."""
        pace = self._recent_rate(time.monotonic())
        sent = self.ok + self.rate_limited
        share = 100.0 * self.rate_limited / sent if sent else 0.0
        return {"pace": f"{pace:.1f}/s", "429s": f"{share:.1f}%"}
