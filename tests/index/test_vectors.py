"""The vector-engine contract: every backend stores, finds, forgets and reloads vectors by id."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from articleqa.index.vectors import local
from articleqa.index.vectors.base import VectorEngine

DIM = 16
# The Milvus engine runs the same contract: on a milvus-lite file, and on the real server (started
# loopback-only for the session by conftest.milvus_server).
REMOTE = ["milvus-lite", "milvus-server"]


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Unit vectors around a few centres (uniform random vectors make any ANN index look bad)."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((8, DIM))
    x = centres[rng.integers(0, 8, n)] + 0.3 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make(name: str):
    if name in REMOTE:
        return remote(name)
    params = {"hnsw": {"m": 8, "ef_construction": 40, "ef_search": 64}, "ivf": {"probe": 6.0}}.get(name, {})
    return local.create(name, DIM, **params)


def remote(name: str):
    from articleqa.index.vectors.milvus import MilvusEngine, Store

    store = Store.parse(LITE["server"]) if name == "milvus-server" else Store(LITE["path"])
    return MilvusEngine(store, f"contract_{uuid.uuid4().hex[:12]}", DIM, model="contract")


LITE: dict = {}


@pytest.fixture(scope="module", autouse=True)
def lite_file(tmp_path_factory):
    LITE["path"] = str(tmp_path_factory.mktemp("milvus") / "contract.db")
    yield


@pytest.fixture(params=[*sorted(local.BACKENDS), *REMOTE])
def backend(request) -> str:
    if request.param == "milvus-server":
        LITE["server"] = request.getfixturevalue("milvus_server")
    return request.param


@pytest.fixture
def filled(backend):
    vectors = clustered(300)
    ids = np.arange(300, dtype=np.int64) * 7 + 10_000_000_000  # sparse, large: ids are not rows
    engine = make(backend)
    engine.add(ids, vectors)
    return engine, ids, vectors


def exact_top(vectors, ids, query, k):
    order = np.argsort(-(vectors @ query), kind="stable")[:k]
    return ids[order]


def test_every_engine_speaks_the_protocol_and_answers_a_search_that_need_not_be_fresh(filled):
    engine, ids, vectors = filled
    assert isinstance(engine, VectorEngine)
    assert isinstance(engine.view(), VectorEngine)
    _, fresh = engine.search(vectors[:3], 5)
    _, settled = engine.search(vectors[:3], 5, fresh=False)  # a server may answer from a settled state
    assert [row[0] for row in settled.tolist()] == [row[0] for row in fresh.tolist()] == ids[:3].tolist()


def test_an_empty_engine_finds_nothing(backend):
    engine = make(backend)
    scores, ids = engine.search(clustered(2), 5)
    assert engine.count() == 0
    assert ids.shape == (2, 5) and (ids == -1).all()


def test_each_stored_vector_finds_itself_first_with_its_true_cosine(filled):
    engine, ids, vectors = filled
    scores, found = engine.search(vectors[:20], 3)
    assert engine.count() == 300
    assert found[:, 0].tolist() == ids[:20].tolist()
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)
    assert (np.diff(scores, axis=1) <= 1e-6).all()  # best first


def test_results_match_exact_search(filled):
    engine, ids, vectors = filled
    queries = clustered(20, seed=1)
    _, found = engine.search(queries, 10)
    recall = np.mean([len(set(found[i]) & set(exact_top(vectors, ids, q, 10))) / 10 for i, q in enumerate(queries)])
    assert recall >= 0.95


def test_get_returns_the_stored_vectors_and_refuses_unknown_ids(filled):
    engine, ids, vectors = filled
    np.testing.assert_allclose(engine.get(ids[[5, 0, 299]]), vectors[[5, 0, 299]], atol=1e-6)
    with pytest.raises(KeyError):
        engine.get(np.array([12345], np.int64))


def test_removed_ids_never_come_back(filled):
    engine, ids, vectors = filled
    gone = ids[:150]
    engine.remove(gone)
    engine.remove(np.array([42], np.int64))  # unknown: ignored
    assert engine.count() == 150
    _, found = engine.search(vectors[:150], 10)
    assert not np.isin(found, gone).any()
    assert (found[:, 0] >= 0).all()  # the live ones are still found
    with pytest.raises(KeyError):
        engine.get(gone[:1])


def test_adding_an_id_twice_is_refused(filled):
    engine, ids, vectors = filled
    with pytest.raises(ValueError, match="already stored"):
        engine.add(ids[:1], vectors[:1])


def test_k_beyond_the_count_pads_with_minus_one(backend):
    engine = make(backend)
    engine.add(np.array([3, 1, 2], np.int64), clustered(3))
    scores, found = engine.search(clustered(1, seed=2), 5)
    assert sorted(found[0, :3].tolist()) == [1, 2, 3]
    assert found[0, 3:].tolist() == [-1, -1]


def test_save_and_load_give_the_same_answers(filled, tmp_path):
    engine, ids, vectors = filled
    entry = engine.save(tmp_path)
    assert entry["engine"] == engine.name and entry["count"] == 300
    loaded = local.load(tmp_path, entry, DIM)
    queries = clustered(10, seed=3)
    for a, b in zip(engine.search(queries, 5), loaded.search(queries, 5)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(loaded.get(ids[:3]), vectors[:3], atol=1e-6)


def test_a_view_forgets_ids_without_changing_the_original(filled, backend):
    if backend in REMOTE:
        pytest.skip("a server removes for everyone; its snapshots filter by their live passages (test_milvus.py)")
    engine, ids, vectors = filled
    view = engine.view()
    view.remove(ids[:1])
    assert view.search(vectors[:1], 1)[1][0, 0] != ids[0]
    assert engine.search(vectors[:1], 1)[1][0, 0] == ids[0]


def test_unknown_backend_is_named():
    with pytest.raises(ValueError, match="unknown vector engine 'annoy'"):
        local.load(".", {"engine": "annoy"}, DIM)


def test_size_decides_exact_or_approximate():
    from articleqa.settings import StorageSettings

    storage = StorageSettings(ann_threshold=1000)
    assert local.for_size(999, DIM, storage).name == "flat"
    assert local.for_size(1000, DIM, storage).name == "ivf"
    assert local.for_size(1000, DIM, StorageSettings(ann_threshold=1000, ann="hnsw")).name == "hnsw"
