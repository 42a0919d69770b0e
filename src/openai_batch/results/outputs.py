"""What a results command writes and what its table joins to, as one typed object.

get-batch-results, run, jobs and chat-complete take the same options (-o/--responses, --csv or
--table, --data, --requests, --id-column, --id-prefix); they travel together as `Outputs`
instead of six loose parameters through every function between the command and the join.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from openai_batch.results.tablewriter import TableTarget, table_target

DEFAULT_RESPONSES = Path("batch-responses.jsonl")


@dataclass(frozen=True)
class Outputs:
    """The responses file, the table (`csv` or `table`) and where the table's rows come from."""

    responses: Path = DEFAULT_RESPONSES
    csv: Path | None = None  # --csv: always CSV
    table: Path | None = None  # --table: the format follows the extension
    data: Path | None = None  # the table the requests were made from (trusted as given)
    requests: Path | None = None  # the request file giving the order, when the ledger lacks it
    id_column: str | None = None
    id_prefix: str | None = None

    def target(self) -> TableTarget | None:
        """The table to write, if any (a wrong name or both --csv and --table is a BatchError)."""
        return table_target(self.table, csv_path=self.csv)

    def written(self) -> list[tuple[str, Path]]:
        """(flag, path) of every file this writes, for the output guard."""
        target = self.target()
        return [("-o", self.responses), *([(target.flag, target.path)] if target else [])]
