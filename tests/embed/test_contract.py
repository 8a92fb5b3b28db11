"""The embedder contract: every implementation of the seam (embed/base.py) gives unit vectors of
its dimension, token vectors that line up with its content words, and counts word pieces. The
real model and Ray run it too (slow)."""

from __future__ import annotations

import numpy as np
import pytest

from articleqa.embed.base import Embedder, GroupEmbedder
from fakes import FakeEmbedder

TEXTS = [
    "Exosomes are tiny vesicles that carry proteins between cells.",
    "Green tea is steamed or pan-fired soon after picking.",
    "A chain wears; a checker tool tells when to replace it.",
]
QUESTION = "What do exosomes carry?"


@pytest.fixture(params=["fake", "synthetic", pytest.param("model", marks=pytest.mark.slow)])
def embedder(request, builtin_as_beir) -> Embedder:
    if request.param == "fake":
        return FakeEmbedder()
    if request.param == "synthetic":
        from benchmarks.synthetic import FastEmbedder

        return FastEmbedder(builtin_as_beir / "corpus.jsonl")
    return request.getfixturevalue("real_embedder")


def units(rows: np.ndarray) -> bool:
    return bool(np.allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4))


def test_it_speaks_the_protocol(embedder):
    assert isinstance(embedder, Embedder)
    assert not isinstance(embedder, GroupEmbedder)  # only a distributed one takes whole groups
    assert isinstance(embedder.name, str) and embedder.name
    assert embedder.dim > 0 and embedder.max_tokens > 0
    assert isinstance(embedder.describe_queries(), str)
    embedder.done_building()  # harmless at any time


def test_texts_become_unit_vectors_of_its_dimension(embedder):
    vectors = embedder.encode(TEXTS)
    assert vectors.shape == (3, embedder.dim) and vectors.dtype == np.float32 and units(vectors)
    assert embedder.encode([]).shape == (0, embedder.dim)
    # Related texts are closer than unrelated ones.
    again = embedder.encode(["Exosomes carry proteins between cells."])[0]
    assert vectors[0] @ again > vectors[1] @ again


def test_token_vectors_come_from_the_same_pass(embedder):
    vectors, tokens = embedder.encode_tokens(TEXTS)
    np.testing.assert_allclose(vectors, embedder.encode(TEXTS), atol=1e-4)
    assert len(tokens) == 3
    for rows in tokens:
        assert rows.ndim == 2 and rows.shape[1] == embedder.dim and len(rows) > 0 and units(rows)


def test_a_question_and_its_words(embedder):
    vector, tokens = embedder.encode_query(QUESTION)
    assert vector.shape == (embedder.dim,) and tokens.shape[1] == embedder.dim
    words, offsets = embedder.content_words(QUESTION), embedder.content_offsets(QUESTION)
    if embedder.word_pieces:  # one word and one place in the text per token vector
        assert len(words) == len(offsets) == len(tokens)
        assert all(QUESTION[a:b].lower() in w.lower() for (a, b), w in zip(offsets, words))
        assert "exosomes" in [w.lower() for w in words]
    else:
        assert words == [] and offsets == []


def test_word_pieces_are_counted(embedder):
    counts = embedder.count_tokens(TEXTS)
    assert len(counts) == 3 and all(isinstance(n, int) and n > 0 for n in counts)
    assert embedder.count_tokens(["a much longer text " * 10])[0] > counts[0]
