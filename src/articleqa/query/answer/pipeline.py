"""A question's way to its answer: the follow-up resolved, passages retrieved, the answering
sentence marked in each, the evidence weighed, and the answer given or withheld. A question
about an article's author or date is answered from the article itself."""

from __future__ import annotations

import functools
import re
from dataclasses import replace

import numpy as np

from articleqa.embed.base import Embedder
from articleqa.embed.onnxmodel import unit_norms
from articleqa.index.snapshot import Index
from articleqa.query.answer.byline import about_article, byline_answer
from articleqa.query.answer.compose import compose
from articleqa.query.answer.evidence import Abstention, Evidence, evidence, subject_matches
from articleqa.query.answer.followups import resolve
from articleqa.query.answer.highlight import highlight, key_span, sentence_token_match
from articleqa.query.answer.intents import asks_for_more, is_yes_no, summary_target, unmentioned, yes_no_note
from articleqa.query.answer.readers import shipped
from articleqa.query.answer.reading import answer_sentences, lead, rerank
from articleqa.query.answer.summary import pick_article, summary
from articleqa.query.request import Request
from articleqa.query.retrieve import search_index
from articleqa.runtime.threads import single_threaded
from articleqa.runtime.timing import stage
from articleqa.schema import Answer, Hit
from articleqa.settings import Settings
from articleqa.text.chunking import embed_text
from articleqa.text.lexical import content_terms


def encode(embedder: Embedder, query: str) -> tuple[np.ndarray, np.ndarray]:
    """The question's vector and its content token vectors, from one forward pass."""
    with stage("encode"):
        return embedder.encode_query(query)


def answer(index: Index, embedder: Embedder, settings: Settings, request: Request, rule: Abstention) -> Answer:
    """The answer to a checked request over one snapshot of the index."""
    question, history = request.question, request.history
    if not len(index):
        query = resolve(question, history, index.lexical.common)
        return compose(question, query, [], evidence=Evidence(0.0, 0.0, 0.0), rule=rule, history=history)
    target = summary_target(question)
    if target is not None:
        return _summarize(index, embedder, settings, request, target)
    query, skip, note = _what_to_search(question, history, index.lexical.common)
    vector, tokens = encode(embedder, query)
    hits, margins = _ranked(index, embedder, settings, request, query, vector, tokens, skip, _to_read(question, query))
    if skip or query == question.strip():
        focus: set[str] = set()
    else:  # a follow-up: what it adds to the question before ("and for hair?") must be in the answer
        focus = content_terms(question) - content_terms(query[: -len(question.strip())])
    hits = _focused(hits, focus)
    with stage("highlight"), single_threaded():
        # From the same snapshot as the hits: an upload may swap in a new index meanwhile.
        sentences = [index.sentences_of(h.chunk) for h in hits]
        # The answer is the top passage's sentence: it alone gets the word-piece look.
        top = [_sentence_token_match(index, embedder, hits[0], sentences[0][0], tokens)] if hits else []
        hits = highlight(
            hits, query, vector, sentences, question=question, token_matches=top, weights=settings.answer,
            reader_margins=[margins.get(h.chunk.key) for h in hits],
        )  # fmt: skip
        if hits and hits[0].reader_margin is not None and not margins:  # a span reader's span decides
            hits = [_around_span(h, spans) for h, (spans, _) in zip(hits, sentences)]
        hits = [_key_marked(h, question) for h in hits]
        matches = index.best_match(tokens, [h.chunk.key for h in hits])
        missing = unmentioned(
            query, embedder.content_words, matches, index.lexical.known, index.lexical.near,
            settings.answer.unmentioned_word,
        )  # fmt: skip
        matches = subject_matches(matches, query, embedder.content_words)
        weighed = evidence(query, vector, hits, sentences, index.lexical, word_matches=matches)
        if missing and not skip and rule.decide(weighed):  # would answer the rest: say what is missing
            return _never_mentioned(question, query, hits, missing, history)
        asked = about_article(question) if hits else None
        if asked is not None:
            first = index.chunks_of(hits[0].article.id)[0]
            cited = Hit(chunk=first, article=hits[0].article, score=hits[0].score, rank=1)
            replied = byline_answer(question, query, asked, hits, cited, history=history)
            if replied is not None:
                return replied
    replied = compose(question, query, hits, evidence=weighed, rule=rule, history=history, note=note)
    if replied.found and not note and is_yes_no(question):
        replied = replace(replied, note=yes_no_note(hits))
    return replied


def _what_to_search(question: str, history, common) -> tuple[str, int, str]:
    """The text to search, how many of its best passages were shown already, and a note: "tell
    me more" searches the last question again past the passages its answers came from."""
    asked = [h for h in history if h and h.strip()]
    if not asks_for_more(question) or not asked:
        return resolve(question, history, common), 0, ""
    more = 0
    while asked and asks_for_more(asked[-1]):
        asked.pop()
        more += 1
    if not asked:
        return resolve(question, history, common), 0, ""
    base = asked[-1].strip()
    shown = "passage" if more == 0 else f"{more + 1} passages"
    return resolve(base, asked[:-1], common), more + 1, f"More on “{base}”, past the {shown} answered from before."


_ASKS = re.compile(r"\b(who|whom|whose|what|when|where|which|why|how)\b", re.IGNORECASE)


def _to_read(question: str, query: str) -> str:
    """What the reader reads as the question. The search reads a follow-up after the question
    before it ("How do I apply a serum? how long until results?"); the reader reads one that asks
    its own question ("how long until results?") alone, and an elliptical one ("and for hair?")
    before the question it continues."""
    asked = question.strip()
    if query == asked or not query.endswith(asked):
        return query
    return asked if _ASKS.search(asked) else f"{asked} {query[: -len(asked)].strip()}"


def _ranked(index, embedder, settings, request, query, vector, tokens, skip: int, to_read: str = ""):
    """The passages for `query`, re-ranked by the reader where one ships, the first `skip` left out;
    and a sentence reader's margins for each sentence of the passages it read, by passage key."""
    reader = shipped() if settings.answer.reader and request.mode != "keyword" else None
    wanted = max(request.k, settings.answer.reader_passages) if reader is not None else request.k
    hits = search_index(
        index, query, vector, k=wanted + skip, mode=request.mode, settings=settings, query_tokens=tokens
    )
    margins: dict[int, np.ndarray] = {}
    if reader is not None and hits:
        with stage("reader"):
            read = hits[: settings.answer.reader_passages + skip]
            spans = [index.sentences_of(h.chunk)[0] for h in read]
            readings = reader.read(to_read or query, [h.text for h in read], [lead(h) for h in read], spans)
            margins = {h.chunk.key: np.array(r.sentences) for h, r in zip(read, readings) if r.sentences}
            hits = rerank(hits, readings, settings.answer.reader_weight)
    hits = hits[skip : skip + request.k]
    return [replace(h, rank=i) for i, h in enumerate(hits, start=1)], margins


def _focused(hits: list[Hit], focus: set[str]) -> list[Hit]:
    """The hits that hold a word the follow-up added first, each group in its order."""
    if not focus:
        return hits
    holds = [bool(focus & content_terms(" ".join((h.article.title, *h.chunk.headings, h.text)))) for h in hits]
    if not any(holds) or holds[0]:
        return hits
    ordered = [h for h, k in zip(hits, holds) if k] + [h for h, k in zip(hits, holds) if not k]
    return [replace(h, rank=i) for i, h in enumerate(ordered, start=1)]


def _never_mentioned(question: str, query: str, hits: list[Hit], missing: list[str], history) -> Answer:
    named = " or ".join(f"“{w}”" for w in missing)
    return Answer(
        question=question,
        found=False,
        text="",
        hits=tuple(hits),
        confidence=0.0,
        query=query,
        reason=f"The articles never mention {named}.",
        history=tuple(history),
        note="What they say about the rest of the question is in the passages below.",
    )


def _summarize(index: Index, embedder: Embedder, settings: Settings, request: Request, target: str) -> Answer:
    def search(text: str) -> list[Hit]:
        vector, tokens = encode(embedder, text)
        return search_index(index, text, vector, k=1, mode="hybrid", settings=settings, query_tokens=tokens)

    if not target and request.history:  # "sum it up": the article the last question was answered from
        hits = search(request.history[-1])
        article, message, named = (hits[0].article, "", False) if hits else (None, "", False)
    else:
        article, message, named = pick_article(target, list(index.articles.values()), search)
    if article is None:
        return Answer(question=request.question, found=False, text="", query=request.question, reason=message,
                      history=tuple(request.history))  # fmt: skip
    chunks = index.chunks_of(article.id)
    return summary(
        request.question,
        article,
        chunks,
        lambda c: index.sentences_of(c)[0],
        confidence=0.9 if named else 0.6,
        history=request.history,
    )


def _key_marked(hit: Hit, question: str) -> Hit:
    """The fact asked for (a date, a number, a name) marked inside the answer sentence, where no
    span reader marked the answer's words."""
    if hit.span_start is not None or hit.highlight_start is None or hit.highlight_end is None:
        return hit
    found = key_span(question, hit.text, hit.highlight_start, hit.highlight_end)
    return hit if found is None else replace(hit, span_start=found[0], span_end=found[1])


def _around_span(hit: Hit, spans) -> Hit:
    found = answer_sentences(hit, spans)
    if found is None or hit.reader_margin is None or hit.reader_margin <= 0:
        return hit
    return replace(hit, highlight_start=found[0], highlight_end=found[1])


def _sentence_token_match(index: Index, embedder: Embedder, hit: Hit, spans, query_tokens) -> np.ndarray | None:
    """How well the question's word pieces find their match in each sentence of `hit`."""
    if query_tokens is None or not spans or not embedder.word_pieces:
        return None  # a stand-in embedder (tests, benchmarks) has no word pieces
    offsets = _piece_offsets(embedder, embed_text(hit.article, hit.chunk), len(hit.chunk.text))
    vectors = index.token_vectors(hit.chunk.key)
    return sentence_token_match(spans, query_tokens, vectors / unit_norms(vectors), offsets)


@functools.lru_cache(maxsize=4096)  # passages repeat from question to question
def _piece_offsets(embedder: Embedder, text: str, passage_chars: int) -> tuple[tuple[int, int], ...]:
    """Where the content word pieces of a passage's embedded text lie in the passage itself."""
    offsets = embedder.content_offsets(text)
    base = len(text) - passage_chars
    return tuple((a - base, b - base) for a, b in offsets)
