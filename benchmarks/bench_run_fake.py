"""`run --wait --csv` end to end against the in-repo fake service, step by step.

    python benchmarks/bench_run_fake.py --rows 1000000

The same work as `openai-batch run TEMPLATE DATA --wait --csv out.csv`, timed as the steps the
command takes, each through the CLI in its own process against tests/fake_openai.py (started
here, on loopback): make the request files; upload them and start the batches (the job); wait
for every batch (the fake answers each request when it is polled, so this is the fake's work,
not the service's hours) and download the output files; join them into the responses file
and the CSV. The last step is timed a second time with the files already downloaded: the
difference is the download. Prints seconds per step, the share of each, and CPU seconds (the
CLI's process and its children; for the wait, the fake's work in this process too; for the
upload and start, the fake's own CPU on a line of its own). On a loaded machine compare each
step's CPU with its wall time: a step that only gets its share of the cores (wall = CPU x
load / cores) is not waiting on anything.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_make import make_data, make_template  # noqa: E402
from bench_results import run_timed  # noqa: E402
from workdir import work_folder  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    with work_folder(args.workdir, "bench_run_fake.") as work:
        return bench(args.rows, work)


def bench(rows: int, work: Path) -> int:
    from fake_openai import FakeOpenAI

    template = make_template(work)
    data = make_data(work, rows)
    fake = FakeOpenAI().start()
    fake.shuffle_output = True
    fake.advance_on_list = True
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    env = {**os.environ, "OPENAI_API_KEY": fake.api_key, "OPENAI_BASE_URL": fake.base_url,
           "OPENAI_BATCH_HOME": str(home), "NO_PROXY": "127.0.0.1,localhost"}  # fmt: skip
    cli = [sys.executable, "-m", "openai_batch"]
    out = work / "out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    steps: list[tuple[str, float, float]] = []  # label, wall seconds, CPU seconds
    try:
        started = time.perf_counter()
        make = [*cli, "make-batch-file", str(template), str(data), "-o", str(out / "r.jsonl"), "-q"]
        steps.append(("make the request files", *run_timed(make, env)[:2]))
        files = sorted(str(p) for p in out.glob("r*.jsonl"))
        start = [*cli, "start-batch", *files, "--job", "bench"]
        fake_cpu = time.process_time()  # the fake receives and checks the uploads here
        seconds, cpu, _ = run_timed(start, env)
        steps.append(("upload them, start the batches", seconds, cpu))
        steps.append(("  of which the fake's own CPU", 0.0, time.process_time() - fake_cpu))
        results = [*cli, "get-batch-results", "--job", "bench", "-o", str(work / "resp.jsonl"),
                   "--csv", str(work / "out.csv"), "--poll-interval", "0"]  # fmt: skip
        fake_cpu = time.process_time()  # the fake runs in this process (its threads)
        first = run_timed([*results, "--wait"], env)
        fake_cpu = time.process_time() - fake_cpu
        again = run_timed(results, env)
        total = time.perf_counter() - started - again[0]
        steps.append(("wait (the fake answers) + download", first[0] - again[0],
                      first[1] - again[1] + fake_cpu))  # fmt: skip
        steps.append(("join: responses file + CSV", again[0], again[1]))
    finally:
        fake.stop()
    print(f"{rows:,} rows, `run --wait --csv` as its steps, against tests/fake_openai.py")
    print(f"  {'':40} {'seconds':>8}  {'share':>6} {'CPU s':>8}")
    for label, seconds, cpu in steps:
        if label.startswith(" "):  # a part of the step above: CPU only
            print(f"  {label:40} {'':8}  {'':6} {cpu:8.1f}")
            continue
        print(f"  {label:40} {seconds:8.1f}  {seconds / total:6.1%} {cpu:8.1f}")
    print(f"  {'total':40} {total:8.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
