"""Benchmark: `utils chat-complete` with and without a server rate limit.

Runs the real CLI (a subprocess, as a user would) against the test suite's fake OpenAI server,
itself in another process so the two do not share a CPU budget, in two regimes:

- **no limit**: every request answered after `--latency` seconds;
- **limit**: the same, behind a token bucket of `--limit` requests/s (one second deep) that answers
  429 with `retry-after-ms` and the `x-ratelimit-*` headers, as the OpenAI API does
  (`--no-headers`: 429s only, as a plain proxy or local server would send).

For each it prints wall time, requests/s, the 429s the server sent, the client's CPU time per
request (user + system of the whole process, start-up included) and whether every request was
answered in one run (exit 0, each custom_id once, all 200). Under a limit the targets are a wall
time within 1.2x of N / limit and at most one 429 per request on average.

    .venv/bin/python benchmarks/bench_chat_complete.py                 # 10,000 requests
    .venv/bin/python benchmarks/bench_chat_complete.py -n 2000 --regime limit

`--cookbook PATH` also runs OpenAI's cookbook script `api_request_parallel_processor.py` (not part
of this repository: pass the path to your copy) on the same requests and the same fake, paced at
`--cookbook-rpm` (default 75% of the limit, as its documentation advises), for comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

FAKE_SERVER = """
import json, sys
sys.path.insert(0, {tests!r})
from fake_openai import FakeOpenAI
fake = FakeOpenAI().start()
fake.latency = {latency!r}
if {limit!r}:
    fake.rate_limit({limit!r}, headers={headers!r})
print(json.dumps({{"base_url": fake.base_url, "key": fake.api_key}}), flush=True)
for line in sys.stdin:  # "stats" -> counters; end of input -> stop
    ok = sum(1 for m, p, s in fake.log if s == 200 and p.endswith("/chat/completions"))
    print(json.dumps({{"rate_limited": fake.rate_limited_count, "ok": ok}}), flush=True)
fake.stop()
"""

# The cookbook script counts tokens with tiktoken, which would download its BPE file, and reads
# the endpoint only from https:// URLs: hand it the project's offline encoding and a parser that
# accepts the fake's http:// URL, then run its processing function unchanged.
COOKBOOK_WRAPPER = """
import asyncio, json, runpy, sys, tiktoken
from openai_batch.estimate import tokens
tiktoken.get_encoding = tokens.get_encoding
process = runpy.run_path(sys.argv[1], run_name="cookbook")["process_api_requests_from_file"]
process.__globals__["api_endpoint_from_url"] = lambda url: url.split("/v1/", 1)[1]
asyncio.run(process(**json.loads(sys.argv[2])))
"""


@dataclass
class Result:
    name: str
    wall: float
    cpu: float
    rate_limited: int
    ok: int
    one_run: bool

    def line(self, n: int, limit: float | None) -> str:
        pace = f"{self.wall / (n / limit):.2f}x N/limit" if limit else ""
        return (
            f"{self.name:<34} {self.wall:7.1f} s  {n / self.wall:7.0f} req/s  "
            f"{self.rate_limited:6,} 429s ({self.rate_limited / n:5.1%})  "
            f"{self.cpu / n * 1000:5.2f} ms CPU/req  "
            f"{'one run' if self.one_run else 'NOT in one run'}  {pace}"
        )


class Fake:
    """The fake OpenAI server in a child process."""

    def __init__(self, latency: float, limit: float | None, headers: bool) -> None:
        code = FAKE_SERVER.format(
            tests=str(ROOT / "tests"), latency=latency, limit=limit, headers=headers
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        assert self.proc.stdout is not None and self.proc.stdin is not None
        info = json.loads(self.proc.stdout.readline())
        self.base_url, self.key = info["base_url"], info["key"]

    def stats(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def write_requests(folder: Path, n: int) -> tuple[Path, Path]:
    """The same n chat requests as a Batch request file and as the cookbook's input file."""
    batch, bodies = folder / "requests.jsonl", folder / "bodies.jsonl"
    with open(batch, "w") as b, open(bodies, "w") as c:
        for i in range(n):
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": f"Classify item {i}: spam or not?"}],
                "max_tokens": 20,
            }
            line = {"custom_id": f"id_{i}", "method": "POST", "url": "/v1/chat/completions"}
            b.write(json.dumps({**line, "body": body}) + "\n")
            c.write(json.dumps({**body, "metadata": {"row": i}}) + "\n")
    return batch, bodies


def timed(args: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Run a command; (exit code, wall seconds, CPU seconds of the child, stdout)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        print(done.stderr[-2000:], file=sys.stderr)
    return done.returncode, wall, cpu, done.stdout


def run_ours(
    fake: Fake, requests: Path, folder: Path, n: int, concurrency: int, extra: list[str]
) -> Result:
    out = folder / "answers.jsonl"
    out.unlink(missing_ok=True)
    env = dict(os.environ, OPENAI_API_KEY=fake.key, OPENAI_BASE_URL=fake.base_url)
    env["OPENAI_BATCH_HOME"] = str(folder / "home")
    env["NO_PROXY"] = "127.0.0.1,localhost"
    before = fake.stats()["rate_limited"]
    args = [sys.executable, "-m", "openai_batch", "utils", "chat-complete", str(requests)]
    args += ["-o", str(out), "-c", str(concurrency), "-q", "--json", *extra]
    code, wall, cpu, _ = timed(args, env)
    statuses: dict[str, int] = {}
    if out.exists():
        for text in out.read_text().splitlines():
            line = json.loads(text)
            statuses.setdefault(line["custom_id"], 0)
            statuses[line["custom_id"]] += 1 if line["response"]["status_code"] == 200 else 0
    one_run = code == 0 and len(statuses) == n and all(v == 1 for v in statuses.values())
    refused = fake.stats()["rate_limited"] - before
    return Result(f"openai-batch -c {concurrency}", wall, cpu, refused, len(statuses), one_run)


def run_cookbook(
    fake: Fake, cookbook: Path, bodies: Path, folder: Path, n: int, rpm: float
) -> Result:
    out = folder / "cookbook-results.jsonl"
    out.unlink(missing_ok=True)
    before = fake.stats()
    settings = {
        "requests_filepath": str(bodies),
        "save_filepath": str(out),
        "request_url": f"{fake.base_url}/chat/completions",
        "api_key": fake.key,
        "max_requests_per_minute": rpm,
        "max_tokens_per_minute": 1e12,
        "token_encoding_name": "cl100k_base",
        "max_attempts": 5,
        "logging_level": 40,
    }
    args = [sys.executable, "-c", COOKBOOK_WRAPPER, str(cookbook), json.dumps(settings)]
    env = dict(os.environ, NO_PROXY="127.0.0.1,localhost")
    code, wall, cpu, _ = timed(args, env)
    after = fake.stats()
    ok = 0
    if out.exists():
        ok = sum(1 for t in out.read_text().splitlines() if '"choices"' in t)
    refused = after["rate_limited"] - before["rate_limited"]
    return Result(
        f"cookbook at {rpm / 60:.0f} req/s", wall, cpu, refused, ok, code == 0 and ok == n
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=10_000)
    parser.add_argument("--latency", type=float, default=0.2, help="seconds per answer")
    parser.add_argument("--limit", type=float, default=100.0, help="requests/s of the bucket")
    parser.add_argument("-c", "--concurrency", type=int, default=128)
    parser.add_argument("--regime", choices=("both", "none", "limit"), default="both")
    parser.add_argument("--no-headers", action="store_true", help="429s without x-ratelimit-*")
    parser.add_argument("--cookbook", type=Path, help="path to api_request_parallel_processor.py")
    parser.add_argument("--cookbook-rpm", type=float, help="its pace (default 75%% of the limit)")
    args = parser.parse_args()
    n = args.requests
    regimes = {"both": (None, args.limit), "none": (None,), "limit": (args.limit,)}[args.regime]
    print(f"{n:,} requests, latency {args.latency * 1000:.0f} ms, --concurrency {args.concurrency}")
    with tempfile.TemporaryDirectory(prefix="bench-chat-") as tmp:
        folder = Path(tmp)
        requests, bodies = write_requests(folder, n)
        for limit in regimes:
            title = f"limit {limit:g} req/s" if limit else "no limit"
            if limit and args.no_headers:
                title += " (429s without rate-limit headers)"
            print(f"\n{title}" + (f": ideal {n / limit:.1f} s" if limit else ""))
            fake = Fake(args.latency, limit, not args.no_headers)
            try:
                ours = run_ours(fake, requests, folder, n, args.concurrency, [])
                print(ours.line(n, limit), flush=True)
                if args.cookbook:
                    rpm = args.cookbook_rpm or (0.75 * limit * 60 if limit else 1e9)
                    theirs = run_cookbook(fake, args.cookbook, bodies, folder, n, rpm)
                    print(theirs.line(n, limit), flush=True)
            finally:
                fake.close()


if __name__ == "__main__":
    main()
