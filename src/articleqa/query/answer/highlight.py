"""The sentence of each passage that answers: scored by meaning, question terms, the kind of
thing asked for and the question's word pieces; a close neighbour is shown with it."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from articleqa.query.answer.reader import clipped
from articleqa.query.answer.words import MEANING
from articleqa.schema import Hit
from articleqa.settings import AnswerSettings
from articleqa.text.lexical import content_terms

_NUMBER = r"(\d+|a|one|two|three|four|five|six|seven|eight|nine|ten|twelve|few|several|couple of)"
_DURATION = re.compile(
    rf"\b{_NUMBER}\s+(seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?)\b"
    r"|\b(daily|weekly|monthly|overnight|immediately|every (day|night|week|morning|evening))\b",
    re.IGNORECASE,
)
_HOW_MUCH = re.compile(
    r"\bhow (much|many|hot|cold|warm|big|large|small|far|deep|high|tall|heavy|old|wide)\b"
    r"|\bwhat (percentage|proportion|price|cost|temperature|size|age|length|depth|height|area|number)\b",
    re.IGNORECASE,
)
_ANSWER_TYPES = [
    (  # what a word means: a sentence that glosses it ('the Obersee ("upper lake")', "literally")
        MEANING,
        re.compile(r"\(\s*[\"“‘']|\b(means?|meaning|literally|translat\w*)\b|\bi\.e\.|[\"“][^\"”]{2,40}[\"”]", re.I),
    ),
    (re.compile(r"\bhow (long|soon|quickly|fast|often)\b", re.IGNORECASE), _DURATION),
    (
        re.compile(r"\b(when|what (year|century|decade|date|month)|which (year|century))\b", re.IGNORECASE),
        re.compile(
            _DURATION.pattern + r"|\b(1[0-9]{3}|20[0-9]{2})s?\b|\bcentur(y|ies)\b|\b(BC|AD)\b"
            r"|\b(January|February|March|April|May|June|July|August|September|October|November|December)\b",
            re.IGNORECASE,
        ),
    ),
    (
        re.compile(r"\b(where|what (country|city|region|town|river|lake|sea)|which (country|city|region))\b", re.I),
        re.compile(r"\b(in|at|near|from|into|through|between|to|across|along)\s+(the\s+)?[A-Z][a-z]+"),
    ),
    (
        re.compile(r"\b(who|whom|whose)\b", re.IGNORECASE),
        re.compile(
            r"\b(Dr|Prof|Mr|Ms|Mrs)\.\s|\b(explains|says|said|notes|according to)\b|\b[A-Z][a-z]+ [A-Z][a-z]+\b"
        ),
    ),
    (
        _HOW_MUCH,
        re.compile(rf"\d|\bpercent\b|[%$€£°]|\b{_NUMBER}\b|\b(hundred|thousand|million|billion)\b"),
    ),
]


# The fact itself, marked inside the answer sentence, for the questions that ask for one.
_YEAR_OR_DATE = re.compile(
    r"\b(?:\d{1,2}\s)?(?:January|February|March|April|May|June|July|August|September|October|November|December)"
    r"(?:\s\d{1,2})?(?:,?\s\d{4})?\b|\b(?:1[0-9]{3}|20[0-9]{2})s?\b|\b\d+(?:st|nd|rd|th) centur(?:y|ies)\b"
)
_QUANTITY = re.compile(r"[$€£]?\d[\d,.]*(?:\s?(?:%|percent\b|°[CF]?|[a-zµ]+\b))?")
_NAME = re.compile(r"\b(?:(?:Dr|Prof|Mr|Ms|Mrs|St)\.\s)?[A-Z][\w'-]+(?:\s(?:of\s|de\s|van\s|von\s)?[A-Z][\w'-]+)+")
_NOT_NAMES = frozenset(
    "The A An In On At By This That These Those It Its He She They We After Before When While".split()
)
_SPAN_OF_TIME = re.compile(rf"\b(?:{_NUMBER}\s*(?:to|-|–|or)\s*)?" + _DURATION.pattern.removeprefix(r"\b"), re.I)
_FACTS = [
    (re.compile(r"\bhow (long|soon|quickly|fast|often)\b", re.I), (_SPAN_OF_TIME, _QUANTITY)),
    (re.compile(r"\b(when|what (year|century|decade|date|month)|which (year|century))\b", re.I), (_YEAR_OR_DATE,)),
    (_HOW_MUCH, (_QUANTITY,)),
    (re.compile(r"\b(who|whom|whose)\b", re.I), (_NAME,)),
]


def key_span(question: str, text: str, start: int, end: int) -> tuple[int, int] | None:
    """Where in text[start:end] (the answer shown) the fact asked for lies: the duration for "how
    long", the date for "when", the quantity for "how many", the name for "who". None for other
    questions, or when the answer holds no such thing."""
    for asks, facts in _FACTS:
        if not asks.search(question):
            continue
        for fact in facts:  # "how long": a span of time, else a length
            found_all = list(fact.finditer(text, start, end))
            if fact is _NAME:  # a name after "by" ("described by Johann Tulla") is the one asked for
                found_all.sort(key=lambda m: not text[max(start, m.start() - 3) : m.start()] == "by ")
            for found in found_all:
                a, b = found.span()
                if fact is _NAME:  # "The Rhine Delta": the name is what follows a starter word
                    first, _, rest = found.group(0).partition(" ")
                    if first in _NOT_NAMES:
                        if " " not in rest:
                            continue
                        a += len(first) + 1
                return a, b
        return None
    return None


def answer_type(question: str) -> re.Pattern | None:
    """What a factoid question asks for, as a pattern an answering sentence would match."""
    for asks, looks_like in _ANSWER_TYPES:
        if asks.search(question):
            return looks_like
    return None


def highlight(
    hits: Sequence[Hit],
    query: str,
    query_vector: np.ndarray,
    sentences: Sequence[tuple[list[tuple[int, int]], np.ndarray]],
    *,
    question: str | None = None,
    token_matches: Sequence[np.ndarray | None] = (),
    weights: AnswerSettings = AnswerSettings(),  # noqa: B008 - frozen: one shared default is safe
    reader_margins: Sequence[np.ndarray | None] = (),
) -> list[Hit]:
    """Mark in each hit the sentence that best answers the query (offsets into hit.text).

    `sentences` gives, per hit, its sentence spans and their unit vectors. A sentence scores its
    cosine similarity to the question, plus `weights.lexical_weight` times the share of the
    question's content terms in it, plus `type_weight` when it holds the kind of thing asked for (a
    duration for "how long", a year for "when", a place for "where", a person for "who", a number
    for "how many"), plus `token_weight` times how well the question's word pieces find their match
    among the sentence's (`token_matches`, per hit, where given), plus `reader_sentence_weight`
    times the sentence reader's margin (`reader_margins`, per hit, where it read the hit); a
    sentence that is itself a question is no answer. The sentence next to the best one is marked
    with it when it scores within `pair_margin` (`reader_pair_margin` where the reader read the
    hit: its margins spread the scores).
    """
    query_terms = content_terms(query)
    wanted = answer_type(question or query)
    out: list[Hit] = []
    matches = list(token_matches) + [None] * (len(hits) - len(token_matches))
    read = list(reader_margins) + [None] * (len(hits) - len(reader_margins))
    for hit, (spans, vectors), matched, margins in zip(hits, sentences, matches, read):
        if not spans:
            out.append(hit)
            continue
        sims = vectors @ query_vector.reshape(-1)
        if matched is not None and len(matched) == len(spans):
            sims = sims + weights.token_weight * matched
        if margins is not None and len(margins) == len(spans):
            sims = sims + weights.reader_sentence_weight * clipped(margins)
        best, best_score, scores = 0, -1e9, []
        asks = [hit.text[s:e].rstrip().endswith("?") for s, e in spans]  # a question restates, it does not answer
        for i, (s, e) in enumerate(spans):
            sentence = hit.text[s:e]
            cover = len(query_terms & content_terms(sentence)) / len(query_terms) if query_terms else 0.0
            score = float(sims[i]) + weights.lexical_weight * cover
            if wanted is not None and wanted.search(sentence):
                score += weights.type_weight
            if asks[i]:
                # Its word-piece match is no merit either.
                pieces = weights.token_weight * float(matched[i]) if matched is not None else 0.0
                score -= weights.question_penalty + pieces
            scores.append(score)
            if score > best_score:
                best, best_score = i, score
        start, end = spans[best]
        # A neighbour that scores nearly as well is shown too: the answer often sits in the
        # sentence after the one that restates the question ("...a straightening program." /
        # "The rate of flow was increased...").
        near = [
            k
            for k in (best - 1, best + 1)
            if 0 <= k < len(spans)
            and scores[k] >= best_score - (weights.pair_margin if margins is None else weights.reader_pair_margin)
            and not asks[k]
            and max(end, spans[k][1]) - min(start, spans[k][0]) <= weights.pair_chars
        ]
        if near:
            k = max(near, key=lambda k: scores[k])
            start, end = min(start, spans[k][0]), max(end, spans[k][1])
        out.append(replace(hit, highlight_start=start, highlight_end=end, highlight_score=round(best_score, 4)))
    return out


def sentence_token_match(
    spans: Sequence[tuple[int, int]],
    query_tokens: np.ndarray,
    passage_tokens: np.ndarray,
    offsets: Sequence[tuple[int, int]],
) -> np.ndarray | None:
    """For each sentence (`spans`, offsets into the passage): the mean over the question's word
    pieces of their best cosine among the sentence's word pieces (`passage_tokens`, unit rows,
    at `offsets` in the passage). None when the pieces do not line up with the passage."""
    if len(offsets) != len(passage_tokens) or not len(query_tokens):
        return None
    cosines = query_tokens @ passage_tokens.T
    starts = np.array([a for a, _ in offsets])
    ends = np.array([b for _, b in offsets])
    out = np.zeros(len(spans), np.float32)
    for i, (s, e) in enumerate(spans):
        inside = np.nonzero((starts >= s) & (ends <= e))[0]
        if len(inside):
            out[i] = float(cosines[:, inside].max(axis=1).mean())
    return out
