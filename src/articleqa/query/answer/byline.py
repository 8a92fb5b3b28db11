"""Questions about an article itself (who wrote it, when it came out), answered from its byline."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from articleqa.query.answer.words import stems
from articleqa.schema import Answer, Hit
from articleqa.text.lexical import content_terms

# Questions about an article rather than about its subject: who wrote it, when it came out.
# "Who wrote ..." names the writing it asks about ("the retinol article", "this", "it"): "Who
# first wrote about the Rhine's border?" asks about history, not about the article.
_WRITING = (
    r"(article|paper|report|piece|post|study|book|booklet|handbook|manual|guide|document|pdf|file|blog|page|story"
    r"|review|essay|text|chapter|thesis|newsletter|leaflet|brochure)s?\b|(this|it)\b(?!')|that\W*$"
)
_ASKS_WRITER = re.compile(
    rf"\bwho\b.*\b(wrote|writes?|written|authored|penned)\b.*\b({_WRITING})|\bby whom\b.*\b({_WRITING})",
    re.IGNORECASE,
)
_ASKS_AUTHOR = re.compile(r"\b(author|writer)s?\b.*\b(of|behind)\b|\bwho\b.*\b(author|writer)s?\b", re.IGNORECASE)
# "Published", "written", "posted" and "dated" are said of writing; "came out" and "released" of
# bicycles and films too, so with those the question must name the writing ("When did the
# safety bicycle come out?" asks about bicycles).
_ASKS_DATE = re.compile(
    r"\b(when|what (year|date|day|month))\b.*\b(published|written|posted|dated)\b"
    rf"|\b(when|what (year|date|day|month))\b.*\b({_WRITING}).*\b(released|came out|come out|appeared)\b"
    r"|\bpublication date\b|\bhow old is (this|the) (article|post|paper|page|piece)\b",
    re.IGNORECASE,
)
_ABOUT = (
    "wrote write writes written author authors writer writers authored penned published publish publication "
    "released release posted dated date year article articles paper papers report reports book document "
    "piece post study came come appeared old"
)


def about_article(question: str) -> str | None:
    """ "author" or "date" when the question asks who wrote an article or when it came out."""
    if _ASKS_WRITER.search(question) or _ASKS_AUTHOR.search(question):
        return "author"
    if _ASKS_DATE.search(question):
        return "date"
    return None


def byline_answer(
    question: str, query: str, asked: str, hits: Sequence[Hit], first: Hit, *, history: Sequence[str] = ()
) -> Answer | None:
    """The answer to "who wrote / when was ... published" from what the article says of itself
    (its metadata: a PDF's or DOCX's properties, an HTML page's byline, front matter), citing the
    article's first passage; or an honest "it does not say". `first` is the first passage of the
    top hit's article; None when the rest of the question does not name that article."""
    article = first.article
    topic = content_terms(query) - stems(_ABOUT)
    if topic:
        named = content_terms(article.title + " " + article.text[:50_000])
        if len(topic & named) < 0.5 * len(topic):
            return None
    elif len({h.article.id for h in hits}) > 1:
        return None  # "who wrote it?" with several articles in view: which one is not said
    said = article.author if asked == "author" else _spelled_date(article.date)
    if not said:
        what = "who wrote it" if asked == "author" else "when it was published"
        return Answer(
            question=question,
            found=False,
            text="",
            hits=tuple(hits),
            query=query,
            reason=f"“{article.title}” does not say {what}.",
            history=tuple(history),
        )
    verb = "was written by" if asked == "author" else "was published on"
    top = replace(first, rank=1)
    rest = [replace(h, rank=i) for i, h in enumerate((h for h in hits if h.chunk.key != first.chunk.key), 2)]
    return Answer(
        question=question,
        found=True,
        text=f"“{article.title}” {verb} {said.rstrip('. ')}.",
        hits=(top, *rest[: len(hits) - 1]),
        confidence=0.95,  # read from the article itself, yet never shown as certain
        query=query,
        history=tuple(history),
    )


_MONTHS = "January February March April May June July August September October November December".split()


def _spelled_date(date: str | None) -> str | None:
    """ "2025-04-17" -> "17 April 2025"; other forms as they are."""
    match = re.fullmatch(r"(\d{4})-(\d{2})(?:-(\d{2}))?(T.*)?", date or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        return date
    year, month, day = match.group(1), _MONTHS[int(match.group(2)) - 1], match.group(3)
    return f"{int(day)} {month} {year}" if day else f"{month} {year}"
