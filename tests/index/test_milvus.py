"""A library whose passage vectors live on Milvus answers as the local one does, and keeps the
snapshot's promises: a removed passage never comes back, a vector no manifest names is never
returned, a mismatched collection is refused with the fix. Fast ones run on milvus-lite; the
`server` ones on the real server (started loopback-only for the session: conftest.milvus_server)."""

from __future__ import annotations

import uuid
from dataclasses import replace

import numpy as np
import pytest

from articleqa import Library
from articleqa.errors import ArticleQAError, IndexMismatch
from articleqa.index.vectors.milvus import MilvusEngine, Store

QUESTIONS = ["green tea caffeine", "how to clean a bicycle chain", "sourdough starter feeding", "oxidation"]


@pytest.fixture
def lite(tmp_path) -> str:
    return f"milvus://{tmp_path / 'vectors.db'}"


@pytest.fixture
def server_store(milvus_server) -> str:
    return f"{milvus_server}/t_{uuid.uuid4().hex[:12]}"


def on_store(fake_settings, store):
    return replace(fake_settings, storage=replace(fake_settings.storage, store=store))


def ranking(lib: Library, mode: str = "hybrid") -> list[list[tuple[str, int]]]:
    return [[(h.chunk.article_id, h.chunk.start) for h in lib.search(q, k=5, mode=mode)] for q in QUESTIONS]


def test_store_addresses_are_checked():
    assert Store.parse("milvus://127.0.0.1:19530") == Store("http://127.0.0.1:19530")
    assert Store.parse("milvus://db.local:19530/my_lib").collection == "my_lib"
    assert Store.parse("milvus:///srv/vectors.db").uri == "/srv/vectors.db"
    for bad, says in [
        ("redis://x:1", "unknown store"),
        ("milvus://nohost", "names no server"),
        ("milvus://h:1/bad-name", "not a Milvus collection name"),
        ("milvus:///srv/vectors", "ending in .db"),
    ]:
        with pytest.raises(ArticleQAError, match=says):
            Store.parse(bad)


def test_a_library_on_milvus_answers_as_the_local_one(tmp_path, corpus, fake_settings, fake_embedder, lite):
    local = Library.at(tmp_path / "local", fake_settings, embedder=fake_embedder)
    local.sync([corpus])
    remote = Library.at(tmp_path / "remote", on_store(fake_settings, lite), embedder=fake_embedder)
    remote.sync([corpus])
    assert remote.index.remote is not None and local.index.remote is None
    assert ranking(remote) == ranking(local)
    assert ranking(remote, "dense") == ranking(local, "dense")
    assert remote.info().store.startswith("milvus://") and local.info().store == "local"
    assert remote.index.remote.count() == len(remote.index)


def test_removed_articles_never_come_back_to_any_process(tmp_path, corpus, fake_settings, fake_embedder, lite):
    writer = Library.at(tmp_path / "idx", on_store(fake_settings, lite), embedder=fake_embedder)
    writer.sync([corpus])
    reader = Library.load(tmp_path / "idx", embedder=fake_embedder)  # another process, same folder and store
    assert any(h.chunk.article_id == "green-tea" for h in reader.search("green tea caffeine", mode="dense"))
    writer.remove("green-tea")
    for lib in (writer, reader):
        found = {h.chunk.article_id for q in QUESTIONS for h in lib.search(q, k=10, mode="dense")}
        assert "green-tea" not in found and found
    assert writer.index.remote.count() == len(writer.index)


def test_vectors_no_manifest_names_are_never_returned(tmp_path, corpus, fake_settings, fake_embedder, lite):
    """A writer that crashed after sending vectors but before publishing leaves them on the server."""
    lib = Library.at(tmp_path / "idx", on_store(fake_settings, lite), embedder=fake_embedder)
    lib.sync([corpus])
    index = lib.index
    question = fake_embedder.encode(["green tea caffeine"])[0]
    orphans = np.arange(10**9, 10**9 + 30, dtype=np.int64)
    index.remote.put(orphans, np.repeat(question[None, :], 30, axis=0))
    scores, keys = index.dense_search(question, 5)
    assert len(keys) == min(5, len(index)) and not np.isin(keys, orphans).any()


def test_a_local_library_moves_its_vectors_to_the_store(tmp_path, corpus, fake_settings, fake_embedder, lite):
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    lib.sync([corpus])
    before = ranking(lib)
    moved = Library.load(tmp_path / "idx", embedder=fake_embedder, store=lite)
    assert moved.index.manifest["vectors"]["engine"] == "milvus"
    assert moved.index.remote.count() == len(moved.index)
    assert ranking(moved) == before
    again = Library.load(tmp_path / "idx", embedder=fake_embedder)  # the manifest says where, from now on
    assert again.index.remote is not None and ranking(again) == before


def test_another_store_or_model_is_refused_with_the_fix(tmp_path, corpus, fake_settings, fake_embedder, lite):
    lib = Library.at(tmp_path / "idx", on_store(fake_settings, lite), embedder=fake_embedder)
    lib.sync([corpus])
    other = f"milvus://{tmp_path / 'other.db'}"
    with pytest.raises(IndexMismatch, match="keeps its vectors in milvus://.*rebuild"):
        Library.load(tmp_path / "idx", embedder=fake_embedder, store=other)
    entry = lib.index.manifest["vectors"]
    with pytest.raises(IndexMismatch, match="holds vectors of model 'fake-hash-embedder'"):
        MilvusEngine(Store(entry["uri"]), entry["collection"], fake_embedder.dim, model="another-model")


def test_a_rebuild_moves_to_a_new_collection_and_drops_the_old(tmp_path, corpus, fake_settings, fake_embedder, lite):
    lib = Library.at(tmp_path / "idx", on_store(fake_settings, lite), embedder=fake_embedder)
    lib.sync([corpus])
    old = lib.index.manifest["vectors"]
    rebuilt = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder, rebuild=True)
    rebuilt.sync([corpus])
    new = rebuilt.index.manifest["vectors"]
    assert new["uri"] == old["uri"] and new["collection"] != old["collection"]
    assert not rebuilt.index.remote._client.has_collection(old["collection"])
    assert ranking(rebuilt) == ranking(lib)


@pytest.mark.server
def test_on_the_real_server_a_library_answers_adds_and_removes(
    tmp_path, corpus, fake_settings, fake_embedder, server_store
):
    local = Library.at(tmp_path / "local", fake_settings, embedder=fake_embedder)
    local.sync([corpus])
    lib = Library.at(tmp_path / "idx", on_store(fake_settings, server_store), embedder=fake_embedder)
    lib.sync([corpus])
    assert lib.index.manifest["vectors"]["uri"].startswith("http://127.0.0.1:")
    assert ranking(lib) == ranking(local)
    lib.remove("green-tea")
    found = {h.chunk.article_id for q in QUESTIONS for h in lib.search(q, k=10, mode="dense")}
    assert "green-tea" not in found
    assert lib.index.remote.count() == len(lib.index)
