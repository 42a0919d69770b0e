"""Request lines split into files within the API's limits, and what was written.

Lines go to temp files that are renamed into place only by `finish`, all of them or none; the
general renderer adds them line by line, the fast path (`fastpath.BlockShardWriter`) a block at
a time by the same rules.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from openai_batch.errors import BatchError
from openai_batch.ledger.digests import new_digest
from openai_batch.local import files, interrupts
from openai_batch.requestfile.limits import OPENAI, human_decimal
from openai_batch.requestfile.options import MakeOptions


@dataclass
class ShardInfo:
    """One request file written."""

    path: Path
    requests: int
    bytes: int
    digest: str
    first_row: int  # 0-based index of the data row on its first line


@dataclass
class MakeResult:
    """What was written, and how to find each line's data row again."""

    files: list[ShardInfo]
    template: Path
    data: Path
    endpoint: str
    model: str | None
    options: MakeOptions
    stale: list[Path] = field(default_factory=list)  # older outputs that are not part of this one
    skipped_spaces: bool = False  # the table's ", " separators were read as ","

    @property
    def requests(self) -> int:
        return sum(f.requests for f in self.files)

    @property
    def bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> dict[str, Any]:
        return {
            "files": [{**asdict(f), "path": str(f.path)} for f in self.files],
            "requests": self.requests,
            "bytes": self.bytes,
            "template": str(self.template),
            "data": str(self.data),
            "endpoint": self.endpoint,
            "model": self.model,
            "id_column": self.options.id_column,
            "id_prefix": self.options.id_prefix,
            "skipped_spaces": self.skipped_spaces,
        }


@dataclass
class _Shard:
    temp: Path
    handle: IO[bytes]
    first_row: int
    requests: int = 0
    bytes: int = 0
    digest: Any = field(default_factory=new_digest)


class ShardWriter:
    """Splits lines into files within the API's limits; nothing is visible until `finish`."""

    def __init__(self, output: Path, max_requests: int, max_bytes: int) -> None:
        self.output = output
        self.max_requests = max_requests
        self.max_bytes = max_bytes
        self.shards: list[_Shard] = []
        self._pending: list[bytes] = []

    def add(self, line: bytes, row: int, label: str) -> None:
        size = len(line)
        if size > self.max_bytes:
            raise BatchError(
                f"{label} renders to a request of {size:,} bytes, over the "
                f"{self.max_bytes:,}-byte limit of a request file.",
                hint="shorten that row's text or images, or raise --max-bytes "
                f"({human_decimal(OPENAI.file_bytes)} at most).",
            )
        current = self.shards[-1] if self.shards else None
        if (
            current is None
            or current.requests >= self.max_requests
            or current.bytes + size > self.max_bytes
        ):
            current = self._roll(row)
        current.requests += 1
        current.bytes += size
        self._pending.append(line)

    def flush(self) -> None:
        if self._pending and self.shards:
            data = b"".join(self._pending)
            shard = self.shards[-1]
            shard.handle.write(data)
            shard.digest.update(data)
            self._pending = []

    def _roll(self, row: int) -> _Shard:
        self.flush()
        if self.shards:
            self.shards[-1].handle.close()
        with interrupts.deferred():  # a temp file made is a temp file `abort` knows
            temp = files.temp_path_for(self.output)
            shard = _Shard(temp, open(temp, "wb", buffering=1 << 20), row)  # noqa: SIM115
            self.shards.append(shard)
        return shard

    def final_paths(self) -> list[Path]:
        if len(self.shards) == 1:
            return [self.output]
        width = max(3, len(str(len(self.shards))))
        stem, suffix = self.output.stem, self.output.suffix
        return [
            self.output.with_name(f"{stem}-{i:0{width}d}{suffix}")
            for i in range(1, len(self.shards) + 1)
        ]

    def finish(self) -> list[ShardInfo]:
        self.flush()
        for shard in self.shards:
            shard.handle.close()
        infos = []
        with interrupts.deferred():  # all the files land, or none: never a partial set
            for shard, path in zip(self.shards, self.final_paths(), strict=True):
                files.commit(shard.temp, path)
                infos.append(
                    ShardInfo(
                        path, shard.requests, shard.bytes, shard.digest.hexdigest(), shard.first_row
                    )
                )
        return infos

    def abort(self) -> None:
        with interrupts.deferred():  # a second Ctrl-C does not leave some behind
            for shard in self.shards:
                shard.handle.close()
                files.discard(shard.temp)
