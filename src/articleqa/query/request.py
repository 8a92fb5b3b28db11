"""A question as `ask` and `search` take it, checked before any work is done."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from articleqa.errors import BadQuestion
from articleqa.query.retrieve import check_mode
from articleqa.settings import Settings


@dataclass(frozen=True)
class Request:
    """A checked, normalized request: the question, how many passages, the mode, and the earlier
    questions that matter."""

    question: str
    k: int
    mode: str
    history: tuple[str, ...] = ()


def check_request(question, *, k=None, mode=None, history: Sequence[str] | None = (), settings: Settings) -> Request:
    """Raises BadQuestion (or ArticleQAError for a mode) saying what to send; a server runs it at
    the door too."""
    return Request(
        check_question(question, settings),
        check_k(k, settings),
        check_mode(mode or settings.mode),
        check_history(history, settings),
    )


def check_question(question, settings: Settings) -> str:
    if question is not None and not isinstance(question, str):
        raise BadQuestion(f"the question must be text, not {type(question).__name__}")
    if not question or not question.strip():
        raise BadQuestion("the question is empty: type a question about the articles")
    limit = settings.max_question_chars
    # Far too long is refused before any work on it; otherwise spaces are collapsed first.
    if len(question) <= 4 * limit:
        question = " ".join(question.split())
    if len(question) > limit:
        raise BadQuestion(
            f"the question is {len(question)} characters long; keep it under {limit} (ask about one thing at a time)"
        )
    if not any(ch.isalnum() for ch in question):
        raise BadQuestion("the question has no words in it: ask in plain language")
    return question


def check_history(history: Sequence[str] | None, settings: Settings) -> tuple[str, ...]:
    """The earlier questions that matter: the last `settings.history_turns`, each one a question
    that could have been asked. Bounded so a huge history costs nothing (older turns are dropped
    unread; an oversized one is refused)."""
    if history is None:
        return ()
    if isinstance(history, (str, bytes)) or not isinstance(history, Sequence):
        raise BadQuestion(
            f"history must be a list of the earlier questions (strings, oldest first), not {type(history).__name__}"
        )
    recent = tuple(history[-settings.history_turns :])
    limit = settings.max_question_chars
    for turn in recent:
        if not isinstance(turn, str):
            raise BadQuestion(f"history must hold questions as strings, not {type(turn).__name__}")
        if len(turn) > 4 * limit:
            raise BadQuestion(
                f"an earlier question in history is {len(turn)} characters long; questions are under {limit} characters"
            )
    return recent


def check_k(k, settings: Settings) -> int:
    k = settings.k if k is None else k
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= settings.max_k:
        raise BadQuestion(f"k must be a whole number from 1 to {settings.max_k}, not {k!r}")
    return k
