"""`articleqa bench` runs end to end on the built-in corpus and writes its results and plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_bench_writes_results_and_plots(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "articleqa", "bench", "--queries", "3", "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "ARTICLEQA_HOME": str(tmp_path / "home")},
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["machine"]["cores"] >= 1
    assert results["cold_start"]["found"] is True
    for mode in ("hybrid", "dense", "lexical"):
        latency = results["builtin"]["latency_ask"][mode]
        assert latency["queries"] == 3 and 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert results["builtin"]["latency_ask"]["hybrid"]["stages_mean_ms"]["encode"] > 0
    build = results["builtin"]["build"]
    assert build["unchanged_resync_embedded"] == 0 and build["overhead_ratio"] > 0
    assert results["builtin"]["quality"]["hybrid"]["questions"] > 0
    assert (tmp_path / "bench-quality.png").stat().st_size > 0
    assert (tmp_path / "bench-latency.png").stat().st_size > 0
