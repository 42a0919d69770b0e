"""One downloaded output or error file read into index records and spilled answers.

Each line is parsed once and understood: the common line, a successful one-choice chat answer,
by answers.plain_line (msgspec decodes only the fields it needs), a successful Responses API
answer alike by results/responsesline.py; every other line is parsed whole
(orjson; the json module for what it refuses) and read by answers.plain_chat or answers.extract.
Its answer's cells (custom_id, then the table's result cells) are gathered as columns, a part of
the file (bounded by rows and by characters) written to the spill file as one Arrow blob
(results/answerstore.py), and the line becomes one fixed-size record (the custom_id's XXH3,
where the raw line is, which blob and row hold its answer and how big it is, success, batch
rank, request-file group). The records of a file and what was counted in it (lines, unreadable
and malformed lines, JSON answer keys) come back as a FileRead, which ResultIndex keeps: so
files can be read in any process
(results/parallelread.py) and kept in the order they were added.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import IO, Any

from xxhash import xxh3_64_intdigest, xxh3_128_digest

from openai_batch.results import answers, answerstore, responsesline
from openai_batch.results.answers import MISSING, RowResult

# other lines looked at for a Responses answer before a file without one (an error file, a
# chat file's refusals) is no longer: the look costs 6% of such a line's reading
_LOOKS = 32
MAX_TRACKED_KEYS = 10_000  # distinct JSON answer keys counted (see join.json_columns)
_READ_BUFFER = 1 << 20  # bytes read at a time (the default 8 KiB: 128 times the read calls)
RECORD = [
    ("hi", "<u8"),
    ("lo", "<u8"),
    ("source", "<u2"),
    ("offset", "<u8"),
    ("length", "<u4"),
    ("blob", "<u4"),  # the answer: row `row` of blob `blob` in the spill file (answerstore)
    ("row", "<u2"),
    ("size", "<u4"),  # the answer's bytes (the table reads a few MB of answers at a time)
    ("rank", "<u2"),
    ("group", "<u2"),
    ("ok", "u1"),
]


@dataclass(frozen=True)
class FileJob:
    """A file to read, with the numbers its records carry."""

    path: Path
    source: int
    rank: int
    group: int


@dataclass
class FileRead:
    """A file's records and counts, and where its answers were written: its blobs' (offset,
    length, XXH3-64 of the bytes) in the spill file; a record's blob number counts from the
    file's first blob."""

    parts: list[Any] = field(default_factory=list)
    blobs: list[tuple[int, int, int]] = field(default_factory=list)
    spill_end: int = 0  # the spill offset after this file's answers
    # where its blobs are when not in the index's spill file: the second reader's own spill,
    # kept as it was written (set by results/parallelread.py once the child is done)
    spill_file: IO[bytes] | None = None
    lines: int = 0
    unreadable: int = 0  # lines without a custom_id: nothing to join them to
    malformed: int = 0  # lines with a custom_id but no readable answer (that row's error)
    json_answers: int = 0  # successes whose content is a JSON object
    key_counts: dict[str, int] = field(default_factory=dict)  # in order of first use

    def count_keys(self, fields: dict[str, Any]) -> None:
        self.json_answers += 1
        counts = self.key_counts
        for key in fields:
            if key in counts:
                counts[key] += 1
            elif len(counts) < MAX_TRACKED_KEYS:  # answers with ever new keys: bounded memory
                counts[key] = 1


def id_digest(custom_id: str) -> bytes:
    """The custom_id's XXH3-128 as 16 big-endian bytes: (high, low) halves, as id_hash."""
    return xxh3_128_digest(custom_id.encode("utf-8", "surrogatepass"))


def id_digests(custom_ids: list[str]) -> list[bytes]:
    """id_digest of many custom_ids (by map: no Python call per id, a fifth cheaper)."""
    encoded = map(str.encode, custom_ids, repeat("utf-8"), repeat("surrogatepass"))
    return list(map(xxh3_128_digest, encoded))


def id_halves(digests: list[bytes]) -> tuple[Any, Any]:
    """The (high, low) halves of many id_digest()s as two native uint64 arrays."""
    import numpy as np

    pairs = np.frombuffer(b"".join(digests), dtype=">u8").reshape(-1, 2)
    return pairs[:, 0].astype(np.uint64), pairs[:, 1].astype(np.uint64)


class _Part:
    """Up to PART_ROWS lines of one file: their records' fields and their answers' cells,
    gathered as plain lists (one append per field per line: cheaper than a tuple per line)."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.lengths: list[int] = []
        self.oks = bytearray()
        self.ids: list[str] = []
        self.contents: list[str] = []
        self.finishes: list[str] = []
        self.prompts: list[Any] = []  # int or ""
        self.completions: list[Any] = []
        self.extras: dict[int, tuple[str, str]] = {}  # row -> (refusal, error), where any

    def records(self, job: FileJob, blob: int, sizes: Any) -> Any:
        """The records; their answers are rows 0.. of blob number `blob` (of the file's)."""
        import numpy as np

        records = np.zeros(len(self.starts), dtype=RECORD)
        records["hi"], records["lo"] = id_halves(id_digests(self.ids))
        records["source"] = job.source
        records["offset"] = self.starts
        records["length"] = self.lengths
        records["blob"] = blob
        records["row"] = np.arange(len(self.starts), dtype=np.uint16)
        records["size"] = np.minimum(sizes, 0xFFFFFFFF)
        records["rank"] = job.rank
        records["group"] = job.group
        records["ok"] = np.frombuffer(bytes(self.oks), dtype=np.uint8)
        return records


def read_file(job: FileJob, spill: IO[bytes], spill_at: int) -> FileRead:
    """Read `job`'s file; its answers are written to `spill`, which is at offset `spill_at`,
    as blobs (results/answerstore.py) that FileRead.blobs lists.

    A line that is JSON but no known answer shape (or too deep to read) still belongs to its
    custom_id: it is indexed as a failure, and its row says `malformed_result`."""
    read = FileRead(spill_end=spill_at)
    part = _Part()
    rows_left, chars_left = answerstore.PART_ROWS, answerstore.BLOB_CHARS
    offset = 0
    loads, plain_chat, plain_line = answers.fast_loads, answers.plain_chat, answers.plain_line
    responses_line = responsesline.responses_line
    looks = _LOOKS  # lines left to look at for a Responses answer while none is found
    with open(job.path, "rb", buffering=_READ_BUFFER) as fh:
        for raw in fh:
            length = len(raw)
            start, offset = offset, offset + length
            plain = plain_line(raw)  # the common line, decoded typed (msgspec), no dict
            if plain is None and looks:  # a Responses API answer, typed alike
                plain = responses_line(raw) if b'"output"' in raw else None
                looks = _LOOKS if plain is not None else looks - 1
            if plain is None:  # parsed whole; None: not JSON to orjson (or blank)
                record = loads(raw)
                custom_id = record.get("custom_id") if type(record) is dict else None
                chat = plain_chat(record) if type(custom_id) is str else None  # type: ignore[arg-type]
                plain = None if chat is None else (custom_id, *chat)  # type: ignore[assignment]
            if plain is not None:  # the common line: no RowResult
                custom_id, content, finish, prompt, completion = plain
                if content[:1] == "{" or content[:1].isspace():
                    fields = answers.json_object(content)
                    if fields:
                        read.count_keys(fields)
                part.oks.append(1)
            else:
                if not raw.strip():
                    continue
                custom_id, result = _general(raw, record, read)
                if custom_id is None:
                    read.lines += 1
                    read.unreadable += 1
                    continue
                content, finish = result.content, result.finish_reason
                prompt, completion = result.cells()[4:6]
                if result.refusal or result.error:
                    part.extras[len(part.ids)] = (result.refusal, result.error)
                    chars_left -= len(result.refusal) + len(result.error)
                part.oks.append(result.status == "ok")
            read.lines += 1
            part.starts.append(start)
            part.lengths.append(length)
            part.ids.append(custom_id)  # type: ignore[arg-type]
            part.contents.append(content)
            part.finishes.append(finish)
            part.prompts.append(prompt)
            part.completions.append(completion)
            chars_left -= len(content)
            rows_left -= 1
            if rows_left == 0 or chars_left <= 0:  # bounded lists and blobs, whatever the file
                _keep(read, part, job, spill)
                part = _Part()
                rows_left, chars_left = answerstore.PART_ROWS, answerstore.BLOB_CHARS
    _keep(read, part, job, spill)
    return read


def _keep(read: FileRead, part: _Part, job: FileJob, spill: IO[bytes]) -> None:
    """The part's answers written to the spill as one blob; its records as a numpy array."""
    if not part.ids:
        return
    blob, sizes = answerstore.encode(
        part.ids, bytes(part.oks), part.contents, part.finishes,
        part.prompts, part.completions, part.extras,
    )  # fmt: skip
    spill.write(blob)
    read.parts.append(part.records(job, len(read.blobs), sizes))
    read.blobs.append((read.spill_end, len(blob), xxh3_64_intdigest(blob)))
    read.spill_end += len(blob)


def _general(raw: bytes, record: Any, read: FileRead) -> tuple[str | None, RowResult]:
    """(custom_id, its row result) of any line (`record`: the line as orjson read it, or None
    where it could not); counts malformed lines and JSON answer keys."""
    if record is None:
        try:
            record = answers.parse_line(raw)
        except answers.MalformedResult as exc:
            custom_id = answers.custom_id_in(raw) if raw.lstrip().startswith(b"{") else None
            if custom_id is not None:
                read.malformed += 1
            return custom_id, answers.malformed(str(exc))
    custom_id = record.get("custom_id") if isinstance(record, dict) else None
    if not isinstance(custom_id, str):
        return None, MISSING
    result = answers.extract(record)
    if result.error.startswith(answers.MALFORMED):
        read.malformed += 1
    elif result.fields:
        read.count_keys(result.fields)
    return custom_id, result
