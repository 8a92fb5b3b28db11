"""`articleqa bench --scale` builds a synthetic library, measures it, and writes results and a plot;
the synthetic embedder is deterministic and its articles are as many passages as asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from articleqa.library import CORPUS
from articleqa.text import normalize


@pytest.fixture
def source(tmp_path, monkeypatch):
    """A small BEIR-shaped corpus (the built-in articles' paragraphs) for the synthetic library."""
    folder = tmp_path / "beir"
    folder.mkdir()
    docs = []
    for path in sorted(CORPUS.iterdir()):
        for paragraph in normalize(path.read_text(encoding="utf-8")).split("\n\n"):
            if paragraph.count(". ") >= 2:
                docs.append({"_id": str(len(docs)), "title": path.stem, "text": paragraph.replace("\n", " ")})
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "What do exosomes carry?"}) + "\n")
    monkeypatch.setenv("ARTICLEQA_SYNTHETIC_SOURCE", str(folder))
    return folder


def test_synthetic_articles_and_embedder_are_deterministic(source):
    import importlib

    import articleqa.synthetic as synthetic

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
        [sys.executable, "-m", "articleqa", "bench", "--scale", "300", "--queries", "6",
         "--cache-dir", str(tmp_path / "libraries"), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "ARTICLEQA_HOME": str(tmp_path / "home")},
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
