"""The committed embeddings/ must match the shipped corpus, and open without embedding anything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

import articleqa
from articleqa.index.snapshot import Index
from articleqa.library import builtin_articles, builtin_index_dir
from articleqa.settings import DEFAULT_MODEL, INDEX_FORMAT, ChunkerSettings
from articleqa.text.chunking import chunk_article, embed_text


@pytest.fixture(scope="module")
def committed():
    return Index.load(builtin_index_dir())


@pytest.fixture(scope="module")
def shipped():
    return builtin_articles()


def test_builtin_index_is_the_committed_folder():
    folder = builtin_index_dir()
    assert folder.name in ("embeddings", "_embeddings")
    assert (folder / "manifest.json").exists()


def test_committed_index_has_the_shipped_articles(committed, shipped):
    assert {a.id: a.content_hash for a in shipped} == {a.id: a.content_hash for a in committed.articles.values()}
    for article in shipped:
        stored = committed.articles[article.id]
        assert (stored.title, stored.text, stored.date) == (article.title, article.text, article.date)


def test_committed_manifest_matches_the_defaults(committed):
    manifest = json.loads((builtin_index_dir() / "manifest.json").read_text())
    assert manifest["format"] == INDEX_FORMAT
    assert manifest["model"]["name"] == DEFAULT_MODEL == committed.model
    assert manifest["model"]["dim"] == 384
    assert manifest["chunker"] == ChunkerSettings().as_dict()
    assert manifest["counts"]["articles"] == 4 and manifest["counts"]["chunks"] == len(committed.all_chunks())
    # Far below `compact_from` passages: token vectors stay int8, scoring exactly as float32 would.
    assert manifest["tokens"] == {"codec": "int8"}
    assert all(origin == "path" for _, origin, _ in committed.article_keys().values())
    assert not [p for p in builtin_index_dir().iterdir() if p.name.startswith(".tmp")]


@pytest.mark.slow
def test_rechunking_the_corpus_reproduces_the_committed_passages(committed, shipped, real_embedder):
    expected = [(c.article_id, c.ordinal, c.start, c.end, c.headings) for c in committed.all_chunks()]
    got = []
    for article in shipped:
        chunks = chunk_article(article, real_embedder.count_tokens, ChunkerSettings(), real_embedder.max_tokens)
        got.extend((c.article_id, c.ordinal, c.start, c.end, c.headings) for c in chunks)
    assert got == expected, "chunking changed: rebuild the committed index with `make embeddings`"


@pytest.mark.slow
def test_search_of_the_builtin_library_encodes_only_the_question(real_embedder, monkeypatch):
    encoded: list[str] = []
    real_embedder.encode_query("warm up")  # the ONNX copy is written now, if not yet

    def counting(method):
        original = getattr(real_embedder, method)

        def wrapper(texts, **kwargs):
            encoded.extend([texts] if isinstance(texts, str) else texts)
            return original(texts, **kwargs)

        monkeypatch.setattr(real_embedder, method, wrapper)

    counting("encode")
    counting("encode_tokens")
    counting("encode_query")
    lib = articleqa.open(embedder=real_embedder)
    hits = lib.search("What are exosomes?")
    assert encoded == ["What are exosomes?"]
    assert len(hits) == 5
    assert "exosome" in hits[0].text.lower()
    assert {h.article.id for h in hits} <= set(lib.index.articles)


@pytest.mark.slow
def test_committed_vectors_are_the_model_vectors(committed, real_embedder):
    """A stale vectors.faiss (e.g. built with another model version) would rank nonsense."""
    import numpy as np

    chunks = committed.all_chunks()
    picked = [chunks[0], chunks[len(chunks) // 2], chunks[-1]]
    fresh = real_embedder.encode([embed_text(committed.articles[c.article_id], c) for c in picked])
    stored = committed.engines[0].get([c.key for c in picked])
    assert np.allclose((fresh * stored).sum(axis=1), 1.0, atol=1e-3)


_OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket

    def refuse(*args, **kwargs):
        raise OSError("network access attempted")

    socket.socket.connect = refuse
    socket.create_connection = refuse
    socket.getaddrinfo = refuse

    import os
    import transformers

    transformers.logging.set_verbosity_info()
    from articleqa.embed.model import SentenceEmbedder

    vectors = SentenceEmbedder().encode(["Exosomes are tiny messengers between cells."])
    print("shape", vectors.shape)
    # The host process is left as it was: no offline switch for a hub model opened later, and
    # transformers' logging as the host set it.
    print("offline set", "HF_HUB_OFFLINE" in os.environ or "TRANSFORMERS_OFFLINE" in os.environ)
    print("verbosity kept", transformers.logging.get_verbosity() == transformers.logging.INFO)
    """
)


@pytest.mark.slow
def test_default_model_loads_without_network(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    # An empty Hugging Face cache: nothing can come from a previous download either.
    env.update(HF_HOME=str(tmp_path / "hf"), ARTICLEQA_HOME=str(tmp_path / "home"))
    result = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "shape (1, 384)" in result.stdout
    assert "offline set False" in result.stdout and "verbosity kept True" in result.stdout
