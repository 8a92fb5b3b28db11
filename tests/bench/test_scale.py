"""`python -m benchmarks scale` builds a synthetic library, measures it, and writes results and a plot;
the synthetic embedder is deterministic and its articles are as many passages as asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT


@pytest.fixture
def source(builtin_as_beir, monkeypatch):
    """The synthetic library's words come from the built-in articles."""
    monkeypatch.setenv("ARTICLEQA_SYNTHETIC_SOURCE", str(builtin_as_beir))
    return builtin_as_beir


def test_synthetic_articles_and_embedder_are_deterministic(source):
    import importlib

    import benchmarks.synthetic as synthetic

    synthetic = importlib.reload(synthetic)  # picks up the source folder
    first = list(synthetic.synthetic_articles(60, seed=3))
    assert [a.text for a in first] == [a.text for a in synthetic.synthetic_articles(60, seed=3)]
    assert len({a.content_hash for a in first}) == len(first)
    embedder = synthetic.FastEmbedder()
    vectors, tokens = embedder.encode_tokens([first[0].text])
    again, _ = synthetic.FastEmbedder().encode_tokens([first[0].text])
    np.testing.assert_array_equal(vectors, again)
    assert vectors.shape == (1, 384) and len(tokens[0]) > 10
    np.testing.assert_allclose(np.linalg.norm(tokens[0], axis=1), 1.0, atol=1e-5)


@pytest.mark.slow
def test_scale_bench_writes_results_and_a_plot(source, tmp_path):
    out = tmp_path / "scale.json"
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "scale", "--sizes", "300", "--queries", "6",
         "--cache-dir", str(tmp_path / "libraries"), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "ARTICLEQA_HOME": str(tmp_path / "home")},
        cwd=ROOT,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())["sizes"]["300"]
    assert 200 <= result["build"]["passages"] <= 400
    assert result["build"]["disk_bytes_per_passage"] > 0
    serve = result["serve"]
    assert serve["recall_at_10"] == 1.0  # small enough to be searched exactly
    assert 0 < serve["search_ms"]["hybrid"]["p50"] and serve["add_one_s"] > 0 and serve["remove_one_s"] > 0
    assert out.with_suffix(".png").stat().st_size > 0
