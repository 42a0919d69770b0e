"""Benchmark the results join against make-batch-file on the same table and the I/O floor.

    python benchmarks/bench_results.py --rows 1000000
    python benchmarks/bench_results.py --rows 20000        # a quick look

Builds, offline, what a finished job leaves behind: the persona table of bench_make.py, its
request files (make-batch-file, timed: the reference), and for every request file the Batch
output and error files as the service returns them (shuffled, about 1% errors, a few requests
without any result), then runs, each in its own subprocess so peak memory is that run's alone:

- join:  what `get-batch-results --job NAME -o responses.jsonl --csv out.csv` does once the
         files are downloaded (results.ResultIndex; the responses file in request order, in
         a forked child for a big join, while join.write_table joins the data table, with
         the progress bar on; the request files with failures found on the way);
- join at a fifth of the rows, to show that peak memory does not grow with the rows;
- floor: read every output and error file and write the same bytes to one file, then fsync.

make-batch-file and the join are timed in turns (make, join, make, join, ...), best of
--repeat each, so a machine shared with other work slows both alike; each run starts with no
output of an earlier one in place (replacing a big file costs the time to free its pages). It
prints wall seconds, CPU seconds (user + system of the child and its children: steadier than
wall time on a busy machine), rows/s, peak memory (ru_maxrss) and the ratios issue 15 sets as
targets, on wall time and on CPU time.
This is a benchmark, not a test: CI only runs it tiny (tests/test_bench_results.py) so it
keeps working.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from bench_make import ROOT, make_data, make_template, run_child  # noqa: E402
from workdir import work_folder  # noqa: E402

Timing = tuple[float, float, int]  # wall seconds, CPU seconds, peak bytes

ANSWER = (
    "As {name}, I find the image on the right the most appealing. Its clean lines and bright "
    "colours speak to my interest in design, and the futuristic look reminds me of the science "
    "fiction I grew up with. The other two are charming, but this one feels like it was made "
    "for someone like me."
)
ERROR_EVERY = 97  # about 1% of the requests fail
MISSING_EVERY = 1009  # and a few have no result at all


def build_outputs(shards: list[Path], folder: Path, seed: int = 7) -> list[tuple[Path, Path]]:
    """Per request file, a shuffled output file and error file in the Batch API's layout."""
    rng = random.Random(seed)
    made = []
    row = 0
    for n, shard in enumerate(shards):
        ok_lines, error_lines = [], []
        with open(shard, "rb") as fh:
            for raw in fh:
                custom_id = json.loads(raw)["custom_id"]
                row += 1
                if row % MISSING_EVERY == 0:
                    continue
                if row % ERROR_EVERY == 0:
                    body = {"error": {"message": "The server had an error", "type":
                                      "server_error", "param": None, "code": None}}  # fmt: skip
                    status = 500
                else:
                    content = ANSWER.format(name=custom_id)
                    body = {
                        "id": f"chatcmpl-{row:x}", "object": "chat.completion", "created": 1,
                        "model": "gpt-4o-2024-08-06",
                        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                                     "message": {"role": "assistant", "content": content,
                                                 "refusal": None}}],
                        "usage": {"prompt_tokens": 212, "completion_tokens": 61,
                                  "total_tokens": 273},
                    }  # fmt: skip
                    status = 200
                line = json.dumps({
                    "id": f"batch_req_{row:032x}", "custom_id": custom_id,
                    "response": {"status_code": status, "request_id": f"{row:032x}",
                                 "body": body},
                    "error": None,
                })  # fmt: skip
                (ok_lines if status == 200 else error_lines).append(line)
        rng.shuffle(ok_lines)
        rng.shuffle(error_lines)
        output = folder / f"file-out{n}.jsonl"
        errors = folder / f"file-err{n}.jsonl"
        output.write_text("\n".join(ok_lines) + "\n", encoding="utf-8")
        errors.write_text("\n".join(error_lines) + "\n", encoding="utf-8")
        made.append((output, errors))
    return made


def child_join(args: list[str]) -> None:
    """The join as collect() runs it, over files already downloaded."""
    spec = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    from openai_batch.results import join, joinplan
    from openai_batch.results import merge as results
    from openai_batch.results.background import start_responses
    from openai_batch.results.tablewriter import TableTarget
    from openai_batch.table.spec import TableSpec

    index = results.ResultIndex()
    index.add_files([(Path(path), rank, f"g{rank}") for rank, pair in enumerate(spec["outputs"])
                     for path in pair])  # fmt: skip
    plan = joinplan.JoinPlan(order_files=[Path(p) for p in spec["requests"]],
                             table=TableSpec(spec["data"]))  # fmt: skip
    try:
        results.problems(index)
        pending = start_responses(index, Path(spec["responses"]), plan.order())
        try:
            join.write_table(
                index, TableTarget(Path(spec["table"]), "csv"), chunks=joinplan.iter_data(plan),
                order=plan.order(), progress=True, ready=pending.result,
            )  # fmt: skip
        except BaseException:
            pending.cancel()
            raise
        pending.result()  # its pass found the request files with failures too
    finally:
        index.close()


def child_floor(args: list[str]) -> None:
    """Read every output and error file; write the same bytes to one file; fsync."""
    with open(args[0], "wb", buffering=0) as out:
        for name in args[1:]:
            with open(name, "rb") as fh:
                while block := fh.read(8 << 20):
                    out.write(block)
        os.fsync(out.fileno())


def make_command(template: Path, data: Path, outdir: Path) -> list[str]:
    cmd = [sys.executable, "-m", "openai_batch", "make-batch-file", str(template), str(data)]
    return [*cmd, "-o", str(outdir / "requests.jsonl")]


def make_requests(template: Path, data: Path, outdir: Path, home: Path) -> Timing:
    shutil.rmtree(outdir, ignore_errors=True)
    outdir.mkdir(parents=True)
    env = {**os.environ, "OPENAI_BATCH_HOME": str(home)}
    return run_timed(make_command(template, data, outdir), env)


def join_timed(me: list[str], spec: Path) -> Timing:
    """One join, timed; its outputs from an earlier run removed first, as make_requests removes
    its own (replacing a 1 GB file frees its pages: ~0.25 s that a first join never pays)."""
    outputs = json.loads(spec.read_text(encoding="utf-8"))
    for name in ("responses", "table"):
        Path(outputs[name]).unlink(missing_ok=True)
    return run_timed([*me, "join", str(spec)])


def run_timed(args: list[str], env: dict[str, str] | None = None) -> Timing:
    """Wall seconds, CPU seconds (user + system, its children included) and peak resident
    memory of one subprocess."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT
    )
    assert proc.stderr is not None
    err = proc.stderr.read()  # the progress bar goes here: read it so the child never blocks
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{' '.join(args)} failed:\n{err.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024


def prepare(work: Path, rows: int, template: Path) -> dict[str, object]:
    """prepare_here, in a child process: the parent stays small, since a child's peak memory
    (ru_maxrss) starts from the parent's size when it is spawned."""
    result = work / f"prepared_{rows}.json"
    me = [sys.executable, __file__, "--child", "prepare", str(work), str(rows), str(template)]
    run_child([*me, str(result)])
    return json.loads(result.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def child_prepare(args: list[str]) -> None:
    work, rows, template, result = args
    made = prepare_here(Path(work), int(rows), Path(template))
    Path(result).write_text(json.dumps(made), encoding="utf-8")


def prepare_here(work: Path, rows: int, template: Path) -> dict[str, object]:
    """The table, its request files and their Batch outputs."""
    data = make_data(work, rows)
    home = work / "home"
    outdir = work / f"requests_{rows}"
    make_requests(template, data, outdir, home)
    shards = sorted(outdir.glob("requests*.jsonl"), key=_shard_number)
    downloads = work / f"downloads_{rows}"
    shutil.rmtree(downloads, ignore_errors=True)
    downloads.mkdir()
    outputs = build_outputs(shards, downloads)
    spec = {
        "data": str(data), "requests": [str(p) for p in shards],
        "outputs": [[str(o), str(e)] for o, e in outputs],
        "responses": str(work / f"responses_{rows}.jsonl"), "table": str(work / f"out_{rows}.csv"),
    }  # fmt: skip
    spec_path = work / f"spec_{rows}.json"
    spec_path.write_text(json.dumps(spec), encoding="utf-8")
    return {"data": str(data), "spec": str(spec_path),
            "outputs": [[str(o), str(e)] for o, e in outputs]}  # fmt: skip


def _shard_number(path: Path) -> int:
    digits = "".join(c for c in path.stem.rsplit("_", 1)[-1] if c.isdigit())
    return int(digits) if path.stem != "requests" and digits else 0


def best_of(runs: list[Timing]) -> Timing:
    """The least wall time, the least CPU time and the least peak of several runs."""
    return min(r[0] for r in runs), min(r[1] for r in runs), min(r[2] for r in runs)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each (best kept)")
    parser.add_argument("--workdir", type=Path, help="keep the files here (default: temp)")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, *rest = args.child
        {"join": child_join, "floor": child_floor, "prepare": child_prepare}[kind](rest)
        return 0
    with work_folder(args.workdir, "bench_results.") as work:
        return bench(args, work)


def bench(args: argparse.Namespace, work: Path) -> int:
    rows, small_rows = args.rows, max(1, args.rows // 5)
    print(f"building {rows:,} rows of requests and results in {work} ...", file=sys.stderr)
    started = time.perf_counter()
    template = make_template(work)
    big = prepare(work, rows, template)
    small = prepare(work, small_rows, template)
    print(f"(built in {time.perf_counter() - started:.0f} s)", file=sys.stderr)
    me = [sys.executable, __file__, "--child"]
    timed_dir = work / "requests_timed"
    makes, joins = [], []
    for _ in range(args.repeat):  # in turns: both see the same load
        makes.append(make_requests(template, Path(str(big["data"])), timed_dir, work / "home"))
        joins.append(join_timed(me, Path(str(big["spec"]))))
    shutil.rmtree(timed_dir, ignore_errors=True)
    timings: dict[str, tuple[Timing, int]] = {}
    timings["make"] = (best_of(makes), rows)
    timings["join"] = (best_of(joins), rows)
    timings["join_small"] = (join_timed(me, Path(str(small["spec"]))), small_rows)
    files = [str(p) for pair in big["outputs"] for p in pair]  # type: ignore[attr-defined]
    floor_out = work / "floor.out"
    floors = []
    for _ in range(args.repeat):
        floor_out.unlink(missing_ok=True)
        floors.append(run_timed([*me, "floor", str(floor_out), *files]))
    timings["floor"] = (best_of(floors), rows)
    floor_out.unlink(missing_ok=True)
    report(timings, sum(Path(f).stat().st_size for f in files))
    return 0


def report(timings: dict[str, tuple[Timing, int]], nbytes: int) -> None:
    names = {
        "join": "join (responses in order + CSV of every row)",
        "join_small": "join, a fifth of the rows",
        "make": "make-batch-file, same table",
        "floor": "I/O floor (read the result files, write them)",
    }
    print(f"{'':48} {'rows':>10} {'seconds':>8} {'CPU s':>8} {'rows/s':>11} {'peak MB':>8}")
    for key, label in names.items():
        (seconds, cpu, peak), rows = timings[key]
        print(f"{label:48} {rows:>10,} {seconds:>8.2f} {cpu:>8.2f} {rows / seconds:>11,.0f} "
              f"{peak / 1e6:>8.0f}")  # fmt: skip
    (join_s, join_cpu, join_peak), rows = timings["join"]
    (make_s, make_cpu, _), _ = timings["make"]
    floor_s = timings["floor"][0][0]
    small_peak = timings["join_small"][0][2]
    print(f"\nresult files: {nbytes / 1e6:,.1f} MB for {rows:,} rows")
    checks = [
        ("join / make-batch-file", f"{join_s / make_s:.2f}x", "<= 5x", join_s / make_s <= 5),
        ("join / make-batch-file, CPU time", f"{join_cpu / make_cpu:.2f}x", "<= 5x",
         join_cpu / make_cpu <= 5),
        ("join / I/O floor", f"{join_s / floor_s:.2f}x", "(for reference)", True),
        ("peak memory", f"{join_peak / 1e6:.0f} MB", "<= 300 MB", join_peak <= 300e6),
        ("peak / peak at a fifth of the rows", f"{join_peak / small_peak:.2f}x", "<= 1.3x",
         join_peak / small_peak <= 1.3),
    ]  # fmt: skip
    for label, value, target, met in checks:
        print(f"{label:36} {value:>10}   target {target:20} {'met' if met else 'NOT met'}")


if __name__ == "__main__":
    raise SystemExit(main())
