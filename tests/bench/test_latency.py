"""`python -m benchmarks latency` runs end to end on the built-in corpus and writes its results and plots."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DATA, ROOT


@pytest.mark.slow
def test_bench_writes_results_and_plots(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [
            *(sys.executable, "-m", "benchmarks", "latency", "--queries", "3", "--out", str(out)),
            *("--questions", str(DATA / "questions.jsonl"), "--offtopic", str(DATA / "offtopic.jsonl")),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "ARTICLEQA_HOME": str(tmp_path / "home")},
        cwd=ROOT,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads(out.read_text())
    assert results["machine"]["cores"] >= 1
    assert results["cold_start"]["found"] is True
    for mode in ("hybrid", "dense", "keyword"):
        latency = results["builtin"]["latency_ask"][mode]
        assert latency["queries"] == 3 and 0 < latency["p50_ms"] <= latency["p99_ms"]
    assert results["builtin"]["latency_ask"]["hybrid"]["stages_mean_ms"]["encode"] > 0
    build = results["builtin"]["build"]
    assert build["unchanged_resync_embedded"] == 0 and build["overhead_ratio"] > 0
    assert results["builtin"]["quality"]["hybrid"]["questions"] > 0
    assert (tmp_path / "bench-quality.png").stat().st_size > 0
    assert (tmp_path / "bench-latency.png").stat().st_size > 0


def test_baselines_rank_whole_documents_with_plain_bm25_and_dense(tmp_path):
    from benchmarks.latency import baselines

    from articleqa.schema import Article
    from fakes import FakeEmbedder

    articles = [
        Article(
            id="tea",
            title="Green tea",
            text="Steep green tea at 75 degrees; boiling water makes it bitter.",
            source="t",
        ),
        Article(
            id="chain", title="Bicycle chains", text="Oil the chain lightly and wipe off the excess oil.", source="c"
        ),
        Article(
            id="bread", title="Sourdough", text="Feed the sourdough starter flour and water every day.", source="b"
        ),
    ]
    queries = {"q1": "why is my green tea bitter", "q2": "how to oil a bicycle chain"}
    qrels = {"q1": {"tea": 1}, "q2": {"chain": 1}}
    out = baselines(articles, queries, qrels, FakeEmbedder(), tmp_path)
    assert out["bm25"]["ndcg@10"] == 1.0 and out["bm25"]["queries"] == 2
    assert out["dense"]["ndcg@10"] > 0.5
    assert list(tmp_path.glob("docvectors-*.npy"))  # whole-document vectors are cached


@pytest.mark.slow
def test_peers_bench_scores_every_system_alike_in_fresh_processes(tmp_path):
    from benchmarks import peers

    from articleqa.evaluate import load_questions
    from articleqa.library import builtin_articles

    articles = builtin_articles()
    questions = load_questions(DATA / "questions.jsonl")[:12]
    lines = []
    result = peers.run(
        articles, questions, peers_python=None, rounds=2, systems=("articleqa", "articleqa-ask"), log=lines.append
    )
    assert len(lines) == 4 and set(result["systems"]) == {"articleqa", "articleqa-ask"}
    ours = result["systems"]["articleqa"]
    assert ours["passages"] > 0 and len(ours["build_runs_s"]) == 2 and ours["p50_ms"] <= ours["p95_ms"]
    assert ours["hit@1"] > 0.5 and ours["ratios_to_articleqa"]["build_s"] == 1.0
    assert peers.plot(result, tmp_path / "peers.png").stat().st_size > 0


def test_a_relative_path_to_the_peers_python_is_found_from_the_bench_folder(monkeypatch):
    # `make bench-peers` passes .venv-peers/bin/python; the systems run in a temporary folder.
    from benchmarks import peers

    from articleqa.evaluate import load_questions
    from articleqa.library import builtin_articles

    monkeypatch.chdir(Path(sys.executable).parent.parent)
    relative = os.path.join("bin", Path(sys.executable).name)
    questions = load_questions(DATA / "questions.jsonl")[:1]
    # This Python has no LangChain: the peer's script must start and fail on that import, not on
    # a missing interpreter.
    with pytest.raises(RuntimeError, match="langchain-faiss failed") as failed:
        peers.run(builtin_articles(), questions, peers_python=relative, rounds=1, systems=("langchain-faiss",))
    assert "langchain" in str(failed.value).split("failed:", 1)[1]


def test_peers_bench_needs_a_python_with_the_peers(tmp_path, capsys):
    from benchmarks.__main__ import main

    code = main(["peers", "--python", sys.executable, "--questions", str(DATA / "questions.jsonl")])
    assert code != 0 and "cannot import the peers" in capsys.readouterr().err
