"""Whether the passages found answer the question: the evidence, and the rule that abstains."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from articleqa.query.answer.reader import clipped
from articleqa.query.answer.words import FRAME_WORDS, MEANING, stems
from articleqa.schema import Hit
from articleqa.settings import AnswerSettings
from articleqa.text.lexical import content_terms

_DEFAULT = AnswerSettings()


@dataclass(frozen=True)
class Evidence:
    """What the abstention rule looks at (see docs/how-it-works.md, "Abstention")."""

    sentence: float  # cosine of the closest sentence in the top passages to the question
    known: float  # share of the question's content terms that occur anywhere in the articles
    coverage: float  # share of them found in the top three passages (with their titles)
    # The question's least-matched content word piece: its best cosine among the top passages'
    # word pieces. Low when the question names something the passages never touch ("Botox").
    weakest_word: float = 1.0
    # The reader's margin on the top passage (its best span's score above "no answer here");
    # None where no reader read it.
    margin: float | None = None


@dataclass(frozen=True)
class Abstention:
    """When to say the articles don't answer.

    Answer when some sentence is close to the question in meaning; or, for names and rare
    terms the model knows little about, when every content term of the question occurs in the
    articles, the top passages hold most of them, and the closest sentence is not far off.
    Either way, not when a word of the question matches nothing in the top passages and no
    sentence is very close: the question is then about something else ("How long does Botox
    last?" shares "how long" and "skin" with the articles, not its subject). The thresholds are
    Settings.answer's (calibrated in docs/evaluation.md).
    """

    sentence: float = _DEFAULT.abstain_sentence
    named_sentence: float = _DEFAULT.named_sentence
    named_coverage: float = _DEFAULT.named_coverage
    unmatched_word: float = _DEFAULT.unmatched_word
    unmatched_sentence: float = _DEFAULT.unmatched_sentence
    # The confidence curve (`confidence`) and the least confidence an answer is shown with.
    curve: tuple[float, ...] | None = _DEFAULT.confidence_curve
    least_confidence: float = _DEFAULT.least_confidence

    @classmethod
    def of(cls, settings: AnswerSettings) -> Abstention:
        return cls(
            settings.abstain_sentence,
            settings.named_sentence,
            settings.named_coverage,
            settings.unmatched_word,
            settings.unmatched_sentence,
            settings.confidence_curve,
            settings.least_confidence,
        )

    def confidence(self, e: Evidence) -> float:
        """How likely the answer shown holds the fact: a logistic curve of the closest sentence's
        similarity and the reader's margin, fitted on the evaluation sets (benchmarks/calibration.py,
        docs/evaluation.md). Without a curve (or without a reader's margin): that similarity."""
        sentence = float(max(0.0, min(1.0, e.sentence)))
        if self.curve is None:
            return round(min(sentence, 0.99), 4)
        bias, w_sentence, w_margin = self.curve
        margin = 0.0 if e.margin is None else e.margin  # no reader: the curve was fitted without one
        z = bias + w_sentence * sentence + w_margin * float(clipped(margin))
        return round(min(0.99, 1.0 / (1.0 + math.exp(-z))), 4)  # never 1.00: it is an estimate

    def decide(self, e: Evidence) -> bool:
        if self.curve is not None and self.confidence(e) < self.least_confidence:
            return False
        if e.weakest_word < self.unmatched_word and e.sentence < self.unmatched_sentence:
            return False
        if e.sentence >= self.sentence:
            return True
        return e.known >= 1.0 and e.coverage >= self.named_coverage and e.sentence >= self.named_sentence


def evidence(
    query: str,
    query_vector: np.ndarray,
    hits: Sequence[Hit],
    sentences,
    lexical,
    *,
    word_matches: np.ndarray | None = None,
) -> Evidence:
    """Measure how well the hits answer: best sentence similarity, term coverage and, from
    `word_matches` (each question word piece's best cosine in the hits), the weakest word."""
    best = max((float((vecs @ query_vector).max()) for _, vecs in sentences if len(vecs)), default=0.0)
    weakest = float(word_matches.min()) if word_matches is not None and len(word_matches) else 1.0
    terms = content_terms(query)
    margin = hits[0].reader_margin if hits else None
    if not terms:
        return Evidence(best, 0.0, 0.0, weakest, margin)
    seen: set[str] = set()
    for hit in hits[:3]:
        seen |= content_terms(hit.article.title + " " + hit.text)
    subject = ((terms - stems(FRAME_WORDS)) or terms) if MEANING.search(query) else terms
    known, covered = len(lexical.known(subject)) / len(subject), len(subject & seen) / len(subject)
    return Evidence(best, known, covered, weakest, margin)


def subject_matches(matches: np.ndarray | None, query: str, words_of: Callable[[str], list[str]] | None):
    """Each question word piece's best match (`evidence`'s `word_matches`) with the pieces of
    frame words left out: "translation" in "the translation of Oude Maas" matches nothing in
    the passage that translates it, and says nothing about whether the articles cover it."""
    frame = stems(FRAME_WORDS)
    if matches is None or words_of is None or not MEANING.search(query) or not frame & content_terms(query):
        return matches
    words = words_of(query)
    if len(words) != len(matches):
        return matches
    keep = np.array([not (t and t <= frame) for t in map(content_terms, words)])
    return matches[keep] if keep.any() else matches
