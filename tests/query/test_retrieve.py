"""Ranking plumbing on hand-made scores: fusion of the signals, duplicate suppression, per-article cap."""

from __future__ import annotations

import pytest

from articleqa.errors import ArticleQAError
from articleqa.query.retrieve import Candidate, check_mode, diversify, fuse, weights_for
from articleqa.settings import Settings

# Rows 1-4 come from the dense side; row 5 only from BM25, where it stands far above the rest
# (a rare name that only one passage contains). Rows 2 and 3 are found by both.
DENSE = {1: 0.80, 2: 0.75, 3: 0.74, 4: 0.20}
LEXICAL = {5: 12.0, 2: 3.0, 3: 2.0}
BOTH = {"dense": DENSE, "lexical": LEXICAL}
EVEN = {"dense": 0.5, "lexical": 0.5}


def order(candidates: list[Candidate]) -> list[int]:
    return [c.key for c in candidates]


def test_zscore_lets_a_standout_keyword_match_win():
    # Row 3 passes row 1: nearly as close in meaning, and it matches the keywords (1 does not).
    assert order(fuse(BOTH, EVEN, method="zscore")) == [5, 2, 3, 1, 4]


def test_minmax_caps_each_side_so_a_row_good_on_both_wins():
    ranked = order(fuse(BOTH, EVEN, method="minmax"))
    assert ranked[0] == 2
    assert ranked[-1] == 4


def test_rrf_puts_rows_found_by_both_retrievers_first():
    ranked = order(fuse(BOTH, EVEN, method="rrf"))
    assert ranked[:2] == [2, 3]
    assert set(ranked[2:]) == {1, 4, 5}


def test_default_fusion_is_zscore():
    assert fuse(BOTH, EVEN) == fuse(BOTH, EVEN, method="zscore")


def test_weights_move_the_ranking_toward_the_heavier_signal():
    assert order(fuse(BOTH, {"dense": 0.9, "lexical": 0.1}))[0] == 1
    assert order(fuse(BOTH, {"dense": 0.1, "lexical": 0.9}))[0] == 5


def test_token_and_sentence_signals_can_lift_a_passage_both_retrievers_rank_low():
    # Row 4 is the dense side's last; its words match the question's best, one by one.
    token = {1: 0.50, 2: 0.52, 3: 0.51, 4: 0.90, 5: 0.49}
    sentence = {1: 0.60, 2: 0.61, 3: 0.60, 4: 0.80, 5: 0.40}
    weights = {"dense": 0.4, "lexical": 0.6, "sentence": 0.4, "token": 1.0}
    assert order(fuse(BOTH, weights))[0] == 5
    ranked = fuse({**BOTH, "token": token, "sentence": sentence}, weights)
    assert order(ranked)[0] == 4
    # Each hit keeps every signal's raw score, for the user to see why.
    top = ranked[0]
    assert (top.dense_rank, top.dense_score, top.lexical_rank, top.sentence_score, top.token_score) == (
        4, 0.20, None, 0.80, 0.90,
    )  # fmt: skip


def test_default_weights_come_from_settings():
    settings = Settings(dense_weight=0.1, lexical_weight=0.2, sentence_weight=0.3, token_weight=0.4)
    assert weights_for(settings) == {"dense": 0.1, "lexical": 0.2, "sentence": 0.3, "token": 0.4}


def test_fused_candidates_carry_one_based_ranks_and_raw_scores_per_side():
    by_row = {c.key: c for c in fuse(BOTH, EVEN)}
    assert (by_row[2].dense_rank, by_row[2].dense_score, by_row[2].lexical_rank, by_row[2].lexical_score) == (
        2,
        0.75,
        2,
        3.0,
    )
    # A side that did not return the row says so with None, not a made-up rank.
    assert (by_row[5].dense_rank, by_row[5].dense_score, by_row[5].lexical_rank) == (None, None, 1)
    assert (by_row[1].dense_rank, by_row[1].lexical_rank, by_row[1].lexical_score) == (1, None, None)
    assert by_row[4].dense_rank == 4


@pytest.mark.parametrize("method", ["zscore", "minmax", "rrf"])
def test_dense_alone_keeps_its_own_scores_and_order(method):
    ranked = fuse({"dense": DENSE}, method=method)
    assert [(c.key, c.score) for c in ranked] == [(1, 0.80), (2, 0.75), (3, 0.74), (4, 0.20)]
    assert [c.dense_rank for c in ranked] == [1, 2, 3, 4]
    assert all(c.lexical_rank is None and c.lexical_score is None for c in ranked)


@pytest.mark.parametrize("method", ["zscore", "minmax", "rrf"])
def test_lexical_alone_keeps_its_own_scores_and_order(method):
    ranked = fuse({"lexical": LEXICAL}, method=method)
    assert [(c.key, c.score) for c in ranked] == [(5, 12.0), (2, 3.0), (3, 2.0)]
    assert [c.lexical_rank for c in ranked] == [1, 2, 3]
    assert all(c.dense_rank is None and c.dense_score is None for c in ranked)


def test_unknown_fusion_method_raises():
    with pytest.raises(ArticleQAError, match="unknown fusion 'cosine'"):
        fuse(BOTH, EVEN, method="cosine")


def test_check_mode():
    assert check_mode("hybrid") == "hybrid"
    with pytest.raises(ArticleQAError, match="unknown search mode .semantic.: use one of hybrid, dense, keyword"):
        check_mode("semantic")


# -- diversify ----------------------------------------------------------------------------------


@pytest.fixture
def index() -> dict[int, tuple[str, int, int]]:
    """Passage spans by key: article a has four passages (keys 0-3); b and c one each (4, 5)."""
    spans = [("a", 0, 100), ("a", 40, 140), ("a", 90, 200), ("a", 200, 300), ("b", 0, 100), ("c", 0, 100)]
    return dict(enumerate(spans))


def candidates(*keys: int) -> list[Candidate]:
    return [Candidate(key, score=10.0 - i) for i, key in enumerate(keys)]


def test_a_passage_mostly_repeating_a_better_one_is_dropped(index):
    # Passage 1 shares 60 of its 100 characters with passage 0; passage 2 shares 10 with passage 0.
    picked = diversify(index, candidates(0, 1, 2, 4), k=3, per_article=0)
    assert order(picked) == [0, 2, 4]


def test_same_span_in_another_article_is_not_a_duplicate(index):
    assert order(diversify(index, candidates(0, 4, 5), k=3, per_article=0)) == [0, 4, 5]


def test_per_article_cap_lets_other_articles_go_first(index):
    picked = diversify(index, candidates(0, 2, 3, 4, 5), k=4, per_article=2)
    assert order(picked) == [0, 2, 4, 5]


def test_capped_passages_still_fill_k_when_nothing_else_is_left(index):
    picked = diversify(index, candidates(0, 2, 3, 4, 5), k=5, per_article=2)
    assert order(picked) == [0, 2, 4, 5, 3]


def test_per_article_one_gives_one_passage_per_article_first(index):
    picked = diversify(index, candidates(0, 2, 4, 3, 5), k=3, per_article=1)
    assert order(picked) == [0, 4, 5]


def test_keyword_is_the_lexical_mode_everywhere():
    from articleqa.query.retrieve import check_mode

    assert check_mode("keyword") == "keyword" and check_mode("lexical") == "keyword"  # the old name
    with pytest.raises(ArticleQAError, match="unknown search mode 'telepathy'"):
        check_mode("telepathy")
