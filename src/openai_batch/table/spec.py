"""A table spec: which data file a request file was made from, and how to read its rows again.

make-batch-file records one per request file in the ledger; get-batch-results, run, jobs and
chat-complete read the table again with it to join answers to rows. It travels as one typed
value, not as loose fields, so the reading options, the custom_id rule and the data file's
identity when the requests were made (size, mtime, digest: the join refuses a changed table)
cannot get separated on the way.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from openai_batch.table.read import TableOptions


@dataclass(frozen=True)
class TableSpec:
    """A data file (absolute path), how it was read, and how its rows got their custom_ids."""

    path: str
    sheet: str | None = None
    delimiter: str | None = None
    encoding: str | None = None
    limit: int | None = None
    keep_spaces: bool = False
    ragged_rows: bool = False
    id_column: str | None = None
    id_prefix: str = "id_"
    # The data file when the request file was made (None: not known, e.g. given with --data).
    size: int | None = None
    mtime_ns: int | None = None
    digest: str | None = None

    def read_options(self) -> TableOptions:
        """The options to open the table with, exactly as when the requests were made."""
        return TableOptions.of(self)

    def with_ids(self, id_column: str | None, id_prefix: str | None) -> TableSpec:
        """This spec with the custom_id rule the user gave now (None keeps the recorded one)."""
        changes: dict[str, Any] = {}
        if id_column is not None:
            changes["id_column"] = id_column
        if id_prefix is not None:
            changes["id_prefix"] = id_prefix
        return dataclasses.replace(self, **changes)

    def elsewhere(self, path: str) -> TableSpec:
        """The same reading at another path (the user's --data): its identity is not known."""
        return dataclasses.replace(self, path=path, size=None, mtime_ns=None, digest=None)

    def stored_options(self) -> dict[str, Any]:
        """What the ledger keeps as JSON beside the path and digest columns."""
        return {
            "id_column": self.id_column,
            "id_prefix": self.id_prefix,
            "limit": self.limit,
            "sheet": self.sheet,
            "delimiter": self.delimiter,
            "encoding": self.encoding,
            "keep_spaces": self.keep_spaces,
            "ragged_rows": self.ragged_rows,
            "data_size": self.size,
            "data_mtime_ns": self.mtime_ns,
        }

    @classmethod
    def from_stored(cls, path: str, digest: str | None, options: dict[str, Any]) -> TableSpec:
        """A spec read back from the ledger; keys it does not know are ignored."""
        known = {k: v for k, v in options.items() if v is not None}
        return cls(
            path=path,
            sheet=known.get("sheet"),
            delimiter=known.get("delimiter"),
            encoding=known.get("encoding"),
            limit=known.get("limit"),
            keep_spaces=bool(known.get("keep_spaces")),
            ragged_rows=bool(known.get("ragged_rows")),
            id_column=known.get("id_column"),
            id_prefix=known.get("id_prefix") or "id_",
            size=known.get("data_size"),
            mtime_ns=known.get("data_mtime_ns"),
            digest=digest,
        )
