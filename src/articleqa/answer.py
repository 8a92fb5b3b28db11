"""Hits -> Answer: the sentence that answers, its offsets, and whether to answer at all.

No language model writes anything: the short answer is a sentence taken verbatim from the best
passage, chosen by its embedding similarity to the question plus how many question terms it has.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np

from .lexical import tokenize
from .schema import Answer, Hit
from .text import sentence_spans, words

# Weight of question-term coverage next to cosine similarity when choosing the sentence.
LEXICAL_WEIGHT = 0.3

_PRONOUNS = {
    "it", "its", "they", "them", "their", "theirs", "that", "this", "those", "these",
    "he", "she", "him", "her", "his", "hers", "there", "one", "ones", "same", "else",
}  # fmt: skip
_OPENERS = ("and ", "but ", "or ", "also ", "so ", "what about", "how about", "then ", "and?", "why not")


@dataclass(frozen=True)
class Abstention:
    """When to say the articles don't answer (see docs/how-it-works.md, "Abstention").

    Answer when the best passage is close to the question in meaning (`dense`), or when it is
    moderately close and shares most of the question's distinctive terms (`supported`).
    """

    dense: float = 0.45
    supported_dense: float = 0.30
    coverage: float = 0.5

    def decide(self, dense_score: float, coverage: float) -> bool:
        if dense_score >= self.dense:
            return True
        return dense_score >= self.supported_dense and coverage >= self.coverage


def is_follow_up(question: str) -> bool:
    """A question that leans on the conversation: an opener, a pronoun, or almost no words."""
    text = question.strip().lower()
    if text.startswith(_OPENERS):
        return True
    tokens = [w.lower() for w in words(text)]
    if any(t in _PRONOUNS for t in tokens):
        return True
    return len(tokenize([text])[0]) <= 1


def resolve(question: str, history: Sequence[str]) -> str:
    """The text to search: the question alone, or joined to the previous one for a follow-up."""
    previous = [h.strip() for h in history if h and h.strip()]
    if not previous or not is_follow_up(question):
        return question.strip()
    return f"{previous[-1]} {question.strip()}"


def term_coverage(query: str, text: str, vocabulary: set[str] | None = None) -> float:
    """Fraction of the query's stemmed content terms found in `text`."""
    terms = set(tokenize([query])[0])
    if vocabulary is not None:
        terms = {t for t in terms if t in vocabulary} | (terms - vocabulary)
    if not terms:
        return 0.0
    have = set(tokenize([text])[0])
    return len(terms & have) / len(terms)


def highlight(hits: Sequence[Hit], query: str, query_vector: np.ndarray | None, embedder) -> list[Hit]:
    """Mark in each hit the sentence that best answers the query (offsets into hit.text)."""
    spans = [sentence_spans(h.text) or [(0, len(h.text))] for h in hits]
    flat = [h.text[s:e] for h, sp in zip(hits, spans) for s, e in sp]
    if not flat:
        return list(hits)
    if embedder is not None and query_vector is not None:
        sims = embedder.encode(flat, progress=False) @ query_vector.reshape(-1)
    else:
        sims = np.zeros(len(flat), dtype=np.float32)
    query_terms = set(tokenize([query])[0])
    sentence_terms = tokenize(flat)
    out: list[Hit] = []
    i = 0
    for hit, sp in zip(hits, spans):
        best, best_score = None, -1e9
        for s, e in sp:
            cover = len(query_terms & set(sentence_terms[i])) / len(query_terms) if query_terms else 0.0
            score = float(sims[i]) + LEXICAL_WEIGHT * cover
            if score > best_score and re.search(r"\w", hit.text[s:e]):
                best, best_score = (s, e), score
            i += 1
        if best is None:
            out.append(hit)
            continue
        out.append(replace(hit, highlight_start=best[0], highlight_end=best[1], highlight_score=round(best_score, 4)))
    return out


def compose(
    question: str,
    query: str,
    hits: Sequence[Hit],
    *,
    top_dense: float,
    coverage: float,
    rule: Abstention,
    history: Sequence[str] = (),
) -> Answer:
    """Build the Answer: found or not, the short answer text and a one-line reason."""
    found = bool(hits) and rule.decide(top_dense, coverage)
    confidence = round(float(max(0.0, min(1.0, top_dense))), 4)
    if found:
        text = hits[0].highlight or hits[0].text
        reason = ""
    else:
        text = ""
        reason = (
            "The articles don't cover this: the closest passage is not close enough "
            f"(similarity {top_dense:.2f}, {coverage:.0%} of the question's key terms)."
        )
    return Answer(
        question=question,
        found=found,
        text=text,
        hits=tuple(hits),
        confidence=confidence,
        query=query,
        reason=reason,
        history=tuple(history),
    )
