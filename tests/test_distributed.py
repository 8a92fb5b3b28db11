"""`articleqa build --ray`: the real model on a local Ray cluster (loopback only) gives the same
library as the single-process build, and a build that dies resumes without re-embedding what
it had committed."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest

from articleqa import Library, Settings, cli, writer
from articleqa.library import CORPUS

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")
    ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False, num_cpus=2)
    try:
        yield ray
    finally:
        ray.shutdown()


def vectors_by_span(lib: Library) -> dict[tuple[str, int, int], tuple[np.ndarray, np.ndarray]]:
    index = lib.index
    out = {}
    for chunk in index.chunks:
        where = index.locate([chunk.key])
        seg = index.segments[int(where.segments[0])]
        row = int(where.rows[0])
        vector = index.engines[int(where.segments[0])].get(np.array([chunk.key]))[0]
        tokens = seg.tokens.vectors(np.array([row]))
        out[(chunk.article_id, chunk.start, chunk.end)] = (vector, tokens)
    return out


def test_a_ray_build_equals_the_single_process_build(tmp_path, ray_cluster, real_embedder, capsys):
    single = Library.at(tmp_path / "single", Settings(), embedder=real_embedder)
    single.sync([CORPUS])
    assert cli.main(["build", str(CORPUS), "--index-dir", str(tmp_path / "ray"), "--ray"]) == 0
    assert "embedded" in capsys.readouterr().out
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


def test_a_ray_build_that_dies_resumes_without_re_embedding(tmp_path, ray_cluster, real_embedder, monkeypatch):
    from articleqa.distributed import RayEmbedder

    corpus = tmp_path / "articles"
    shutil.copytree(CORPUS, corpus)
    settings = Settings()
    settings = replace(settings, storage=replace(settings.storage, flush_passages=8))  # a segment every 8 passages
    embedder = RayEmbedder(settings.model, actors=2)
    commit, commits = writer.commit, []

    def dies_after_the_first(*args, **kwargs):
        if commits:
            raise KeyboardInterrupt("the build process died")
        commits.append(commit(*args, **kwargs))
        return commits[-1]

    monkeypatch.setattr(writer, "commit", dies_after_the_first)
    with pytest.raises(KeyboardInterrupt):
        Library.at(tmp_path / "idx", settings, embedder=embedder).sync([corpus])
    monkeypatch.setattr(writer, "commit", commit)
    first = len(commits[0])
    assert 0 < first < 22
    lib = Library.at(tmp_path / "idx", settings, embedder=embedder)
    change = lib.sync([corpus])
    total = len(lib.index)
    assert change.embedded == total - first  # the committed group was not embedded again
    assert len(lib.index.articles) == len([p for p in corpus.iterdir() if p.is_file()])
