"""The pre-upload check of request files (start-batch, upload-batch-file): CPU per 1M lines.

    python benchmarks/bench_validate.py --rows 1000000

Makes the persona survey's request files for `--rows` rows with make-batch-file (shards of
50,000 lines, ~880 bytes each, as `run` makes them), then times in this process, as
start-batch does it, `scan_request_file` over every shard:

- check in full: every line read, hashed and checked against the API's rules (the SDK's
  request types, the published spec, the API's known extra rules, the model's capabilities);
- a file this build already passed: hashed, then found in the ledger (`validate/stamp.py`);
- floor: read, hash and count every line, no check (`--no-check`);
- check in full as start-batch checks several files: in worker processes, one per core
  (`scan_request_files`), timed by the wall clock too.

Prints CPU seconds (this process and its children) and wall seconds per step, CPU per 1M
lines, and the CPU ratio to the floor. Run it
on an older checkout (PYTHONPATH=that/src) for a before figure: where that version has no
ledger of passed files, that line says so. This is a benchmark, not a test.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_make import make_data, make_template  # noqa: E402
from workdir import work_folder  # noqa: E402

from openai_batch.requestfile.limits import OPENAI  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with work_folder(args.workdir, "bench_validate.") as work:
        os.environ["OPENAI_BATCH_HOME"] = str(work / "home")
        return bench(args.rows, work)


def make_files(rows: int, work: Path) -> list[Path]:
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    template, data = make_template(work), make_data(work, rows)
    cli = [sys.executable, "-m", "openai_batch", "make-batch-file", str(template), str(data)]
    subprocess.run([*cli, "-o", str(out / "r.jsonl"), "-q"], check=True, capture_output=True)
    return sorted(out.glob("r*.jsonl"))


def cpu(step: Callable[[], object]) -> tuple[float, float]:
    """CPU seconds (this process and its children) and wall seconds of `step`."""
    before, wall = os.times(), time.perf_counter()
    step()
    after = os.times()
    used = sum(after[:4]) - sum(before[:4])  # user + system, self and children
    return used, time.perf_counter() - wall


def bench(rows: int, work: Path) -> int:
    from openai_batch.requestfile.scan import scan_request_file

    files = make_files(rows, work)
    scan_request_file(files[0])  # load the request types (from the cache) outside the timing
    skips = "ledger" in inspect.signature(scan_request_file).parameters
    steps: list[tuple[str, tuple[float, float] | None]] = [
        ("check in full", cpu(lambda: [scan_request_file(f) for f in files])),
    ]
    if skips:
        from openai_batch.ledger.store import open_ledger

        with open_ledger() as ledger:
            for f in files:  # the first check remembers the pass ...
                scan_request_file(f, ledger=ledger)
            seconds = cpu(lambda: [scan_request_file(f, ledger=ledger) for f in files])
        steps.append(("a file this build already passed", seconds))
    else:
        steps.append(("a file this build already passed", None))
    steps.append(("floor: read, hash, count (--no-check)",
                  cpu(lambda: [scan_request_file(f, check=False) for f in files])))  # fmt: skip
    try:
        from openai_batch.requestfile.scanpool import scan_request_files
    except ImportError:
        steps.append(("check in full, in worker processes", None))
    else:
        pooled = cpu(lambda: scan_request_files(files, check=True, limits=OPENAI))
        steps.append(("check in full, in worker processes", pooled))
    floor = (steps[2][1] or (1.0, 1.0))[0]
    per_million = 1_000_000 / rows
    print(f"{rows:,} request lines in {len(files)} files, pre-upload scan ({os.cpu_count()} cores)")
    print(f"  {'':40} {'CPU s':>7} {'per 1M':>7} {'x floor':>8} {'wall s':>7}")
    for label, timing in steps:
        if timing is None:
            print(f"  {label:40} {'(not in this version)':>24}")
            continue
        used, wall = timing
        print(f"  {label:40} {used:7.2f} {used * per_million:7.2f} {used / floor:8.1f} {wall:7.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
