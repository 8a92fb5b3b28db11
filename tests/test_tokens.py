"""Token vectors for late interaction: int8 storage, MaxSim, row bookkeeping, files on disk."""

from __future__ import annotations

import numpy as np
import pytest

from articleqa.errors import IndexCorrupt
from articleqa.index import Index
from articleqa.tokens import OFFSETS, TokenVectors, quantize


def units(rng, n: int, dim: int = 8) -> np.ndarray:
    m = rng.standard_normal((n, dim)).astype(np.float32)
    return m / np.linalg.norm(m, axis=1, keepdims=True)


def brute_maxsim(query: np.ndarray, passage: np.ndarray) -> float:
    return float((query @ passage.T).max(axis=1).mean())


def test_int8_codes_keep_each_vector_within_a_small_error():
    vectors = units(np.random.default_rng(0), 50)
    codes, scales = quantize(vectors)
    assert codes.dtype == np.int8 and scales.shape == (50,)
    assert np.abs(codes.astype(np.float32) * scales[:, None] - vectors).max() <= scales.max() / 2 + 1e-7


def test_maxsim_is_the_mean_of_each_question_tokens_best_match():
    rng = np.random.default_rng(1)
    passages = [units(rng, n) for n in (3, 1, 7)]
    tokens = TokenVectors.from_passages(passages, dim=8)
    query = units(rng, 4)
    got = tokens.maxsim(query, [2, 0, 1])
    want = [brute_maxsim(query, passages[i]) for i in (2, 0, 1)]
    np.testing.assert_allclose(got, want, atol=0.02)  # int8 rounding only


def test_a_passage_holding_the_question_words_scores_highest():
    rng = np.random.default_rng(2)
    query = units(rng, 3)
    other = units(rng, 5)
    holding = np.vstack([units(rng, 2), query])  # the question's words, among others
    tokens = TokenVectors.from_passages([other, holding], dim=8)
    scores = tokens.maxsim(query, [0, 1])
    assert scores[1] == pytest.approx(1.0, abs=0.01)
    assert scores[0] < scores[1]


def test_passages_without_token_vectors_score_zero():
    tokens = TokenVectors.empty(8, passages=3)
    assert len(tokens) == 3
    assert tokens.maxsim(units(np.random.default_rng(3), 2), [0, 2]).tolist() == [0.0, 0.0]


def test_with_rows_keeps_chosen_passages_in_order_then_adds_new_ones():
    rng = np.random.default_rng(4)
    passages = [units(rng, n) for n in (2, 3, 4)]
    added = [units(rng, 5)]
    tokens = TokenVectors.from_passages(passages, dim=8)
    kept = tokens.with_rows(np.array([2, 0]), TokenVectors.from_passages(added, dim=8))
    assert len(kept) == 3
    assert np.diff(kept.offsets).tolist() == [4, 2, 5]
    query = units(rng, 2)
    fresh = TokenVectors.from_passages(added, dim=8)
    want = [tokens.maxsim(query, [2])[0], tokens.maxsim(query, [0])[0], fresh.maxsim(query, [0])[0]]
    np.testing.assert_allclose(kept.maxsim(query, [0, 1, 2]), want)


def test_save_and_load_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    tokens = TokenVectors.from_passages([units(rng, 2), units(rng, 3)], dim=8)
    tokens.save(tmp_path)
    loaded = TokenVectors.load(tmp_path, passages=2, dim=8)
    for name in ("codes", "scales", "offsets"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(tokens, name))
    with pytest.raises(ValueError, match="token vectors for 2 passages, the index has 3"):
        TokenVectors.load(tmp_path, passages=3, dim=8)


def test_an_index_with_damaged_token_files_is_refused_with_the_fix(built):
    np.save(built.index_dir / OFFSETS, np.array([0, 1], dtype=np.int64))
    with pytest.raises(IndexCorrupt, match="token vectors.*articleqa build --rebuild"):
        Index.load(built.index_dir)
