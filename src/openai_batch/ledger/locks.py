"""Named locks across processes and hosts, kept in the ledger's `locks` table.

A holder refreshes its row's `acquired_at` every few seconds while it holds the lock (a
heartbeat from a thread with its own connection). So a holder that died is recognised even when
it ran on another host (containers sharing a home folder, NFS), where its process id means
nothing: a row not refreshed for `SILENT_SECONDS` is taken over. On the same host a dead
process id is taken over at once. A waiter says once what it waits for and until when.

This assumes the hosts' clocks agree to well within `SILENT_SECONDS` (NTP does); a holder
suspended (Ctrl-Z, a sleeping laptop) for longer loses its lock.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from openai_batch.errors import BatchError
from openai_batch.ledger.connection import LedgerBase

HEARTBEAT_SECONDS = 10.0
SILENT_SECONDS = 120.0

_KINDS = {
    "start": "starting a batch for this file",
    "upload": "uploading this file",
    "job": "working on this job",
}


def owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass(frozen=True)
class Holder:
    host: str
    pid: str
    beat_at: float  # the holder's last sign of life (its clock)

    @classmethod
    def parse(cls, owner_text: str, beat_at: float) -> Holder:
        host, _, pid = str(owner_text).rpartition(":")
        return cls(host, pid, float(beat_at))

    def silent_for(self) -> float:
        return time.time() - self.beat_at

    def dead(self) -> bool:
        """No sign of life for SILENT_SECONDS, or a process of this host that is gone."""
        if self.silent_for() > SILENT_SECONDS:
            return True
        here = self.host == socket.gethostname()
        return here and self.pid.isdigit() and not pid_alive(int(self.pid))

    def describe(self) -> str:
        since = time.strftime("%H:%M:%S", time.localtime(self.beat_at))
        return f"process {self.pid} on {self.host} (last sign of life {since})"


def pid_alive(pid: int) -> bool:
    if os.name == "nt":  # os.kill(pid, 0) would be CTRL_C_EVENT there: rely on the heartbeat
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def describe_lock(name: str) -> str:
    return _KINDS.get(name.partition(":")[0], f"the lock {name!r}")


def waiting_note(name: str, holder: Holder) -> str:
    return (
        f"waiting for another openai-batch command, {holder.describe()}, which is "
        f"{describe_lock(name)}; if it shows no sign of life for {SILENT_SECONDS:.0f} s it "
        "is taken as dead and this command goes on"
    )


def takeover_note(name: str, holder: Holder) -> str:
    return (
        f"took over the lock for {describe_lock(name)} from {holder.describe()}: "
        "that command is gone"
    )


class Heartbeat:
    """Refresh a held lock's row until stopped, from a thread with its own connection."""

    def __init__(self, path: Path, name: str, owner_text: str) -> None:
        self._path, self._name, self._owner = path, name, owner_text
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lock {name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            with contextlib.suppress(sqlite3.Error):
                db = sqlite3.connect(self._path, timeout=5.0, isolation_level=None)
                try:
                    db.execute(
                        "UPDATE locks SET acquired_at = ? WHERE name = ? AND owner = ?",
                        (time.time(), self._name, self._owner),
                    )
                finally:
                    db.close()


Notify = Callable[[str], None]


class Locks(LedgerBase):
    """The ledger's locks table: `lock()` serializes check-then-act sequences (is it started?
    no: start it) across processes and hosts."""

    @contextlib.contextmanager
    def lock(
        self,
        name: str,
        *,
        wait_seconds: float = 3600.0,
        poll: float = 0.1,
        notify: Notify | None = None,
    ) -> Iterator[None]:
        """Hold a named lock across processes and hosts (e.g. "start:<digest>").

        Waits for a live holder; a dead one (see ledger_locks) is taken over. `notify` hears,
        once, what this waits for, and of a takeover."""
        me = owner()
        deadline = time.monotonic() + wait_seconds
        told = False
        while (holder := self._try_lock(name, me, notify)) is not True:
            if not told and notify is not None and isinstance(holder, Holder):
                notify(waiting_note(name, holder))
                told = True
            if time.monotonic() > deadline:
                raise BatchError(
                    f"another openai-batch command holds the lock {name!r}",
                    hint="wait for it to finish, then run this command again",
                )
            time.sleep(poll)
        try:
            with Heartbeat(self.path, name, me):
                yield
        finally:
            with self.transaction() as db:
                db.execute("DELETE FROM locks WHERE name = ? AND owner = ?", (name, me))

    def _try_lock(self, name: str, me: str, notify: Notify | None) -> Holder | bool:
        """True when taken; else the live holder it waits for."""
        with self.transaction() as db:
            row = db.execute("SELECT owner, acquired_at FROM locks WHERE name = ?", (name,))
            held = row.fetchone()
            if held is not None and held["owner"] != me:
                holder = Holder.parse(held["owner"], held["acquired_at"])
                if not holder.dead():
                    return holder
                if notify is not None:
                    notify(takeover_note(name, holder))
            db.execute(
                "INSERT OR REPLACE INTO locks (name, owner, acquired_at) VALUES (?, ?, ?)",
                (name, me, time.time()),
            )
            return True
