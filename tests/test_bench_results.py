"""benchmarks/bench_results.py keeps working: run tiny (a benchmark, not a timing test)."""

from __future__ import annotations

import subprocess
import sys

from helpers import ROOT


def test_the_results_benchmark_runs_small(tmp_path) -> None:
    script = ROOT / "benchmarks" / "bench_results.py"
    done = subprocess.run(
        [sys.executable, str(script), "--rows", "300", "--repeat", "1", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    for needle in ("join (responses in order", "make-batch-file, same table", "I/O floor",
                   "join / make-batch-file", "peak / peak at a fifth"):  # fmt: skip
        assert needle in done.stdout, done.stdout
    table = (tmp_path / "out_300.csv").read_text(encoding="utf-8").splitlines()
    assert len(table) == 301 and table[0].startswith("ID,Age,College Education,Description,")
