"""The public data types: Article, Chunk, Hit, Answer (frozen dataclasses)."""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field

# What long work reports as it goes: the fraction done (0 to 1) and what it is doing now.
Progress = Callable[[float, str], None]


def valid_text(value: str) -> str:
    """`value` as text that can be written as UTF-8. Names from the file system may carry bytes that
    are not UTF-8 (Python keeps them as lone surrogates); those become visible escapes: b'\\xff'."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        try:
            return value.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        except UnicodeEncodeError:  # surrogates that did not come from bytes
            return value.encode("utf-8", "backslashreplace").decode("utf-8")


def content_hash(text: str) -> str:
    """Stable hash of an article's text; what decides whether it is re-embedded."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Article:
    """One article as ingested: cleaned text plus what is known about it."""

    id: str
    title: str
    text: str
    source: str
    date: str | None = None
    url: str | None = None
    description: str | None = None
    author: str | None = None
    # Where each page starts in `text` (documents with pages, such as PDFs); empty otherwise.
    pages: tuple[int, ...] = ()
    # When a web page was fetched (ISO 8601, UTC), for articles added from a link.
    fetched: str | None = None

    def __post_init__(self) -> None:
        # An article must survive being saved: no field may hold text UTF-8 cannot encode.
        for name in ("id", "title", "text", "source", "date", "url", "description", "author"):
            value = getattr(self, name)
            if isinstance(value, str) and not value.isascii():
                object.__setattr__(self, name, valid_text(value))

    @property
    def content_hash(self) -> str:
        return content_hash(self.title + "\x00" + self.text)

    @property
    def link(self) -> str:
        """Where the article came from: its URL when known, else its file path."""
        return self.url or self.source

    def to_dict(self, *, text: bool = False) -> dict:
        """Plain JSON values, the same shape in the CLI's --json and the HTTP API; the text only
        when asked for."""
        out = {
            "id": self.id,
            "title": self.title,
            "source": self.source,
            "url": self.url,
            "date": self.date,
            "author": self.author,
            "description": self.description,
            "fetched": self.fetched,
        }
        if text:
            out["text"] = self.text
        return out

    def page_at(self, offset: int) -> int | None:
        """The page (from 1) that holds character `offset` of the text, when the article has pages."""
        if not self.pages:
            return None
        return bisect.bisect_right(self.pages, offset) or 1


@dataclass(frozen=True)
class Chunk:
    """A passage: whole sentences of one article, with its span in the article's text."""

    article_id: str
    ordinal: int
    start: int
    end: int
    text: str
    headings: tuple[str, ...] = ()
    # The passage's stable number in its index: its vectors, token vectors and BM25 postings are
    # stored under it (-1 until the passage is indexed).
    key: int = -1

    @property
    def id(self) -> str:
        return f"{self.article_id}#{self.ordinal}"


@dataclass(frozen=True)
class Hit:
    """A passage found for a question, with why it ranked where it did."""

    chunk: Chunk
    article: Article
    score: float
    rank: int
    dense_rank: int | None = None
    dense_score: float | None = None
    lexical_rank: int | None = None
    lexical_score: float | None = None
    # Hybrid mode's other signals: best sentence similarity, and late-interaction (token MaxSim).
    sentence_score: float | None = None
    token_score: float | None = None
    # The sentence that best answers the question, as offsets into `text`.
    highlight_start: int | None = None
    highlight_end: int | None = None
    highlight_score: float | None = None
    # The answer's own words (offsets into `text`, inside the highlight): a span reader's, or the
    # fact asked for (a date, a number, a name); and how surely a reader found an answer here:
    # its margin over "no answer here" (positive: it found one).
    span_start: int | None = None
    span_end: int | None = None
    reader_margin: float | None = None

    @property
    def text(self) -> str:
        """The passage shown to the user."""
        return self.chunk.text

    @property
    def pages(self) -> tuple[int, int] | None:
        """The first and last page the passage is on, for articles with pages (PDFs)."""
        first = self.article.page_at(self.chunk.start)
        if first is None:
            return None
        return first, self.article.page_at(max(self.chunk.start, self.chunk.end - 1)) or first

    @property
    def page_label(self) -> str:
        """ "p. 4" or "pp. 4-5" for a passage of a paged document; "" otherwise."""
        pages = self.pages
        if pages is None:
            return ""
        return f"p. {pages[0]}" if pages[0] == pages[1] else f"pp. {pages[0]}–{pages[1]}"

    @property
    def highlight(self) -> str:
        if self.highlight_start is None or self.highlight_end is None:
            return ""
        return self.chunk.text[self.highlight_start : self.highlight_end]

    @property
    def span(self) -> str:
        """The answer's own words: the date, number or name asked for ("" where none is marked)."""
        if self.span_start is None or self.span_end is None:
            return ""
        return self.chunk.text[self.span_start : self.span_end]

    def to_dict(self) -> dict:
        """Plain JSON values: the passage, its article and place in it, the answer span, the signals."""

        def number(value):
            return None if value is None else round(float(value), 4)

        return {
            "rank": self.rank,
            "score": number(self.score),
            "text": self.text,
            "article": self.article.to_dict(),
            "chunk": {
                "id": self.chunk.id,
                "start": self.chunk.start,
                "end": self.chunk.end,
                "headings": list(self.chunk.headings),
                "pages": list(self.pages) if self.pages else None,
            },
            "highlight": (
                {"start": self.highlight_start, "end": self.highlight_end, "text": self.highlight}
                if self.highlight_start is not None
                else None
            ),
            "dense_rank": self.dense_rank,
            "dense_score": number(self.dense_score),
            "lexical_rank": self.lexical_rank,
            "lexical_score": number(self.lexical_score),
            "sentence_score": number(self.sentence_score),
            "token_score": number(self.token_score),
            "span": (
                {"start": self.span_start, "end": self.span_end, "text": self.span}
                if self.span_start is not None
                else None
            ),
            "reader_margin": number(self.reader_margin),
        }


@dataclass(frozen=True)
class Answer:
    """The reply to a question: the evidence itself, and whether it really answers."""

    question: str
    found: bool
    text: str
    hits: tuple[Hit, ...] = ()
    confidence: float = 0.0
    # The question actually searched: differs from `question` for a follow-up.
    query: str = ""
    reason: str = ""
    history: tuple[str, ...] = field(default=(), repr=False)
    # What to know beside the answer: that the articles only hint at it or differ on it, which
    # passages a "tell me more" shows, or, with no answer, what the articles never mention.
    note: str = ""

    def to_dict(self) -> dict:
        """Plain JSON values, the same shape in the CLI's --json and the HTTP API."""
        return {
            "question": self.question,
            "query": self.query,
            "found": self.found,
            "text": self.text,
            "confidence": round(float(self.confidence), 4),
            "reason": self.reason,
            "note": self.note,
            "history": list(self.history),
            "hits": [hit.to_dict() for hit in self.hits],
        }
