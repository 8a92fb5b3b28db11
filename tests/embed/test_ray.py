"""`articleqa build --ray`: the real model on a local Ray cluster gives the same library as the
single-process build, and a build that dies resumes without re-embedding what it had committed.

Ray's processes listen on more than loopback (worker and agent ports), so each Ray build runs in
a private network namespace that has only its own loopback (`unshare -n`, as for Milvus)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from articleqa import Library, Settings
from articleqa.library import CORPUS
from conftest import PROCS

pytestmark = pytest.mark.slow


def in_private_network(*args: str) -> subprocess.CompletedProcess:
    """Run a command where only a private loopback exists; skip (fail in CI) where that is refused."""
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        reason = "unshare and ip are needed to keep Ray on loopback"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    script = 'ip link set lo up && exec "$@"'
    env = dict(os.environ, HF_HUB_OFFLINE="1", RAY_USAGE_STATS_ENABLED="0")
    result = subprocess.run(
        ["unshare", "-n", "sh", "-c", script, "sh", *args], capture_output=True, text=True, timeout=600, env=env
    )
    if result.returncode != 0 and "Operation not permitted" in result.stderr:
        reason = f"no private network namespace here: {result.stderr.strip()[-200:]}"
        pytest.fail(reason) if os.environ.get("CI") else pytest.skip(reason)
    return result


def vectors_by_span(lib: Library) -> dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]]:
    index = lib.index
    out = {}
    for chunk in index.all_chunks():
        where = index.locate([chunk.key])
        seg = index.segments[int(where.segments[0])]
        row = int(where.rows[0])
        vector = index.engines[int(where.segments[0])].get(np.array([chunk.key]))[0]
        tokens = seg.tokens.vectors(np.array([row]))
        out[(chunk.article_id, chunk.start, chunk.end)] = (vector, tokens)
    return out


def test_a_ray_build_equals_the_single_process_build(tmp_path, real_embedder):
    single = Library.at(tmp_path / "single", Settings(), embedder=real_embedder)
    single.sync([CORPUS])
    result = in_private_network(
        sys.executable, "-m", "articleqa", "build", str(CORPUS), "--index-dir", str(tmp_path / "ray"), "--ray"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "embedded" in result.stdout
    distributed = Library.load(tmp_path / "ray", embedder=real_embedder)
    a, b = vectors_by_span(single), vectors_by_span(distributed)
    assert a.keys() == b.keys() and len(a) == len(single.index)
    for span, (vector, tokens) in a.items():
        other_vector, other_tokens = b[span]
        assert float(vector @ other_vector) >= 0.9999, span
        assert tokens.shape == other_tokens.shape
        cosines = np.einsum("ij,ij->i", tokens, other_tokens) / (
            np.linalg.norm(tokens, axis=1) * np.linalg.norm(other_tokens, axis=1)
        )
        assert cosines.min() >= 0.999, span
    question = "Are exosomes safe for sensitive skin?"
    starts = [[h.chunk.start for h in lib.search(question, k=5)] for lib in (single, distributed)]
    assert starts[0] == starts[1]


def test_a_ray_build_that_dies_resumes_without_re_embedding(tmp_path):
    corpus = tmp_path / "articles"
    shutil.copytree(CORPUS, corpus)
    result = in_private_network(sys.executable, str(PROCS), "raycrash", str(tmp_path / "idx"), str(corpus))
    assert result.returncode == 0, result.stderr[-3000:]
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert 0 < got["first"] < got["total"]
    assert got["embedded_after"] == got["total"] - got["first"]  # the committed group was not embedded again
    assert got["articles"] == len([p for p in corpus.iterdir() if p.is_file()])
