"""Properties of the sentence splitter and the chunker over generated text (hypothesis)."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from articleqa.schema import Article
from articleqa.settings import ChunkerSettings
from articleqa.text.chunking import split_article
from articleqa.text.sentences import sentence_spans

# Words, punctuation, odd spaces and line breaks, headings, list markers, digits and non-Latin
# letters: what web articles are made of, and what breaks splitters.
WORD = st.one_of(
    st.text(string.ascii_letters, min_size=1, max_size=12),
    st.sampled_from(["Dr.", "e.g.", "U.S.", "3.14", "1,000", "—", "…", "(", ")", '"', "'", "?!", "Zürich", "日本語"]),
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=6),
)
GLUE = st.sampled_from(
    [" ", " ", " ", ". ", "? ", "! ", ", ", "; ", "\n", "\n\n", "\n- ", "\n1. ", "\n## ", "\t", "\u00a0"]
)
TEXT = st.lists(st.tuples(WORD, GLUE), max_size=400).map(lambda pairs: "".join(w + g for w, g in pairs))

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def count_words(texts):
    return [len(t.split()) for t in texts]


@FAST
@given(TEXT)
def test_sentence_spans_are_ordered_trimmed_and_cover_every_letter(text):
    spans = sentence_spans(text)
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text)
        piece = text[start:end]
        assert piece == piece.strip() and piece
        previous_end = end
    covered = bytearray(len(text))
    for start, end in spans:
        covered[start:end] = b"\x01" * (end - start)
    for i, ch in enumerate(text):
        if ch.isalpha():
            assert covered[i], f"letter {ch!r} at {i} is in no sentence: {text!r}"


@FAST
@given(TEXT, st.integers(min_value=20, max_value=200))
def test_passages_are_whole_sentences_within_budget_and_cover_the_text(text, max_tokens):
    chunker = ChunkerSettings(target_tokens=max(10, max_tokens // 2), max_tokens=max_tokens, min_tokens=5)
    article = Article(id="a", title="Title", text=text, source="x")
    chunks, spans = split_article(article, count_words, chunker, model_limit=512)
    assert bool(chunks) == bool(spans)
    starts = {s for s, _ in spans}
    ends = {e for _, e in spans}
    for chunk in chunks:
        assert chunk.text == text[chunk.start : chunk.end] and chunk.text.strip()
        assert chunk.start in starts and chunk.end in ends  # whole sentences only
        assert count_words([chunk.text])[0] <= chunker.max_tokens
    for a, b in zip(chunks, chunks[1:]):
        assert a.start <= b.start and a.end <= b.end  # in order
    for start, end in spans:  # every sentence is in some passage
        assert any(c.start <= start and end <= c.end for c in chunks)
