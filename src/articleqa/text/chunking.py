"""Article -> Chunks: sentence-aligned passages that fit the embedding model's window.

Pure functions. Token counts come from the caller (the model's own tokenizer), so a passage
never runs past the point where the model stops reading.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from articleqa.schema import Article, Chunk
from articleqa.settings import ChunkerSettings
from articleqa.text.sentences import HEADING, sentence_spans

TokenCounter = Callable[[Sequence[str]], list[int]]

# Room for the [CLS]/[SEP] tokens most encoders add.
_SPECIAL_TOKENS = 2
# Word pieces in each piece of an over-long "sentence" (about 35 words: a long sentence's length).
PIECE_TOKENS = 48


@dataclass
class _Section:
    headings: tuple[str, ...]
    spans: list[tuple[int, int]]
    tokens: list[int]

    @property
    def total(self) -> int:
        return sum(self.tokens)


def embed_text(article: Article, chunk: Chunk) -> str:
    """The text that is embedded and keyword-indexed: title and heading path, then the passage."""
    context = " > ".join(h for h in chunk.headings if h)
    return "\n".join(part for part in (article.title, context, chunk.text) if part)


def chunk_article(
    article: Article,
    count_tokens: TokenCounter,
    settings: ChunkerSettings | None = None,
    model_limit: int = 256,
) -> list[Chunk]:
    """Cut an article into passages of whole sentences (see ChunkerSettings for the budget)."""
    return split_article(article, count_tokens, settings, model_limit)[0]


def split_article(
    article: Article,
    count_tokens: TokenCounter,
    settings: ChunkerSettings | None = None,
    model_limit: int = 256,
) -> tuple[list[Chunk], list[tuple[int, int]]]:
    """The article's passages, and its sentence spans (each passage is a run of them)."""
    settings = settings or ChunkerSettings()
    sections = _sections(article, count_tokens, settings.max_tokens)
    sections = _merge_small(sections, settings)
    title_tokens = count_tokens([article.title])[0] if article.title else 0
    chunks: list[Chunk] = []
    for section in sections:
        heading_tokens = count_tokens([" > ".join(section.headings)])[0] if section.headings else 0
        budget = min(settings.max_tokens, model_limit - _SPECIAL_TOKENS - title_tokens - heading_tokens - 2)
        budget = max(budget, settings.min_tokens)
        for first, last in _pack(section.tokens, budget, settings):
            start, end = section.spans[first][0], section.spans[last][1]
            chunks.append(
                Chunk(
                    article_id=article.id,
                    ordinal=len(chunks),
                    start=start,
                    end=end,
                    text=article.text[start:end],
                    headings=section.headings,
                )
            )
    return chunks, [span for section in sections for span in section.spans]


def _sections(article: Article, count_tokens: TokenCounter, max_tokens: int) -> list[_Section]:
    """Split at headings; each section knows its heading path and its sentence spans."""
    text = article.text
    stack: list[tuple[int, str]] = []
    sections: list[_Section] = []
    body_start = 0
    pos = 0

    def close(end: int) -> None:
        spans = sentence_spans(text, body_start, end)
        if spans:
            spans = _split_long(text, spans, count_tokens, max_tokens)
            tokens = count_tokens([text[s:e] for s, e in spans])
            sections.append(_Section(tuple(h for _, h in stack), spans, tokens))

    for line in text.split("\n"):
        match = HEADING.match(line)
        if match:
            close(pos)
            level = len(match.group(1))
            stack = [(lvl, h) for lvl, h in stack if lvl < level] + [(level, match.group(2))]
            body_start = pos + len(line) + 1
        pos += len(line) + 1
    close(len(text))
    return sections


def _split_long(text, spans, count_tokens, max_tokens) -> list[tuple[int, int]]:
    """A "sentence" longer than the budget (text without punctuation: a transcript, a list run
    together, a 2 MB line) is cut between words into sentence-sized pieces, so it is highlighted
    and packed like prose, never inside a word."""
    counts = count_tokens([text[s:e] for s, e in spans])
    out: list[tuple[int, int]] = []
    for (start, end), n in zip(spans, counts):
        if n <= max_tokens:
            out.append((start, end))
            continue
        words = [(m.start() + start, m.end() + start) for m in re.finditer(r"\S+", text[start:end])]
        size = min(max_tokens, PIECE_TOKENS)
        step = max(1, int(len(words) * size / n * 0.9))
        pieces = [(i, min(len(words), i + step)) for i in range(0, len(words), step)]
        # One tokenizer call for all the pieces; the rare piece still over budget (long words)
        # is halved until it fits.
        piece_counts = count_tokens([text[words[i][0] : words[j - 1][1]] for i, j in pieces])
        for (i, j), m in zip(pieces, piece_counts):
            todo = [(i, j)] if m <= max_tokens else _halves(text, words, i, j, count_tokens, max_tokens)
            out.extend((words[a][0], words[b - 1][1]) for a, b in todo)
    return out


def _halves(text, words, i, j, count_tokens, max_tokens) -> list[tuple[int, int]]:
    if j - i <= 1 or count_tokens([text[words[i][0] : words[j - 1][1]]])[0] <= max_tokens:
        return [(i, j)]
    mid = (i + j) // 2
    return _halves(text, words, i, mid, count_tokens, max_tokens) + _halves(
        text, words, mid, j, count_tokens, max_tokens
    )


def _merge_small(sections: list[_Section], settings: ChunkerSettings) -> list[_Section]:
    """A section too short to stand alone joins its neighbour when they fit together."""
    merged: list[_Section] = []
    for section in sections:
        prev = merged[-1] if merged else None
        if prev and (prev.total < settings.min_tokens or section.total < settings.min_tokens):
            if prev.total + section.total <= settings.max_tokens:
                headings = prev.headings + tuple(h for h in section.headings if h not in prev.headings)
                merged[-1] = _Section(headings, prev.spans + section.spans, prev.tokens + section.tokens)
                continue
        merged.append(section)
    return merged


def _pack(tokens: list[int], budget: int, settings: ChunkerSettings) -> list[tuple[int, int]]:
    """Group consecutive sentences into balanced runs under the budget, with overlap.

    Returns (first, last) sentence indices, inclusive.
    """
    total = sum(tokens)
    if total <= budget:
        return [(0, len(tokens) - 1)]
    n = max(math.ceil(total / budget), round(total / settings.target_tokens))
    desired = total / n
    groups: list[tuple[int, int]] = []
    first, size = 0, 0
    for i, t in enumerate(tokens):
        if size and (size + t > budget or size + t / 2 > desired):
            groups.append((first, i - 1))
            first, size = i, 0
        size += t
    groups.append((first, len(tokens) - 1))
    # A tail shorter than the minimum is folded into the previous run when it fits.
    if len(groups) > 1 and sum(tokens[groups[-1][0] :]) < settings.min_tokens:
        a, _ = groups[-2]
        if sum(tokens[a:]) <= budget:
            groups[-2:] = [(a, len(tokens) - 1)]
    if settings.overlap_sentences <= 0:
        return groups
    out = [groups[0]]
    for a, b in groups[1:]:
        start = a
        for _ in range(settings.overlap_sentences):
            if start - 1 >= 0 and sum(tokens[start - 1 : b + 1]) <= budget:
                start -= 1
        out.append((start, b))
    return out
