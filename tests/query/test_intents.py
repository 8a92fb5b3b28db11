"""What kind of reply a question asks for, and the notes on yes-or-no answers (no model)."""

from __future__ import annotations

import pytest

from articleqa.query.answer.intents import asks_for_more, is_yes_no, summary_target, unmentioned, yes_no_note
from articleqa.query.answer.summary import pick_article, summary
from articleqa.schema import Article, Chunk, Hit


@pytest.mark.parametrize(
    ("question", "target"),
    [
        ("Summarize the Apollo note", "Apollo"),
        ("summary of the bread recipe please", "bread recipe"),
        ("give me a summary of the article on bikes", "bikes"),
        ("key points of the FAQ", "FAQ"),
        ("sum it up", ""),
        ("tl;dr", ""),
        ("What is the summary statistic?", None),
        ("How do exosomes work?", None),
    ],
)
def test_a_request_for_a_summary_names_what_to_summarise(question, target):
    assert summary_target(question) == target


@pytest.mark.parametrize(
    "question", ["tell me more", "Tell me more.", "ok, tell me more", "go on", "what else?", "and?"]
)
def test_asking_for_more_is_recognised(question):
    assert asks_for_more(question)


@pytest.mark.parametrize("question", ["tell me more about retinol", "more than two weeks?", "What else is in them?"])
def test_a_question_of_its_own_is_not_a_request_for_more(question):
    assert not asks_for_more(question)


def test_yes_no_questions_open_with_an_auxiliary():
    assert is_yes_no("Are exosomes safe?") and is_yes_no("does it work on oily skin")
    assert not is_yes_no("What are exosomes?")


def _hit(article_id: str, text: str, score: float, rank: int = 1) -> Hit:
    article = Article(id=article_id, title=f"Title {article_id}", text=text, source=f"{article_id}.md")
    chunk = Chunk(article_id, 0, 0, len(text), text)
    return Hit(chunk, article, 1.0, rank, highlight_start=0, highlight_end=len(text), highlight_score=score)


def test_a_hedged_sentence_only_hints():
    note = yes_no_note([_hit("a", "Exosomes may help the scalp, but research is still early.", 0.8)])
    assert note.startswith("The articles only hint")


def test_two_articles_that_deny_each_other_differ_and_both_are_named():
    hits = [
        _hit("a", "Exosome serums are safe for sensitive skin.", 0.8),
        _hit("b", "They are not safe for sensitive skin.", 0.75, 2),
    ]
    note = yes_no_note(hits)
    assert note.startswith("The articles differ") and "Title a" in note and "Title b" in note


def test_a_plain_statement_needs_no_note():
    assert yes_no_note([_hit("a", "Exosome serums suit every skin type.", 0.8)]) == ""


def test_a_rare_word_the_articles_never_use_is_unmentioned_but_a_typo_is_not():
    known = lambda terms: {t for t in terms if t in {"exosom", "compar", "skin"}}  # noqa: E731
    near = lambda term: term in {"exosm"}  # noqa: E731
    words = lambda q: ["exosomes", "compare", "retinol", "retinol"]  # noqa: E731
    assert unmentioned("exosomes compare retinol", words, [0.9, 0.8, 0.42, 0.5], known, near, 0.5) == ["retinol"]
    # a whole-word (common) word, a well matched one, and a typo are not named
    assert unmentioned("q", lambda q: ["exosomes", "compare", "retinol"], [0.9, 0.8, 0.4], known, near, 0.5) == []
    assert unmentioned("q", words, [0.9, 0.8, 0.6, 0.7], known, near, 0.5) == []
    typo = lambda q: ["exosms", "exosms", "skin"]  # noqa: E731
    assert unmentioned("exosms skin", typo, [0.3, 0.3, 0.9], known, lambda t: True, 0.5) == []


def test_nothing_is_unmentioned_when_nothing_else_of_the_question_is_known():
    words = lambda q: ["lasagna", "lasagna"]  # noqa: E731
    assert unmentioned("lasagna recipe", words, [0.2, 0.2], lambda t: set(), lambda t: False, 0.5) == []


def test_a_summary_is_the_lead_and_each_section_opening_cited_in_order():
    text = "Intro one. Intro two. Intro three.\n\nFirst section starts. More.\n\nSecond starts. Again."
    article = Article(id="a", title="Bread", text=text, source="a.md")
    cuts = [(0, 34, ()), (36, 62, ("Dough",)), (64, len(text), ("Baking",))]
    chunks = [Chunk("a", i, a, b, text[a:b], h) for i, (a, b, h) in enumerate(cuts)]

    def sentences_of(chunk):
        spans, at = [], 0
        for part in chunk.text.split(". "):
            spans.append((at, at + len(part.rstrip(".")) + 1))
            at += len(part) + 2
        return spans

    answer = summary("Summarize the bread one", article, chunks, sentences_of)
    assert answer.found and [h.rank for h in answer.hits] == [1, 2, 3]
    assert answer.text.splitlines() == [
        "Intro one. Intro two. [1]",
        "Dough: First section starts. [2]",
        "Baking: Second starts. [3]",
    ]
    assert "Bread" in answer.note


def test_the_article_to_summarise_is_found_by_its_title_or_asked_for():
    articles = [Article(id=i, title=t, text="x", source=f"{i}.md") for i, t in [("a", "Apollo 1"), ("b", "Sourdough")]]
    assert pick_article("Apollo", articles, lambda t: [])[0].id == "a"
    article, message, _ = pick_article("", articles, lambda t: [])
    assert article is None and "“Apollo 1”" in message and "“Sourdough”" in message
