"""Named locks across processes and hosts, kept in the ledger's `locks` table.

A holder refreshes its row's `acquired_at` every few seconds while it holds the lock (a
heartbeat from a thread with its own connection). So a holder that died is recognised even when
it ran on another host (containers sharing a home folder, NFS), where its process id means
nothing: a row not refreshed for `SILENT_SECONDS` is taken over. A process id is trusted only
where it means what it says: the same host name, the same boot and the same pid namespace (on
Linux, `/proc/sys/kernel/random/boot_id` and the inode of `/proc/self/ns/pid`). There a dead
process id is taken over at once; containers that share a host name but not a pid namespace
wait for the heartbeat to fall silent instead. A waiter says once what it waits for and until
when.

This assumes the hosts' clocks agree to well within `SILENT_SECONDS` (NTP does). A holder
suspended (Ctrl-Z, a sleeping laptop) for longer may lose its lock to another command: before
it creates anything it calls `HeldLock.confirm()`, which stops it if that happened.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from openai_batch.errors import BatchError, Command
from openai_batch.ledger.connection import LedgerBase

HEARTBEAT_SECONDS = 10.0
SILENT_SECONDS = 120.0

_KINDS = {
    "start": "starting a batch for this file",
    "upload": "uploading this file",
    "job": "working on this job",
}


def owner() -> str:
    """`host:pid:scope`, what a lock row says of its holder (see `pid_scope`)."""
    return f"{socket.gethostname()}:{os.getpid()}:{pid_scope()}"


@functools.cache
def pid_scope() -> str:
    """Where this process's id means something: `<boot id>/<pid namespace inode>` on Linux.

    Two containers may share a host name (and a home folder) but not their process ids; a
    reboot reuses them too. Empty where the system tells neither (then the host name decides).
    """
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except (OSError, ValueError):
        return ""
    return f"{boot}/{namespace}" if boot and ":" not in boot else ""


@dataclass(frozen=True)
class Holder:
    host: str
    pid: str
    beat_at: float  # the holder's last sign of life (its clock)
    scope: str = ""  # its pid_scope(): where its pid can be checked

    @classmethod
    def parse(cls, owner_text: str, beat_at: float) -> Holder:
        parts = str(owner_text).split(":")
        if len(parts) >= 3:
            return cls(":".join(parts[:-2]), parts[-2], float(beat_at), parts[-1])
        host, _, pid = str(owner_text).rpartition(":")
        return cls(host, pid, float(beat_at))

    def silent_for(self) -> float:
        return time.time() - self.beat_at

    def dead(self) -> bool:
        """No sign of life for SILENT_SECONDS, or a process that is gone from this very host,
        boot and pid namespace (elsewhere its pid says nothing: only the heartbeat counts)."""
        if self.silent_for() > SILENT_SECONDS:
            return True
        here = self.host == socket.gethostname() and self.scope == pid_scope()
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
    ) -> Iterator[HeldLock]:
        """Hold a named lock across processes and hosts (e.g. "start:<digest>").

        Waits for a live holder; a dead one (see the module text) is taken over. `notify`
        hears, once, what this waits for, and of a takeover. Yields a `HeldLock`: call its
        `confirm()` right before creating what the lock guards."""
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
                yield HeldLock(self, name, me)
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


@dataclass(frozen=True)
class HeldLock:
    """A lock this process took; `confirm()` proves it still holds it."""

    ledger: LedgerBase
    name: str
    owner: str

    def confirm(self) -> None:
        """Stop unless this process still holds the lock, and refresh it.

        A holder stopped (Ctrl-Z, a sleeping laptop) for more than SILENT_SECONDS looks dead,
        and another command may have taken the lock over and done the work (started the
        batch). Called right before creating anything, so the work is never done twice."""
        with self.ledger.transaction() as db:
            row = db.execute("SELECT owner FROM locks WHERE name = ?", (self.name,)).fetchone()
            if row is None or row["owner"] != self.owner:
                raise BatchError(
                    f"this command was paused for a while and another openai-batch command "
                    f"took over {describe_lock(self.name)} (a lock silent for "
                    f"{SILENT_SECONDS:.0f} s is taken as dead); this one stops before creating "
                    "anything",
                    hint=(
                        "run the same command again: it finds what the other command did (`",
                        Command("list-batches"),
                        "` shows the batches)",
                    ),
                )
            db.execute(
                "UPDATE locks SET acquired_at = ? WHERE name = ? AND owner = ?",
                (time.time(), self.name, self.owner),
            )
