"""A question's way to its answer: the follow-up resolved, passages retrieved, the answering
sentence marked in each, the evidence weighed, and the answer given or withheld. A question
about an article's author or date is answered from the article itself."""

from __future__ import annotations

import functools
from dataclasses import replace

import numpy as np

from articleqa.embed.base import Embedder
from articleqa.embed.onnxmodel import unit_norms
from articleqa.index.snapshot import Index
from articleqa.query.answer.byline import about_article, byline_answer
from articleqa.query.answer.compose import compose
from articleqa.query.answer.evidence import Abstention, Evidence, evidence, subject_matches
from articleqa.query.answer.followups import resolve
from articleqa.query.answer.highlight import highlight, sentence_token_match
from articleqa.query.answer.reader import shipped
from articleqa.query.answer.reading import answer_sentences, lead, rerank
from articleqa.query.request import Request
from articleqa.query.retrieve import search_index
from articleqa.runtime.threads import single_threaded
from articleqa.runtime.timing import stage
from articleqa.schema import Answer, Hit
from articleqa.settings import Settings
from articleqa.text.chunking import embed_text


def encode(embedder: Embedder, query: str) -> tuple[np.ndarray, np.ndarray]:
    """The question's vector and its content token vectors, from one forward pass."""
    with stage("encode"):
        return embedder.encode_query(query)


def answer(index: Index, embedder: Embedder, settings: Settings, request: Request, rule: Abstention) -> Answer:
    """The answer to a checked request over one snapshot of the index."""
    question, history = request.question, request.history
    query = resolve(question, history, index.lexical.common)
    if not len(index):
        return compose(question, query, [], evidence=Evidence(0.0, 0.0, 0.0), rule=rule, history=history)
    vector, tokens = encode(embedder, query)
    reader = shipped() if settings.answer.reader and request.mode != "keyword" else None
    wanted = max(request.k, settings.answer.reader_passages) if reader is not None else request.k
    hits = search_index(index, query, vector, k=wanted, mode=request.mode, settings=settings, query_tokens=tokens)
    if reader is not None and hits:
        with stage("reader"):
            read = hits[: settings.answer.reader_passages]
            readings = reader.read(query, [h.text for h in read], [lead(h) for h in read])
            hits = rerank(hits, readings, settings.answer.reader_weight)[: request.k]
    with stage("highlight"), single_threaded():
        # From the same snapshot as the hits: an upload may swap in a new index meanwhile.
        sentences = [index.sentences_of(h.chunk) for h in hits]
        # The answer is the top passage's sentence: it alone gets the word-piece look.
        top = [_sentence_token_match(index, embedder, hits[0], sentences[0][0], tokens)] if hits else []
        hits = highlight(
            hits, query, vector, sentences, question=question, token_matches=top, weights=settings.answer
        )
        if reader is not None:  # the reader's span decides which sentences answer, where it read
            hits = [_around_span(h, spans) for h, (spans, _) in zip(hits, sentences)]
        matches = index.best_match(tokens, [h.chunk.key for h in hits])
        matches = subject_matches(matches, query, embedder.content_words)
        weighed = evidence(query, vector, hits, sentences, index.lexical, word_matches=matches)
        asked = about_article(question) if hits else None
        if asked is not None:
            first = index.chunks_of(hits[0].article.id)[0]
            cited = Hit(chunk=first, article=hits[0].article, score=hits[0].score, rank=1)
            replied = byline_answer(question, query, asked, hits, cited, history=history)
            if replied is not None:
                return replied
    return compose(question, query, hits, evidence=weighed, rule=rule, history=history)


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
