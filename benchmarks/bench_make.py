"""Benchmark make-batch-file against the naive renderer and the I/O floor, in one run.

    python benchmarks/bench_make.py --rows 1000000

Generates a persona table (ID, Age, College Education, Description) and the persona survey template
(templates/persona_survey.json plus the seed tool's sampling parameters: about 880 bytes per
request), then runs, each in its own subprocess so peak memory is that run's alone:

- naive:  per row, deep-copy the template, substitute the cell, `json.dumps` the line (one file);
- floor:  read the same CSV with `pyarrow.csv` and write as many bytes as the tool wrote, then
          fsync (the tool fsyncs every request file before renaming it into place);
- tool:   `openai-batch make-batch-file` with its defaults: progress bar on, default sharding;
- tool at a fifth of the rows, to show that peak memory does not grow with the rows;
- library: `batchfile.make_batch_files` called directly: the rendering and writing alone,
          without the CLI's summary (sampled validation, token estimate) and ledger;
- `openai-batch --help` against a bare one-command cyclopts app's `--help` (best of 7 each).

The package is byte-compiled first, as `pip install` does (a source checkout run with
PYTHONDONTWRITEBYTECODE would otherwise compile every module on every run).

It prints seconds, rows/s, MB/s of output, peak memory (ru_maxrss) and the ratios the issue sets
as targets. The naive output is compared with the tool's shards joined: they must be the same
bytes. This is a benchmark, not a test: nothing here runs in CI.
"""

from __future__ import annotations

import argparse
import copy
import csv
import hashlib
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from workdir import work_folder

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "templates" / "persona_survey.json"
PLACEHOLDER = "<<Description>>"
SAMPLING = {
    "top_p": 1,
    "frequency_penalty": 0,
    "presence_penalty": 0,
    "response_format": {"type": "text"},
}

FIRST = "Amara Wen Olivia Elena Tariq Victor Jamal Yusuf Samuel Priya Rosa Isabel Chloe Grace Keiko"
LAST = "Schmidt Johnson Kim Dubois Kowalski Patel Okafor Nguyen Murphy Andersson Tanaka Rossi Lee"
JOBS = [
    "retail manager",
    "social worker",
    "librarian",
    "pharmacist",
    "pilot",
    "software engineer",
    "journalist",
    "accountant",
    "nurse",
    "truck driver",
    "dental hygienist",
    "electrician",
]
PLACES = [
    "Austin",
    "Phoenix",
    "Miami",
    "rural Georgia",
    "Seattle",
    "Boston",
    "Chicago",
    "a small town in Ohio",
    "a college town in Iowa",
]
HOBBIES = [
    "photography",
    "board games",
    "hiking",
    "woodworking",
    "knitting",
    "birdwatching",
    "anime",
    "classic cars",
    "jazz",
    "baking",
    "gardening",
    "rock climbing",
    "yoga",
    "chess",
]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def make_template(folder: Path) -> Path:
    body = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    body.update(SAMPLING)
    path = folder / "persona_template.json"
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def make_data(folder: Path, rows: int) -> Path:
    """A persona CSV like sample_data/personas.csv; the same rows for the same count."""
    path = folder / f"personas_{rows}.csv"
    if path.exists():
        return path
    rng = random.Random(20240501)
    first, last = FIRST.split(), LAST.split()
    temp = path.with_suffix(".part")
    with open(temp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["ID", "Age", "College Education", "Description"])
        for i in range(1, rows + 1):
            age = rng.randint(18, 80)
            description = (
                f"{rng.choice(first)} {rng.choice(last)} is a {age} year old "
                f"{rng.choice(JOBS)} from {rng.choice(PLACES)} who enjoys {rng.choice(HOBBIES)}."
            )
            writer.writerow([i, age, rng.choice(("Yes", "No")), description])
    temp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------
# What runs in the child processes
# ---------------------------------------------------------------------------------------------


def child_naive(template: Path, data: Path, output: Path) -> None:
    """The straightforward renderer: a deep copy, a substitution and json.dumps per row."""
    body = json.loads(template.read_text(encoding="utf-8"))

    def fill(node: Any, value: str) -> Any:
        if isinstance(node, dict):
            return {k: fill(v, value) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v, value) for v in node]
        if isinstance(node, str) and PLACEHOLDER in node:
            return node.replace(PLACEHOLDER, value)
        return node

    with (
        open(data, newline="", encoding="utf-8-sig") as src,
        open(output, "w", encoding="utf-8", newline="") as out,
    ):
        for row, record in enumerate(csv.DictReader(src)):
            request = {
                "custom_id": f"id_{row}",
                "method": "POST",
                "url": "/v1/chat/completions",
                "body": fill(copy.deepcopy(body), record["Description"]),
            }
            out.write(json.dumps(request, ensure_ascii=False) + "\n")
        out.flush()
        os.fsync(out.fileno())


def child_floor(data: Path, output: Path, nbytes: int) -> None:
    """Read the CSV with pyarrow.csv, then write and fsync `nbytes` bytes."""
    import pyarrow.csv as pacsv

    rows = 0
    with pacsv.open_csv(data, read_options=pacsv.ReadOptions(block_size=1 << 20)) as reader:
        for block in reader:
            rows += block.num_rows
    chunk = b"x" * (8 << 20)
    with open(output, "wb", buffering=0) as out:
        written = 0
        while written < nbytes:
            written += out.write(memoryview(chunk)[: min(len(chunk), nbytes - written)])
        os.fsync(out.fileno())


def child_library(template: Path, data: Path, output: Path) -> None:
    """make-batch-file's library call alone: render and write, without the CLI's summary
    (the sampled validation and token count) and without starting the CLI."""
    from openai_batch.requestfile.make import MakeOptions, make_batch_files
    from openai_batch.ui.progress import rendering_bar

    make_batch_files(template, data, MakeOptions(output=output, progress=rendering_bar))


def run_child(args: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident memory (bytes) of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # the progress bar goes here: read it so the child never blocks
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(args)} failed:\n{err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss * 1024


# ---------------------------------------------------------------------------------------------
# The parent: run everything, print the table
# ---------------------------------------------------------------------------------------------


def tool(template: Path, data: Path, outdir: Path, home: Path) -> tuple[float, int, list[Path]]:
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir()
    env = {**os.environ, "OPENAI_BATCH_HOME": str(home)}
    cmd = [sys.executable, "-m", "openai_batch", "make-batch-file", str(template), str(data)]
    seconds, peak = run_child([*cmd, "-o", str(outdir / "requests.jsonl")], env)
    return seconds, peak, sorted(outdir.glob("requests*.jsonl"))


BARE_APP = """
from cyclopts import App
app = App()
@app.command
def hello(name: str) -> None:
    \"\"\"Say hello.\"\"\"
    print(name)
app()
"""


def help_seconds(repeat: int = 7) -> tuple[float, float]:
    """Best wall time of `openai-batch --help` and of a bare one-command cyclopts app's."""

    def best(args: list[str]) -> float:
        return min(run_child(args)[0] for _ in range(repeat))

    ours = best([sys.executable, "-m", "openai_batch", "--help"])
    bare = best([sys.executable, "-c", BARE_APP, "--help"])
    return ours, bare


def sha256_of(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 22):
                digest.update(chunk)
    return digest.hexdigest()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows to render")
    parser.add_argument("--repeat", type=int, default=5, help="runs of tool and floor (best kept)")
    parser.add_argument("--workdir", type=Path, help="keep data and outputs here (default: temp)")
    parser.add_argument("--skip-naive", action="store_true", help="leave out the slow renderer")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        if kind == "naive":
            child_naive(Path(rest[0]), Path(rest[1]), Path(rest[2]))
        elif kind == "library":
            child_library(Path(rest[0]), Path(rest[1]), Path(rest[2]))
        else:
            child_floor(Path(rest[0]), Path(rest[1]), int(rest[2]))
        return 0

    with work_folder(args.workdir, "bench_make.") as work:
        return bench(args, work)


def bench(args: argparse.Namespace, work: Path) -> int:
    import compileall

    import openai_batch

    compileall.compile_dir(Path(openai_batch.__file__).parent, quiet=1)
    rows, small_rows = args.rows, max(1, args.rows // 5)
    print(f"generating {rows:,} persona rows in {work} ...", file=sys.stderr)
    template = make_template(work)
    data = make_data(work, rows)
    small = make_data(work, small_rows)
    home = work / "home"
    outdir = work / "out"
    results: dict[str, tuple[float, int, int]] = {}  # name -> seconds, peak, rows

    best: tuple[float, int] | None = None
    shards: list[Path] = []
    for _ in range(args.repeat):
        seconds, peak, shards = tool(template, data, outdir, home)
        best = (seconds, peak) if best is None or seconds < best[0] else best
    assert best is not None
    results["tool"] = (*best, rows)
    nbytes = sum(p.stat().st_size for p in shards)
    tool_sha = sha256_of(shards)

    floor_best: tuple[float, int] | None = None
    for _ in range(args.repeat):
        target = work / "floor.out"
        target.unlink(missing_ok=True)
        me = [sys.executable, __file__, "--child", "floor", str(data), str(target), str(nbytes)]
        run = run_child(me)
        floor_best = run if floor_best is None or run[0] < floor_best[0] else floor_best
        target.unlink(missing_ok=True)
    assert floor_best is not None
    results["floor"] = (*floor_best, rows)

    seconds, peak, _ = tool(template, small, outdir, home)
    results["tool_small"] = (seconds, peak, small_rows)

    library_best: tuple[float, int] | None = None
    for _ in range(args.repeat):
        shutil.rmtree(outdir, ignore_errors=True)
        outdir.mkdir()
        me = [sys.executable, __file__, "--child", "library", str(template), str(data)]
        run = run_child([*me, str(outdir / "requests.jsonl")])
        library_best = run if library_best is None or run[0] < library_best[0] else library_best
    assert library_best is not None
    results["library"] = (*library_best, rows)

    helps = help_seconds()
    identical = None
    if not args.skip_naive:
        naive_out = work / "naive.jsonl"
        me = [sys.executable, __file__, "--child", "naive", str(template), str(data)]
        results["naive"] = (*run_child([*me, str(naive_out)]), rows)
        identical = sha256_of([naive_out]) == tool_sha
        naive_out.unlink()
    shutil.rmtree(outdir, ignore_errors=True)

    report(results, nbytes, len(shards), identical, helps)
    return 0


def report(
    results: dict[str, tuple[float, int, int]],
    nbytes: int,
    files: int,
    identical: bool | None,
    helps: tuple[float, float],
) -> None:
    mb = nbytes / 1e6
    names = {
        "tool": "openai-batch make-batch-file",
        "tool_small": "openai-batch, a fifth of the rows",
        "library": "batchfile.make_batch_files (no CLI summary)",
        "floor": "I/O floor (pyarrow.csv read + write + fsync)",
        "naive": "naive renderer (deepcopy + json.dumps per row)",
    }
    print(f"{'':48} {'rows':>10} {'seconds':>8} {'rows/s':>11} {'MB/s':>7} {'peak MB':>8}")
    for key, label in names.items():
        if key not in results:
            continue
        seconds, peak, rows = results[key]
        out_mb = mb * rows / results["tool"][2]
        print(
            f"{label:48} {rows:>10,} {seconds:>8.2f} {rows / seconds:>11,.0f} "
            f"{out_mb / seconds:>7.0f} {peak / 1e6:>8.0f}"
        )
    tool_s, tool_peak, rows = results["tool"]
    floor_s = results["floor"][0]
    print(f"\noutput: {mb:,.1f} MB in {files} files for {rows:,} rows")
    checks = [
        (
            f"{rows:,} rows end to end",
            f"{tool_s:.2f} s",
            "<= 3 s per 1M rows",
            tool_s * 1e6 / rows <= 3,
        ),
        ("tool / I/O floor", f"{tool_s / floor_s:.2f}x", "<= 1.5x", tool_s / floor_s <= 1.5),
        ("peak memory", f"{tool_peak / 1e6:.0f} MB", "<= 250 MB", tool_peak <= 250e6),
        (
            "peak / peak at a fifth of the rows",
            f"{tool_peak / results['tool_small'][1]:.2f}x",
            "<= 1.3x",
            tool_peak / results["tool_small"][1] <= 1.3,
        ),
        (
            "--help / bare cyclopts app's --help",
            f"{helps[0] / helps[1]:.2f}x",
            "<= 1.3x",
            helps[0] / helps[1] <= 1.3,
        ),
    ]
    if "naive" in results:
        speedup = results["naive"][0] / tool_s
        checks.insert(1, ("naive / tool", f"{speedup:.1f}x", ">= 25x", speedup >= 25))
    for label, value, target, met in checks:
        print(f"{label:36} {value:>10}   target {target:20} {'met' if met else 'NOT met'}")
    if identical is not None:
        print(f"naive output == tool output (bytes): {'yes' if identical else 'NO'}")


if __name__ == "__main__":
    raise SystemExit(main())
