"""Token vectors for late interaction: compact codecs, MaxSim, row bookkeeping, files on disk."""

from __future__ import annotations

import numpy as np
import pytest

from articleqa.embed.codecs import Int8Codec, PQCodec, TokenTable, default_codec


def units(rng, n: int, dim: int = 8) -> np.ndarray:
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def brute_maxsim(query: np.ndarray, passage: np.ndarray) -> float:
    return float((query @ passage.T).max(axis=1).mean())


def test_int8_codes_keep_each_vector_within_a_small_error():
    vectors = units(np.random.default_rng(0), 50)
    codec = Int8Codec(8)
    codes = codec.encode(vectors)
    assert codes.dtype == np.uint8 and codes.shape == (50, 8 + 4)
    assert np.abs(codec.decode(codes) - vectors).max() <= 1 / 127 / 2 + 1e-6


def test_pq_stores_a_word_piece_in_m_bytes_and_keeps_cosines_close():
    rng = np.random.default_rng(1)
    centres = units(rng, 64, dim=32)
    vectors = centres[rng.integers(0, 64, 10000)] + 0.1 * rng.standard_normal((10000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    codec = PQCodec.train(vectors, m=8, bits=8)
    codes = codec.encode(vectors[:100])
    assert codes.shape == (100, 8) and codes.dtype == np.uint8
    decoded = codec.decode(codes)
    assert np.median((decoded * vectors[:100]).sum(axis=1)) > 0.9
    assert codec.entry() == {"codec": "pq", "m": 8, "bits": 8, "codebook": codec.file}


def test_maxsim_is_the_mean_of_each_question_tokens_best_match():
    rng = np.random.default_rng(1)
    passages = [units(rng, n) for n in (3, 1, 7)]
    table = TokenTable.encode(passages, Int8Codec(8))
    query = units(rng, 4)
    got = table.maxsim(query, [2, 0, 1])
    want = [brute_maxsim(query, passages[i]) for i in (2, 0, 1)]
    np.testing.assert_allclose(got, want, atol=0.02)  # int8 rounding only


def test_a_passage_holding_the_question_words_scores_highest():
    rng = np.random.default_rng(2)
    query = units(rng, 3)
    other = units(rng, 5)
    holding = np.vstack([units(rng, 2), query])  # the question's words, among others
    table = TokenTable.encode([other, holding], Int8Codec(8))
    scores = table.maxsim(query, [0, 1])
    assert scores[1] == pytest.approx(1.0, abs=0.01)
    assert scores[0] < scores[1]


def test_passages_without_token_vectors_score_zero():
    rng = np.random.default_rng(3)
    table = TokenTable.encode([np.zeros((0, 8), np.float32), units(rng, 2)], Int8Codec(8))
    assert table.maxsim(units(rng, 2), [0]).tolist() == [0.0]
    assert table.best_match(units(rng, 2), [0]).tolist() == [0.0, 0.0]


def test_take_and_concat_keep_each_passage_with_its_own_vectors():
    rng = np.random.default_rng(4)
    passages = [units(rng, n) for n in (2, 3, 4)]
    codec = Int8Codec(8)
    table = TokenTable.encode(passages, codec)
    picked = table.take(np.array([2, 0]))
    joined = TokenTable.concat([picked, TokenTable.encode([units(rng, 5)], codec)], codec)
    assert len(joined) == 3 and np.diff(joined.offsets).tolist() == [4, 2, 5]
    query = units(rng, 2)
    np.testing.assert_allclose(joined.maxsim(query, [0, 1]), table.maxsim(query, [2, 0]))


def test_a_table_read_back_is_checked_against_its_segment():
    rng = np.random.default_rng(5)
    codec = Int8Codec(8)
    table = TokenTable.encode([units(rng, 2), units(rng, 3)], codec)
    again = TokenTable.checked(table.codes, table.offsets, 2, codec)
    np.testing.assert_array_equal(again.codes, table.codes)
    with pytest.raises(ValueError, match="token vectors for 2 passages, the segment has 3"):
        TokenTable.checked(table.codes, table.offsets, 3, codec)
    with pytest.raises(ValueError, match="expected width"):
        TokenTable.checked(table.codes, table.offsets, 2, Int8Codec(16))


def test_the_default_model_ships_a_codebook_of_32_bytes_per_word_piece():
    codec = default_codec("sentence-transformers/all-MiniLM-L6-v2")
    assert codec is not None and codec.dim == 384 and codec.width == 32
    assert default_codec("some/other-model") is None
