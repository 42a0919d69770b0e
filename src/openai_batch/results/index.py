"""Where each custom_id's winning result is, across the downloaded files of several batches.

Memory holds no string per result: each line becomes one fixed-size record in numpy arrays
(the custom_id's 128-bit XXH3, where the raw line is, which blob and row of the spill file hold
its understood answer and its size, success, batch rank and request-file group: 45 bytes), so a
million results take ~50 MB and long answers take none. The answers themselves, read once
(results/filereader.py; a big join's files by two processes, results/parallelread.py), go to
the spill file (beside the downloads) as Arrow columns (results/answerstore.py); the join takes
them back a block at a time instead of parsing every result line again. Every answer read back
is checked against the custom_id asked for (a whole column at once), so even a hash collision
could never put an answer on the wrong row.

Merge rules (unchanged): within a group (one request file and its retries) a success beats an
error and otherwise the later batch wins; the same custom_id from two groups is a conflict.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xxhash import xxh3_128_intdigest

from openai_batch.errors import BatchError, quoted
from openai_batch.requestfile.customids import natural_key
from openai_batch.results import answers, parallelread
from openai_batch.results.answers import MISSING, RowResult
from openai_batch.results.answerstore import AnswerStore, python_column
from openai_batch.results.filereader import (
    MAX_TRACKED_KEYS,
    RECORD,
    FileJob,
    FileRead,
    id_digests,
    id_halves,
)
from openai_batch.results.hashsearch import HashSearch
from openai_batch.results.sources import SourceFiles

_MAX_SMALL = 0xFFFF  # sources, ranks and groups are stored in 16 bits
_WALK_ROWS = 1 << 16  # custom_ids made Python strings at a time, walking them all


@dataclass
class Conflict:
    """Two groups (request files) that both have results for some custom_ids."""

    groups: tuple[str, str]
    count: int = 0
    examples: list[str] = field(default_factory=list)


def id_hash(custom_id: str) -> tuple[int, int]:
    """(high, low) 64-bit halves of the custom_id's XXH3-128."""
    value = xxh3_128_intdigest(custom_id.encode("utf-8", "surrogatepass"))
    return value >> 64, value & 0xFFFFFFFFFFFFFFFF


def _same_neighbours(records: Any, order: Any, names: tuple[str, ...]) -> Any:
    """Per neighbouring pair in `order`: whether they agree on every column in `names`
    (one gathered column at a time, so no sorted copy of the records)."""
    same = None
    for name in names:
        column = records[name][order]
        equal = column[1:] == column[:-1]
        del column
        same = equal if same is None else same & equal
    return same


def merge_order(records: Any) -> tuple[Any, Any]:
    """The records' merge order, np.lexsort((rank, ok, lo, hi)): by custom_id's hash, then
    an error before a success, the earlier batch first, then the line added first (the last
    of a custom_id's run wins); and the high halves in that order (contiguous, for lookups).

    One stable argsort of the high halves: two records share one only when they have the
    same custom_id (or once in 2**64 results), so only those runs are sorted again by every
    key (a small lexsort; the stable argsort kept each run's records in the order added).
    The full lexsort of four keys took four times as long."""
    import numpy as np

    his = np.ascontiguousarray(records["hi"])
    order = np.argsort(his, kind="stable")
    his = np.take(his, order)
    tied = _tied_slots(his)
    if len(tied):
        runs = order[tied]
        tied_records = records[runs]
        keys = ("rank", "ok", "lo", "hi")
        order[tied] = runs[np.lexsort(tuple(tied_records[k] for k in keys))]
    return order, his


def _tied_slots(his: Any) -> Any:
    """The places in sorted `his` whose value a neighbour shares (int array, ascending)."""
    import numpy as np

    tie = his[1:] == his[:-1]
    if not tie.any():
        return np.empty(0, dtype=np.intp)
    return np.flatnonzero(np.append(tie, False) | np.append(False, tie))


def id_text(custom_ids: list[str]) -> Any:
    """The custom_ids as an Arrow string array, or None when one is no UTF-8 text (a lone
    surrogate): made once per block of the table, for the check and for its column."""
    import pyarrow as pa

    try:
        return pa.array(custom_ids, type=pa.string())
    except UnicodeEncodeError:
        return None


class ResultIndex:
    """Add files with add_file; then look results up by custom_id (the index is built on the
    first lookup). Close it to remove the spill file."""

    def __init__(self) -> None:
        self.sources: list[Path] = []
        self.group_names: list[str] = []
        self.json_key_counts: dict[str, int] = {}  # in order of first use
        self.json_answers = 0  # successes whose content is a JSON object
        self.unreadable = 0  # lines without a custom_id: nothing to join them to
        self.malformed = 0  # lines with a custom_id but no readable answer (that row's error)
        self.duplicates: dict[str, tuple[int, Path]] = {}  # a few examples
        self.duplicate_count = 0
        self._conflicts: dict[tuple[str, str], Conflict] = {}
        self._parts: list[Any] = []
        self._table: Any = None  # the winners (numpy structured array)
        # their hashes' high halves as one contiguous array: numpy's searchsorted copies a
        # strided column (47 bytes apart) to search it, 8 MB per million results per lookup
        self._his: Any = None
        # sorted place in _his -> position in _table, or None where the table is in that order
        self._slots: Any = None
        self._search: HashSearch | None = None  # where a hash goes in _his (found())
        self._answers = AnswerStore()  # the spill file
        self._spill_size = 0
        self._files = SourceFiles(self.sources)

    # -- building -------------------------------------------------------------------------
    def add_file(self, path: Path, rank: int, group: str = "") -> int:
        """Index one output or error file; `rank` orders batches (later wins) within a `group`
        (one request file and its retries). Returns lines.

        A line that is JSON but no known answer shape (or too deep to read) still belongs to
        its custom_id: it is indexed as a failure, and its row says `malformed_result`."""
        return self.add_files([(path, rank, group)])

    def add_files(self, files: list[tuple[Path, int, str]]) -> int:
        """add_file for each (path, rank, group), as if one by one; a big join's files are read
        by two processes (results/parallelread.py). Returns lines."""
        if self._table is not None:
            raise RuntimeError("ResultIndex: add_file after the first lookup")
        if not files:
            return 0
        jobs = [self._job(Path(path), rank, group) for path, rank, group in files]
        spill = self._answers.file(jobs[0].path.parent)
        reads = parallelread.read_all(jobs, spill, self._spill_size)
        for read in reads:
            self._keep(read)
        return sum(read.lines for read in reads)

    def _job(self, path: Path, rank: int, group: str) -> FileJob:
        """The file's numbers (source, group) in the order files are added."""
        source = len(self.sources)
        group_no = self._group_number(group)
        if max(source, rank, group_no) > _MAX_SMALL:
            raise BatchError(
                f"more than {_MAX_SMALL:,} result files, batches or request files in one join",
                hint="get the results of fewer batches at a time",
            )
        self.sources.append(path)
        return FileJob(path, source, rank, group_no)

    def _keep(self, read: FileRead) -> None:
        """A file's records and counts, as if it had been read here."""
        first = self._answers.add(read.blobs, read.spill_file)  # its blobs count from here
        for records in read.parts:
            records["blob"] += first
        self._parts.extend(read.parts)
        if read.spill_file is None:  # a second reader's answers are in a file of its own
            self._spill_size = max(self._spill_size, read.spill_end)
        self.unreadable += read.unreadable
        self.malformed += read.malformed
        self.json_answers += read.json_answers
        counts = self.json_key_counts
        for key, count in read.key_counts.items():  # as counted one file after the other
            if key in counts:
                counts[key] += count
            elif len(counts) < MAX_TRACKED_KEYS:
                counts[key] = count

    def _group_number(self, group: str) -> int:
        if group not in self.group_names:
            self.group_names.append(group)
        return self.group_names.index(group)

    # -- the merge ----------------------------------------------------------------------
    def _built(self) -> Any:
        """The winners (numpy records; position = row), with their hashes' high halves sorted
        for lookups; conflicts and duplicates found on the way (once)."""
        if self._table is not None:
            return self._table
        import numpy as np

        self._answers.ready()
        every = self._gathered()
        if len(every) == 0:
            self._table = self._his = every
            return every
        order, his = merge_order(every)
        tied = _tied_slots(his)
        same = _same_neighbours(every, order[tied], ("hi", "lo")) if len(tied) else None
        if same is None or not same.any():  # no custom_id twice (nearly always)
            # every record is a winner: the records stay where they are and the lookups go
            # through the merge order (moving them cost ~0.1 s of one core per million)
            small = np.uint32 if len(order) <= np.iinfo(np.uint32).max else np.intp
            self._table, self._his, self._slots = every, his, order.astype(small)
            self._search = HashSearch(his)  # before a forked writer: shared, not built twice
            return every
        runs = order[tied]
        repeated = np.append(same, False) | np.append(False, same)
        self._find_duplicates(every[np.sort(runs[repeated])])  # in the order added
        self._find_conflicts(every, runs, same)  # `same` is false between two runs
        keep = np.ones(len(order), dtype=bool)
        keep[tied[:-1][same]] = False  # the last of a custom_id's run wins
        order, his = order[keep], his[keep]
        # Beside the records only the merge order, the sorted high halves and one gathered
        # column exist at a time (~75 bytes per result at the peak); the winners are moved to
        # the front of the records in place (in hash order), never copied as a whole.
        for name in every.dtype.names:
            column = every[name]
            column[: len(order)] = np.take(column, order)  # take: 3x faster than column[order]
        self._table = every[: len(order)]
        self._his = his
        self._search = HashSearch(his)
        return self._table

    def _gathered(self) -> Any:
        """Every file's records in one array, each part freed once copied (no 2x peak)."""
        import numpy as np

        parts, self._parts = self._parts, []
        every = np.empty(sum(len(p) for p in parts), dtype=RECORD)
        whole = f"V{every.dtype.itemsize}"  # copied as whole records: 5x faster than by field
        into = every.view(whole)
        at = 0
        for n, part in enumerate(parts):
            into[at : at + len(part)] = part.view(whole)
            at += len(part)
            parts[n] = None
        return every

    def _find_duplicates(self, repeated: Any) -> None:
        """One batch (rank) of one group answering a custom_id more than once (`repeated`: the
        records of the custom_ids with more than one result, in the order they were added)."""
        import numpy as np

        order = np.lexsort((repeated["rank"], repeated["group"], repeated["lo"], repeated["hi"]))
        repeat = _same_neighbours(repeated, order, ("hi", "lo", "group", "rank"))
        self.duplicate_count = int(repeat.sum())
        entries = repeated[order[np.flatnonzero(repeat) + 1]]
        ids = self._ids_of(entries)  # each blob read once, not once per repeat
        for entry, custom_id in zip(entries, ids, strict=True):
            if custom_id in self.duplicates:
                count, path = self.duplicates[custom_id]
                self.duplicates[custom_id] = (count + 1, path)
            elif len(self.duplicates) < 3:
                self.duplicates[custom_id] = (2, self.sources[int(entry["source"])])

    def _find_conflicts(self, every: Any, order: Any, same_id: Any) -> None:
        """The same custom_id from two groups: counted per pair of groups, a few examples
        (`order`: records in merge order, `same_id`: per neighbouring pair, one custom_id)."""
        import numpy as np

        starts = np.flatnonzero(np.append(True, ~same_id))
        groups = every["group"][order]
        low = np.minimum.reduceat(groups, starts)
        high = np.maximum.reduceat(groups, starts)
        del groups
        clash = np.flatnonzero(low != high)
        for run in clash:
            key = (self.group_names[int(low[run])], self.group_names[int(high[run])])
            conflict = self._conflicts.setdefault(key, Conflict(key))
            conflict.count += 1
            if len(conflict.examples) < 3:
                conflict.examples.append(self._spilled(every[order[starts[run]]])[0])

    @property
    def conflicts(self) -> dict[tuple[str, str], Conflict]:
        self._built()
        return self._conflicts

    # -- looking up ---------------------------------------------------------------------
    def position(self, custom_id: str) -> int | None:
        """The winner's row in the table, or None when the custom_id has no result."""
        import numpy as np

        table = self._built()
        hi, lo = id_hash(custom_id)
        his = self._his
        i = int(np.searchsorted(his, np.uint64(hi)))
        while i < len(table) and int(his[i]) == hi:
            at = i if self._slots is None else int(self._slots[i])
            if int(table["lo"][at]) == lo:
                return at
            i += 1
        return None

    def positions(self, custom_ids: list[str]) -> list[int | None]:
        """position() of many custom_ids at once (one numpy search)."""
        return [None if p < 0 else p for p in self.found(custom_ids).tolist()]

    def found(self, custom_ids: list[str]) -> Any:
        """The winners' positions of many custom_ids (int64, -1 where there is no result)."""
        import numpy as np

        table = self._built()
        if not custom_ids or len(table) == 0:
            return np.full(len(custom_ids), -1, dtype=np.int64)
        his, los = id_halves(id_digests(custom_ids))
        assert self._search is not None
        at = self._search.left(his)  # np.searchsorted(self._his, his), a bucket table first
        inside = np.minimum(at, len(table) - 1)
        same_high = (at < len(table)) & (self._his[inside] == his)
        if self._slots is not None:
            inside = self._slots[inside].astype(np.intp)
        hit = same_high & (table["lo"][inside] == los)
        found = np.where(hit, inside, -1).astype(np.int64)
        for n in np.flatnonzero(same_high & ~hit).tolist():
            walked = self.position(custom_ids[n])  # equal high halves: walk the run
            found[n] = -1 if walked is None else walked
        return found

    def __contains__(self, custom_id: object) -> bool:
        return isinstance(custom_id, str) and self.position(custom_id) is not None

    def __len__(self) -> int:
        return len(self._built())

    def ok_flags(self) -> Any:
        """Per winner, whether it is a success (numpy array, by position)."""
        return self._built()["ok"].astype(bool)

    def ok_at(self, position: int) -> bool:
        return bool(self._built()["ok"][position])

    def entry_ok(self, custom_id: str) -> bool | None:
        """None without a result, else whether it is a success."""
        position = self.position(custom_id)
        return None if position is None else self.ok_at(position)

    def answer_sizes(self, positions: Any) -> Any:
        """The sizes in bytes of the answers of the winners at `positions` (numpy)."""
        return self._built()["size"][positions]

    def raw_lines(self, positions: Any) -> Iterator[bytes]:
        """The raw result lines of the winners at `positions` (numpy int array), in order,
        each ending in a line feed, in pieces of about 1 MiB (SourceFiles.lines)."""
        table = self._built()  # column by column: a gather of whole records costs 8x
        return self._files.lines(
            table["source"][positions], table["offset"][positions], table["length"][positions]
        )

    def release_lines(self) -> None:
        """Let go of the result files raw_lines held whole in memory (they were all read)."""
        self._files.release()

    def answers_for(
        self,
        found: Any,
        custom_ids: list[str],
        text: Any = None,
        absent: Mapping[str, str] | None = None,
    ) -> Any:
        """The answers (an Arrow table of answerstore.COLUMNS) of the winners at `found`
        (numpy ints; -1: no result, a row of nulls, or of `absent`'s text in the columns it
        names), which must belong to `custom_ids`: the custom_ids read back are compared with
        them all at once (`text`: the same custom_ids as an Arrow string array, when the
        caller has made it: id_text)."""
        import numpy as np

        present = found >= 0
        table = self._built()
        if present.any():
            at = np.where(present, found, 0)
            blobs, rows = table["blob"][at], table["row"][at]
        else:  # nothing to read (perhaps no results at all)
            blobs = rows = np.zeros(len(found), dtype=np.int64)
        taken = self._answers.take(blobs, rows, present, absent=absent)
        self._same_ids(taken.column("custom_id"), custom_ids, present, text)
        return taken

    def _same_ids(self, column: Any, custom_ids: list[str], present: Any, text: Any) -> None:
        """Raise when a custom_id read back is not the one asked for (a hash collision)."""
        import pyarrow as pa
        import pyarrow.compute as pc

        if column.type == pa.string():
            asked = text if text is not None else id_text(custom_ids)
            # None: a lone surrogate, compared in Python below
            if asked is not None and pc.all(pc.equal(column, asked)).as_py() is not False:
                return  # (nulls: no result)
        for stored, asked_id, here in zip(
            python_column(column, "custom_id"), custom_ids, present.tolist(), strict=True
        ):
            if here and stored != asked_id:
                self._row([stored, *[""] * 7], asked_id)

    def raw_line_at(self, position: int) -> bytes:
        entry = self._built()[position]
        return self._files.line(int(entry["source"]), int(entry["offset"]), int(entry["length"]))

    def raw_line(self, custom_id: str) -> bytes:
        position = self.position(custom_id)
        if position is None:
            raise KeyError(custom_id)
        return self.raw_line_at(position)

    def result_at(self, position: int, custom_id: str) -> RowResult:
        """The row result of the winner at `position`, which must belong to `custom_id`."""
        return self._row(self._spilled(self._built()[position]), custom_id)

    def _row(self, spilled: list[Any], custom_id: str) -> RowResult:
        if spilled[0] != custom_id:  # two custom_ids with one 128-bit hash: never guess
            raise BatchError(
                f"custom_ids {quoted(custom_id)} and {quoted(spilled[0])} share an index hash",
                hint="please report this; get these results with their batch ids one at a time",
            )
        status, content, finish, refusal, prompt, completion, error = spilled[1:]
        result = RowResult(status, content, finish, refusal,
                           None if prompt == "" else prompt,
                           None if completion == "" else completion, error)  # fmt: skip
        if status == "ok" and self.json_key_counts:
            result.fields = answers.json_object(content)
        return result

    def result(self, custom_id: str) -> RowResult:
        position = self.position(custom_id)
        return MISSING if position is None else self.result_at(position, custom_id)

    def record(self, custom_id: str) -> dict[str, Any]:
        """The parsed line; one that cannot be parsed reads as a `malformed_result` error."""
        try:
            record = answers.parse_line(self.raw_line(custom_id))
        except answers.MalformedResult as exc:
            record = None
            reason = str(exc)
        else:
            reason = "the line is not a JSON object"
        if isinstance(record, dict):
            return record
        message = f"{reason} (the raw line is in the responses file)"
        return {"custom_id": custom_id, "response": None,
                "error": {"code": answers.MALFORMED, "message": message}}  # fmt: skip

    def custom_id_at(self, position: int) -> str:
        return str(self._spilled(self._built()[position])[0])

    def custom_ids(self) -> Iterator[str]:
        """Every custom_id with a result, in the table's order (read back from the spill file,
        each blob once: the custom_ids alone, as Arrow text, are held while they are walked)."""
        table = self._built()
        ids = self._answers.take(table["blob"], table["row"], columns=("custom_id",)).column(0)
        for start in range(0, len(ids), _WALK_ROWS):
            yield from python_column(ids.slice(start, _WALK_ROWS), "custom_id")

    def custom_ids_at(self, positions: Any) -> list[str]:
        """The custom_ids of the winners at `positions` (numpy ints), each blob read once."""
        return self._ids_of(self._built()[positions])

    def _ids_of(self, entries: Any) -> list[str]:
        """The custom_ids of these records (numpy), each blob read once."""
        taken = self._answers.take(entries["blob"], entries["row"], columns=("custom_id",))
        return python_column(taken.column(0), "custom_id")

    def counts(self) -> dict[str, int]:
        table = self._built()
        ok = int(table["ok"].sum())
        return {"ok": ok, "error": len(table) - ok}

    def natural_order(self) -> list[str]:
        return sorted(self.custom_ids(), key=natural_key)

    def needs_retry(self, custom_id: str) -> bool:
        return not self.entry_ok(custom_id)

    def any_needs_retry(self, custom_ids: list[str]) -> bool:
        """Whether any of these custom_ids failed or has no result (one numpy search)."""
        found = self.found(custom_ids)
        return bool((found < 0).any()) or not bool(self._built()["ok"][found].all())

    def new_mask(self) -> Any:
        """A false flag per result, for marking the ones used (numpy bool array)."""
        import numpy as np

        return np.zeros(len(self._built()), dtype=bool)

    # -- files --------------------------------------------------------------------------
    def _spilled(self, entry: Any) -> list[Any]:
        """One record's answer cells (custom_id first) as Python values."""
        return self._answers.row(int(entry["blob"]), int(entry["row"]))

    def close(self) -> None:
        self._files.close()
        self._answers.close()

    def __enter__(self) -> ResultIndex:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
