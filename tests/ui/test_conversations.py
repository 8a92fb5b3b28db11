"""The conversations a browser keeps: bounded, and whatever a browser sends back is checked."""

from __future__ import annotations

import json

from articleqa.ui import conversations as c


def turn(question: str, size: int = 10) -> list[dict]:
    return [{"role": "user", "content": question}, {"role": "assistant", "content": "x" * size}]


def test_a_conversation_is_recorded_under_its_first_question_and_comes_first():
    saved = c.record(c.empty(), turn("What are exosomes?"), ["What are exosomes?"], ["## What are exosomes?"])
    first = saved["current"]
    saved = c.record(
        saved, turn("What are exosomes?") + turn("and for hair?"), ["What are exosomes?", "and for hair?"], []
    )
    assert saved["current"] == first and len(saved["conversations"]) == 1
    saved = c.record({**saved, "current": None}, turn("Is it vegan?"), ["Is it vegan?"], [])
    assert [t for t, _ in c.choices(saved)][0].startswith("Is it vegan?")
    assert c.opened(saved, first)["asked"] == ["What are exosomes?", "and for hair?"]
    assert [x["id"] for x in c.forget(saved, first)["conversations"]] == [saved["current"]]


def test_the_store_stays_small_for_the_browser():
    saved = c.empty()
    for i in range(c.KEPT + 5):
        saved = c.record({**saved, "current": None}, turn(f"question {i}", 150_000), [f"question {i}"], [])
    assert len(saved["conversations"]) <= c.KEPT
    assert len(json.dumps(saved)) <= c.MAX_CHARS
    assert saved["conversations"][0]["title"] == f"question {c.KEPT + 4}"  # the newest kept


def test_anything_else_a_browser_sends_back_becomes_an_empty_or_cleaned_store():
    for junk in (None, 3, "x", [], {"conversations": "no"}):
        assert c.checked(junk) == c.empty()
    cleaned = c.checked({"current": "gone", "conversations": [{"id": "a", "messages": [1, {"role": "user"}]}, 5]})
    assert cleaned["current"] is None and cleaned["conversations"][0]["messages"] == [{"role": "user"}]


def test_the_export_is_one_markdown_document():
    assert c.markdown("Exosomes", ["## Q1\n\nA1\n", "## Q2\n\nA2\n"]).startswith("# Exosomes\n\n## Q1")
