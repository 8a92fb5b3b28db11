"""BM25 over segments scores exactly as one bm25s index over the live passages would."""

from __future__ import annotations

import numpy as np
import pytest

from articleqa.text.lexical import BM25, Postings, tokenize

DOCS = [
    "Green tea turns bitter when the water is too hot; steep it at about 75 degrees.",
    "A bicycle chain stretches with wear: measure it with a chain checker tool.",
    "Sourdough starter needs flour, water and patience; feed the starter daily.",
    "Black tea takes boiling water and steeps for four minutes.",
    "Clean the chain, then oil the chain lightly and wipe off the excess oil.",
    "Volcanoes erupt when magma rises; hot ash and gas escape through vents.",
    "Water hardness changes how tea tastes, as does the temperature of the water.",
]
QUERIES = ["how hot should the water be for tea", "chain chain oil", "starter flour", "magma", "nothing matches xyz"]


def bm25s_scores(docs: list[str], query: str) -> np.ndarray:
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(tokenize(docs), show_progress=False)
    terms = [t for t in tokenize([query])[0] if t in retriever.vocab_dict]
    return np.asarray(retriever.get_scores(terms), np.float32) if terms else np.zeros(len(docs), np.float32)


def flat(index: BM25, query: str, sizes: list[int]) -> np.ndarray:
    matches = index.query(query)
    parts = [matches.all(i) for i in range(len(sizes))]
    return np.concatenate([p if p is not None else np.zeros(n, np.float32) for p, n in zip(parts, sizes)])


@pytest.mark.parametrize("query", QUERIES)
def test_one_segment_scores_as_bm25s(query):
    index = BM25([(Postings.from_terms(tokenize(DOCS)), None)])
    np.testing.assert_allclose(flat(index, query, [len(DOCS)]), bm25s_scores(DOCS, query), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("query", QUERIES)
def test_segments_with_deletions_score_as_a_fresh_index_of_the_live_passages(query):
    first, second = DOCS[:4], DOCS[4:]
    live_first = np.array([True, False, True, True])  # the bicycle passage was deleted
    index = BM25([(Postings.from_terms(tokenize(first)), live_first), (Postings.from_terms(tokenize(second)), None)])
    got = flat(index, query, [4, 3])
    live_docs = [d for d, keep in zip(DOCS, [*live_first, True, True, True]) if keep]
    want = bm25s_scores(live_docs, query)
    np.testing.assert_allclose(np.delete(got, 1), want, rtol=1e-5, atol=1e-6)
    assert got[1] == 0  # a deleted passage never scores


def test_merged_postings_equal_postings_built_from_scratch():
    a, b = Postings.from_terms(tokenize(DOCS[:3])), Postings.from_terms(tokenize(DOCS[3:]))
    # Keep rows 0 and 2 of a and all of b, interleaved into a new order.
    merged = Postings.merge([(a, np.array([0, 2]), np.array([1, 0])), (b, np.arange(4), np.array([2, 3, 4, 5]))], 6)
    docs = [DOCS[2], DOCS[0], *DOCS[3:]]
    fresh = Postings.from_terms(tokenize(docs))
    for query in QUERIES:
        np.testing.assert_allclose(
            flat(BM25([(merged, None)]), query, [6]), flat(BM25([(fresh, None)]), query, [6]), rtol=1e-6
        )


def test_known_terms_are_those_of_live_passages():
    index = BM25([(Postings.from_terms(tokenize(DOCS[:2])), np.array([True, False]))])
    assert index.known({"tea", "chain", "magma"}) == {"tea"}


def test_postings_round_trip_through_files(tmp_path):
    postings = Postings.from_terms(tokenize(DOCS))
    postings.save(tmp_path)
    loaded = Postings.load(tmp_path, len(DOCS))
    assert loaded.terms == postings.terms
    for name in ("indptr", "rows", "tfs", "lengths"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(postings, name))
    with pytest.raises(ValueError, match="postings for 7 passages, the segment has 8"):
        Postings.load(tmp_path, 8)


@pytest.mark.parametrize(
    ("n", "k", "zeros"), [(1_000_000, 50, 0.5), (480_000, 50, 0.99), (1000, 50, 0.9), (200, 5, 0.0)]
)
def test_top_is_exact_on_large_score_arrays_with_ties(n, k, zeros):
    from articleqa.text.lexical import top

    rng = np.random.default_rng(n)
    scores = rng.random(n).astype(np.float32)
    scores[rng.random(n) < zeros] = 0
    scores[[5, 7]] = scores.max()  # a tie at the top: the lower row first
    kth = np.sort(scores)[-k]
    scores[[n - 1, n - 2, 3]] = kth  # ties with the k-th best: again the lower rows first
    _, rows = top(scores, k)
    want = np.flatnonzero(scores > 0)
    want = want[np.lexsort((want, -scores[want]))][:k]
    assert rows.tolist() == want.tolist()


def zipf_segments(seed: int) -> tuple[BM25, list[int]]:
    """Two segments of passages over a vocabulary where a few terms are in most passages (as
    "cell" or "patient" in SciFact) and most terms are rare, one segment with deletions."""
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(3000)]
    p = 1 / np.arange(1, len(vocab) + 1) ** 1.1
    p /= p.sum()

    def passages(n):
        return [list(rng.choice(vocab, size=rng.integers(5, 60), p=p)) for _ in range(n)]

    first, second = Postings.from_terms(passages(6000)), Postings.from_terms(passages(2500))
    live = rng.random(6000) > 0.1
    return BM25([(first, live), (second, None)]), [6000, 2500]


@pytest.mark.parametrize("seed", [1, 2])
def test_pruned_top_and_lookups_equal_full_scoring_to_the_bit(seed):
    from articleqa.text.lexical import top

    index, sizes = zipf_segments(seed)
    rng = np.random.default_rng(seed)
    pruned = 0
    for _ in range(40):
        # Questions mixing common and rare terms, some repeated.
        terms = [f"w{i}" for i in rng.integers(0, 3000, size=rng.integers(1, 12)) // rng.integers(1, 50)]
        matches = index.query(" ".join(terms))
        for i, size in enumerate(sizes):
            full = matches.all(i)
            for n in (1, 5, 50):
                scores, rows = matches.top(i, n)
                want_scores, want_rows = top(full, n) if full is not None else ([], [])
                assert rows.tolist() == list(want_rows)
                assert scores.tolist() == list(want_scores)
            some = rng.integers(0, size, 300)
            got = matches.of(i, some)
            assert got.tolist() == (full[some] if full is not None else np.zeros(300)).tolist()
            if full is not None:
                touched = len(np.flatnonzero(full))
                pruned += touched > 50  # a question matching many passages: the pruned path
    assert pruned > 20


def test_terms_are_exactly_bm25s_tokenization():
    import bm25s

    from articleqa.library import builtin_articles
    from articleqa.text.lexical import _stemmer, content_terms

    seed = builtin_articles()
    texts = [a.text for a in seed] + [a.title for a in seed]
    texts += ["", "I'm 42 — Ünïcode ß, CAFÉS & don't; a1 b2 it's x-ray", "the and of"]
    sentences = [s for text in texts for s in text.split(". ")]
    for stop in ("en", "en_plus"):
        want = bm25s.tokenize(sentences, stopwords=stop, stemmer=_stemmer(), return_ids=False, show_progress=False)
        got = tokenize(sentences) if stop == "en" else [sorted(content_terms(s)) for s in sentences]
        assert got == (want if stop == "en" else [sorted(set(w)) for w in want])
