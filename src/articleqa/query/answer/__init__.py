"""From ranked passages to the answer shown: follow-ups, the answering sentence, whether the
passages answer at all, and questions about an article's byline. pipeline.py runs them in order."""

from articleqa.query.answer.byline import about_article, byline_answer
from articleqa.query.answer.compose import compose
from articleqa.query.answer.evidence import Abstention, Evidence, evidence, subject_matches
from articleqa.query.answer.followups import is_follow_up, resolve
from articleqa.query.answer.highlight import answer_type, highlight, key_span, sentence_token_match

__all__ = [
    "Abstention",
    "Evidence",
    "about_article",
    "answer_type",
    "byline_answer",
    "compose",
    "evidence",
    "highlight",
    "is_follow_up",
    "key_span",
    "resolve",
    "sentence_token_match",
    "subject_matches",
]
