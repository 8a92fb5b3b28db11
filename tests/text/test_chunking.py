"""Article -> Chunks: whole sentences, inside the model's window, with overlap and heading paths."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest

from articleqa.ingest.files import parse
from articleqa.library import builtin_articles
from articleqa.schema import Article
from articleqa.settings import ChunkerSettings
from articleqa.text.chunking import chunk_article, embed_text
from articleqa.text.sentences import sentence_spans
from fakes import FakeEmbedder

SETTINGS = ChunkerSettings()
count_words = FakeEmbedder().count_tokens


def sentences(n: int, words: int = 12, topic: str = "tea") -> str:
    """n distinct sentences of `words` words each."""
    return " ".join(
        f"Sentence {i} about {topic} " + " ".join(f"w{i}x{j}" for j in range(words - 5)) + " ends." for i in range(n)
    )


def article_from_markdown(markdown: str, article_id: str = "doc") -> Article:
    return parse(markdown.encode("utf-8"), name=f"{article_id}.md", article_id=article_id, source=f"{article_id}.md")


def assert_whole_sentences(article: Article, chunks) -> None:
    spans = sentence_spans(article.text)
    starts, ends = {s for s, _ in spans}, {e for _, e in spans}
    text = article.text
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.start in starts, f"{chunk.id} starts mid-sentence: {chunk.text[:40]!r}"
        assert chunk.end in ends, f"{chunk.id} ends mid-sentence: {chunk.text[-40:]!r}"
        assert chunk.start == 0 or not text[chunk.start - 1].isalnum()
        assert chunk.end == len(text) or not text[chunk.end].isalnum()


# -- the seed corpus with the real tokenizer -----------------------------------------------------


@pytest.fixture(scope="module")
def seed_chunks(real_embedder):
    return [
        (article, chunk_article(article, real_embedder.count_tokens, SETTINGS, model_limit=real_embedder.max_tokens))
        for article in builtin_articles()
    ]


@pytest.mark.slow
def test_seed_chunks_are_whole_sentences_and_cover_the_article(seed_chunks):
    for article, chunks in seed_chunks:
        assert chunks, article.id
        assert [c.ordinal for c in chunks] == list(range(len(chunks)))
        assert_whole_sentences(article, chunks)
        # No sentence of the article is left out of every passage (headings are in the path).
        covered = set()
        for c in chunks:
            covered.update(range(c.start, c.end))
        for s, e in sentence_spans(article.text):
            if not article.text[s:e].startswith("#"):
                assert s in covered, f"{article.id}: sentence at {s} is in no passage"


@pytest.mark.slow
def test_seed_passages_fit_the_model_window(seed_chunks, real_embedder):
    for article, chunks in seed_chunks:
        counts = real_embedder.count_tokens([embed_text(article, c) for c in chunks])
        # +2 for [CLS] and [SEP]: past 256 the model silently stops reading.
        assert max(counts) + 2 <= real_embedder.max_tokens, article.id


@pytest.mark.slow
def test_seed_passages_are_balanced(seed_chunks, real_embedder):
    for _, chunks in seed_chunks:
        counts = real_embedder.count_tokens([c.text for c in chunks])
        for i, (chunk, n) in enumerate(zip(chunks, counts, strict=True)):
            assert n <= SETTINGS.max_tokens, chunk.id
            if n < SETTINGS.min_tokens:
                # Only the end of a section (or of the article) may come out short.
                last_of_section = i == len(chunks) - 1 or chunks[i + 1].headings != chunk.headings
                assert last_of_section, f"{chunk.id} has only {n} tokens"


@pytest.mark.slow
def test_seed_consecutive_passages_share_one_sentence(seed_chunks):
    pairs = 0
    for article, chunks in seed_chunks:
        spans = set(sentence_spans(article.text))
        for prev, nxt in pairwise(chunks):
            if prev.headings == nxt.headings:
                pairs += 1
                assert (nxt.start, prev.end) in spans, f"{nxt.id} does not start with {prev.id}'s last sentence"
    assert pairs >= 3


# -- synthetic articles with the fake counter (one token per word) -------------------------------


def test_short_article_is_one_passage():
    article = Article(id="a", title="Tea", text=sentences(3), source="a.txt")
    chunks = chunk_article(article, count_words, SETTINGS)
    assert len(chunks) == 1
    assert chunks[0].text == article.text
    assert chunks[0].id == "a#0"


def test_long_section_is_cut_into_overlapping_passages_of_whole_sentences():
    article = Article(id="a", title="Tea", text=sentences(40), source="a.txt")  # 480 words
    chunks = chunk_article(article, count_words, SETTINGS)
    assert len(chunks) >= 3
    assert_whole_sentences(article, chunks)
    spans = sentence_spans(article.text)
    for prev, nxt in pairwise(chunks):
        # Exactly the last sentence of one passage opens the next.
        overlap = (nxt.start, prev.end)
        assert overlap in spans
        assert article.text[prev.end - 5 : prev.end] == "ends."
    for chunk in chunks:
        assert SETTINGS.min_tokens <= count_words([chunk.text])[0] <= SETTINGS.max_tokens
    assert chunks[0].start == 0 and chunks[-1].end == len(article.text)


def test_overlap_can_be_switched_off():
    article = Article(id="a", title="Tea", text=sentences(40), source="a.txt")
    chunks = chunk_article(article, count_words, ChunkerSettings(overlap_sentences=0))
    for prev, nxt in pairwise(chunks):
        assert nxt.start > prev.end


def test_heading_path_is_recorded_and_embedded_but_not_in_the_passage():
    article = article_from_markdown(
        "# Tea Guide\n\n"
        f"## Brewing\n\n{sentences(8, topic='brewing')}\n\n"
        f"### Water\n\n{sentences(8, topic='water')}\n\n"
        f"## Storage\n\n{sentences(8, topic='storage')}\n"
    )
    assert article.title == "Tea Guide"
    chunks = chunk_article(article, count_words, SETTINGS)
    by_path = {}
    for c in chunks:
        by_path.setdefault(c.headings, c)
    assert list(by_path) == [("Brewing",), ("Brewing", "Water"), ("Storage",)]
    water = by_path[("Brewing", "Water")]
    assert water.text.startswith("Sentence 0 about water")
    assert "#" not in water.text and "Brewing" not in water.text
    embedded = embed_text(article, water)
    assert embedded.startswith("Tea Guide\nBrewing > Water\n")
    assert embedded.endswith(water.text)
    # The storage passage forgets the Brewing path once a new level-2 heading starts.
    assert "Brewing" not in embed_text(article, by_path[("Storage",)])


def test_tiny_section_joins_its_neighbour():
    article = article_from_markdown(
        f"# Guide\n\n## Intro\n\nTea is old.\n\n## Brewing\n\n{sentences(6, topic='brewing')}\n"
    )
    chunks = chunk_article(article, count_words, SETTINGS)
    assert len(chunks) == 1
    assert chunks[0].headings == ("Intro", "Brewing")
    assert chunks[0].text.startswith("Tea is old.")


def test_very_long_sentence_without_punctuation_is_split_between_words():
    words = [f"token{i}" for i in range(700)]
    article = Article(id="run-on", title="Run on", text=" ".join(words), source="x.txt")
    chunks = chunk_article(article, count_words, SETTINGS)
    assert len(chunks) >= 4
    seen = []
    for chunk in chunks:
        assert chunk.text == article.text[chunk.start : chunk.end]
        pieces = chunk.text.split(" ")
        assert all(re.fullmatch(r"token\d+", p) for p in pieces), "a word was cut"
        assert len(pieces) <= SETTINGS.max_tokens
        seen.extend(p for p in pieces if p not in seen)
    assert seen == words


def test_a_2mb_line_without_punctuation_becomes_sentence_sized_pieces_at_a_cost_in_proportion():
    from articleqa.text.chunking import PIECE_TOKENS, split_article

    calls = []

    def counting(texts):
        calls.append(len(texts))
        return count_words(texts)

    words = [f"w{i % 997}" for i in range(330_000)]  # about 2 MB with the spaces
    article = Article(id="line", title="Line", text=" ".join(words), source="x.txt")
    chunks, spans = split_article(article, counting, SETTINGS)
    sizes = [len(article.text[a:b].split()) for a, b in spans]
    assert max(sizes) <= PIECE_TOKENS and min(sizes) >= 1  # sentence-sized, none empty
    assert [article.text[a:b] for a, b in spans] == [" ".join(words[i : i + n]) for i, n in _runs(sizes)]
    assert all(len(c.text.split()) <= SETTINGS.max_tokens for c in chunks)
    assert len(calls) < 50  # the tokenizer is called a bounded number of times, not per piece


def _runs(sizes):
    start = 0
    for n in sizes:
        yield start, n
        start += n


@pytest.mark.slow
def test_long_sentence_is_split_within_the_real_model_window(real_embedder):
    text = " ".join(["the serum carries growth factors peptides lipids and nucleic acids to tired skin cells"] * 40)
    article = Article(id="run-on", title="Run on", text=text, source="x.txt")
    chunks = chunk_article(article, real_embedder.count_tokens, SETTINGS, model_limit=real_embedder.max_tokens)
    assert len(chunks) >= 3
    counts = real_embedder.count_tokens([embed_text(article, c) for c in chunks])
    assert max(counts) + 2 <= real_embedder.max_tokens
    for chunk in chunks:
        assert chunk.start == 0 or text[chunk.start - 1] == " "
        assert chunk.end == len(text) or text[chunk.end] == " "


def test_chunking_is_deterministic():
    article = Article(id="a", title="Tea", text=sentences(30), source="a.txt")
    assert chunk_article(article, count_words, SETTINGS) == chunk_article(article, count_words, SETTINGS)
