"""`run --wait --csv` end to end against the in-repo fake service, step by step.

    python benchmarks/bench_run_fake.py --rows 1000000

The same work as `openai-batch run TEMPLATE DATA --wait --csv out.csv`, timed as the steps the
command takes, each through the CLI in its own process against tests/fake_openai.py (started
here, on loopback): make the request files; upload them and start the batches (the job); wait
for every batch (the fake answers each request when it is polled, so this is the fake's work,
not the service's hours) and download the output files; join them into the responses file
and the CSV. The last step is timed a second time with the files already downloaded: the
difference is the download. Prints seconds per step and the share of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from bench_make import make_data, make_template, run_child  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench_run_fake."))
    work.mkdir(parents=True, exist_ok=True)
    try:
        return bench(args.rows, work)
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)


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
    steps: list[tuple[str, float]] = []
    try:
        started = time.perf_counter()
        steps.append(("make the request files", run_child(
            [*cli, "make-batch-file", str(template), str(data), "-o", str(out / "r.jsonl"), "-q"],
            env)[0]))  # fmt: skip
        files = sorted(str(p) for p in out.glob("r*.jsonl"))
        steps.append(("upload them, start the batches", run_child(
            [*cli, "start-batch", *files, "--job", "bench"], env)[0]))  # fmt: skip
        results = [*cli, "get-batch-results", "--job", "bench", "-o", str(work / "resp.jsonl"),
                   "--csv", str(work / "out.csv"), "--poll-interval", "0"]  # fmt: skip
        first = run_child([*results, "--wait"], env)[0]
        again = run_child(results, env)[0]
        total = time.perf_counter() - started - again
        steps.append(("wait (the fake answers) + download", first - again))
        steps.append(("join: responses file + CSV", again))
    finally:
        fake.stop()
    print(f"{rows:,} rows, `run --wait --csv` as its steps, against tests/fake_openai.py")
    for label, seconds in steps:
        print(f"  {label:40} {seconds:8.1f} s  {seconds / total:6.1%}")
    print(f"  {'total':40} {total:8.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
