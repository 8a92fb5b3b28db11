"""Answers users can trust, judged on the built-in corpus with the real model (issue #3).

The metric floors are regression guards set a little under the measured values
(docs/evaluation.md), not targets.
"""

from __future__ import annotations

import json

import pytest

import articleqa
from articleqa.errors import ArticleQAError
from articleqa.evaluate import evaluate_questions, load_questions
from articleqa.query.answer import is_follow_up
from conftest import DATA

pytestmark = pytest.mark.slow

OFFTOPIC = [json.loads(line) for line in (DATA / "offtopic.jsonl").read_text(encoding="utf-8").splitlines() if line]
FAR = [row for row in OFFTOPIC if row["kind"] == "far"]
ESOSOMI_ARTICLE = "003_bd4eef2063de7e9c"


@pytest.fixture(scope="module")
def lib(real_embedder):
    """The built-in library from its committed index; the model is loaded once per session."""
    return articleqa.open(embedder=real_embedder)


@pytest.fixture(scope="module")
def held_in(lib):
    return evaluate_questions(lib, load_questions(DATA / "questions.jsonl"), mode="hybrid")


# -- names and rare terms -----------------------------------------------------------------------


@pytest.mark.parametrize("term", ["PDRN", "SŌM", "Khalifian", "Sophia Moradi"])
def test_a_name_or_rare_term_finds_a_passage_containing_it_first(lib, term):
    top = lib.search(term)[0]
    contains = term.casefold() in top.text.casefold()
    assert contains, f"rank 1 is {top.chunk.id} (lexical rank {top.lexical_rank}): {top.text[:100]!r}"
    assert top.lexical_rank is not None and top.lexical_score > 0
    assert top.dense_rank is not None and top.dense_score is not None


def test_a_word_from_an_article_title_finds_that_article_first(lib):
    top = lib.search("Esosomi")[0]
    assert top.article.id == ESOSOMI_ARTICLE
    assert "Esosomi" in top.article.title
    assert top.lexical_rank == 1 and top.lexical_score > 0
    assert top.dense_rank is not None and top.dense_score is not None


# -- modes --------------------------------------------------------------------------------------


def test_every_mode_searches_and_reports_its_own_evidence(lib):
    question = "What are exosomes?"
    by_mode = {mode: lib.search(question, mode=mode) for mode in ("dense", "lexical", "hybrid")}
    assert all(len(hits) == 5 for hits in by_mode.values())
    assert all(h.lexical_rank is None and h.dense_rank is not None for h in by_mode["dense"])
    assert all(h.dense_rank is None and h.lexical_rank is not None for h in by_mode["lexical"])
    assert all(h.dense_rank is not None and h.lexical_rank is not None for h in by_mode["hybrid"])
    scores = {mode: [h.score for h in hits] for mode, hits in by_mode.items()}
    assert scores["dense"] != scores["lexical"] != scores["hybrid"] != scores["dense"]


def test_an_unknown_mode_is_refused(lib):
    with pytest.raises(ArticleQAError, match="unknown search mode 'semantic'"):
        lib.search("What are exosomes?", mode="semantic")
    with pytest.raises(ArticleQAError, match="unknown search mode 'semantic'"):
        lib.ask("What are exosomes?", mode="semantic")


# -- the held-in question set -------------------------------------------------------------------


def test_held_in_questions_find_their_answer_near_the_top(held_in):
    m = held_in.metrics
    assert m["hit@1"] >= 0.86, held_in.missed
    assert m["hit@5"] >= 0.93, held_in.missed
    assert m["mrr@10"] >= 0.90, held_in.missed


def test_held_in_questions_are_almost_never_refused(held_in):
    assert held_in.metrics["abstained"] <= 1


def test_blind_questions_find_their_answer_at_the_top(lib):
    """Written by someone who read only the articles, never the code or our own questions; the
    weights were chosen on questions.jsonl before this set was scored (docs/evaluation.md)."""
    report = evaluate_questions(lib, load_questions(DATA / "blind-questions.jsonl"), mode="hybrid")
    m = report.metrics
    assert m["hit@1"] >= 0.88, report.missed
    assert m["mrr@10"] >= 0.92, report.missed
    assert m["hit@5"] >= 0.98, report.missed
    assert m["abstained"] <= 1


BLIND_OFFTOPIC = [
    json.loads(line) for line in (DATA / "blind-offtopic.jsonl").read_text(encoding="utf-8").splitlines() if line
]


def test_blind_off_topic_questions_are_refused_near_misses_included(lib):
    answered = [row["question"] for row in BLIND_OFFTOPIC if lib.ask(row["question"]).found]
    far = {row["question"] for row in BLIND_OFFTOPIC if row["kind"] == "far"}
    assert not far & set(answered), answered
    assert len(answered) <= 1, answered


def test_passages_are_short_enough_to_read_at_a_glance(lib):
    lengths = [len(chunk.text.split()) for chunk in lib.index.all_chunks()]
    assert sum(lengths) / len(lengths) <= 120


# -- abstention ---------------------------------------------------------------------------------


@pytest.mark.parametrize("row", FAR, ids=[row["id"] for row in FAR])
def test_off_topic_questions_are_refused_with_the_nearest_passages(lib, row):
    answer = lib.ask(row["question"])
    assert answer.found is False, f"answered with confidence {answer.confidence}: {answer.text!r}"
    assert answer.text == ""
    assert "don't cover" in answer.reason
    assert answer.hits


def test_capital_of_france_is_not_answered(lib):
    answer = lib.ask("What is the capital of France?")
    assert not answer.found
    assert answer.reason


# -- follow-ups ---------------------------------------------------------------------------------


def test_follow_up_questions_find_their_answer_with_the_conversation(lib):
    report = evaluate_questions(lib, load_questions(DATA / "followups.jsonl"), mode="hybrid")
    assert report.metrics["hit@3"] >= 0.9, report.missed
    assert report.metrics["hit@5"] >= 0.94, report.missed


def test_and_for_hair_after_what_are_exosomes_finds_the_hair_passage(lib):
    answer = lib.ask("and for hair?", history=["What are exosomes?"])
    assert answer.query == "What are exosomes? and for hair?"
    texts = [h.text.lower() for h in answer.hits[:2]]
    assert any("hair" in t or "follicle" in t for t in texts), texts


def test_a_follow_up_that_adds_a_subject_is_answered_about_that_subject(lib):
    answer = lib.ask("and for hair?", history=["How long until I see results?"])
    assert answer.found and "hair" in answer.text.lower(), answer.text


# -- kinds of question: more, summaries, things never mentioned ----------------------------------


def test_tell_me_more_answers_from_the_next_passage_on_the_same_subject(lib):
    first = lib.ask("What are exosomes?")
    more = lib.ask("tell me more", history=["What are exosomes?"])
    again = lib.ask("go on", history=["What are exosomes?", "tell me more"])
    assert more.query == "What are exosomes?" and more.found and "What are exosomes?" in more.note
    chunks = [a.hits[0].chunk.id for a in (first, more, again)]
    assert len(set(chunks)) == 3, chunks
    assert more.text != first.text


def test_summarize_an_article_gives_its_lead_and_section_openings_cited(lib):
    answer = lib.ask("Summarize the Esosomi article")
    assert answer.found and {h.article.id for h in answer.hits} == {ESOSOMI_ARTICLE}
    assert answer.hits[0].chunk.ordinal == 0 and "Esosomi" in answer.note
    assert answer.text.splitlines()[0].endswith("[1]")


def test_a_thing_no_article_mentions_is_named_with_what_they_say_about_the_rest(lib):
    answer = lib.ask("How do exosomes compare to retinol?")
    assert not answer.found and answer.confidence == 0.0
    assert "never mention “retinol”" in answer.reason
    assert answer.hits and "exosome" in answer.hits[0].text.lower()


def test_a_misspelt_word_is_not_taken_for_one_the_articles_never_mention(lib):
    answer = lib.ask("how long until exosmoes show results?")
    assert "never mention" not in answer.reason


def test_a_follow_up_asked_first_is_still_answered_on_its_own(lib):
    answer = lib.ask("and for hair?")
    assert answer.query == "and for hair?"
    assert answer.hits


# -- the highlighted answer ---------------------------------------------------------------------


def test_how_long_until_results_is_answered_with_two_weeks(lib):
    answer = lib.ask("How long until I see results from exosome serum?")
    assert answer.found
    quoted = answer.text
    assert "two weeks" in quoted, f"answered with {quoted!r} from {answer.hits[0].chunk.id}"


def test_the_answer_is_the_highlighted_sentence_of_the_top_passage(lib):
    answer = lib.ask("How long until I see results from exosome serum?")
    top = answer.hits[0]
    assert 0 <= top.highlight_start < top.highlight_end <= len(top.text)
    assert top.text[top.highlight_start : top.highlight_end] == answer.text


# -- cleaned lists ------------------------------------------------------------------------------


def test_results_do_not_repeat_a_passage_and_span_several_articles(lib):
    hits = lib.search("What are exosomes?", k=5)
    assert len(hits) == 5
    for i, a in enumerate(hits):
        for b in hits[i + 1 :]:
            if a.article.id != b.article.id:
                continue
            shared = min(a.chunk.end, b.chunk.end) - max(a.chunk.start, b.chunk.start)
            shorter = min(a.chunk.end - a.chunk.start, b.chunk.end - b.chunk.start)
            assert shared <= 0.5 * shorter, (a.chunk.id, b.chunk.id)
    assert len({h.article.id for h in hits}) >= 3


@pytest.mark.parametrize("name", ["followup-decision.jsonl", "followup-decision-5.jsonl"])
def test_follow_up_or_standalone_is_decided_right_on_a_written_set(lib, name):
    # About 100 conversations over the built-in articles, written by someone who never saw the
    # code (set 5 also never seen by the rule's tuning; docs/evaluation.md): is the last question
    # a follow-up?
    items = [json.loads(line) for line in (DATA / name).read_text().splitlines()]
    right = sum(is_follow_up(i["question"], lib.index.lexical.common) == i["follow_up"] for i in items)
    assert right / len(items) >= 0.95, right


LAKES = """# Lake Constance

Lake Constance lies where Germany, Austria and Switzerland meet, on the course of the Rhine.

It consists of three bodies of water: the Obersee ("upper lake"), the Untersee ("lower lake"),
and a connecting stretch of the Rhine, the Seerhein. The Obersee is the larger of the two.

The Rhine leaves the Untersee at Stein am Rhein and flows west toward the falls at Schaffhausen.
Ferries cross the Obersee between Friedrichshafen and Romanshorn every hour.
"""


@pytest.fixture(scope="module")
def lakes(tmp_path_factory, real_embedder):
    folder = tmp_path_factory.mktemp("lakes")
    (folder / "lake-constance.md").write_text(LAKES, encoding="utf-8")
    lib = articleqa.Library.at(folder / "index", articleqa.Settings(), embedder=real_embedder)
    lib.add(folder / "lake-constance.md")
    return lib


@pytest.mark.parametrize(
    ("question", "meaning"),
    [("What does Obersee mean?", "upper lake"), ("What is the translation of Untersee?", "lower lake")],
)
def test_what_a_word_means_is_answered_by_the_sentence_that_translates_it(lakes, question, meaning):
    answer = lakes.ask(question)  # "mean", "translation" appear nowhere in the passage
    assert answer.found, answer.reason
    assert meaning in answer.text


def test_who_first_wrote_about_a_subject_is_not_a_question_about_the_article(lakes):
    answer = lakes.ask("Who first wrote about the ferries across the Obersee?")
    assert "does not say who wrote it" not in answer.reason
    assert lakes.ask("Who wrote the article on Lake Constance?").reason.endswith("does not say who wrote it.")


def test_the_duration_asked_for_is_marked_in_the_answer_and_the_api(lib):
    answer = lib.ask("How long until I see results?")
    top = answer.hits[0]
    assert answer.found and top.span == "two weeks" and top.span in answer.text
    assert answer.to_dict()["hits"][0]["span"]["text"] == "two weeks"
