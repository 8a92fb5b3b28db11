"""`python -m benchmarks heldout`: how a held-out set's answers are judged (no model)."""

from __future__ import annotations

from benchmarks.heldout import _holds, _rows


def test_an_answer_holds_any_one_of_the_strings_whatever_its_case_and_spacing():
    assert _holds("The dough needs  750 G of water.", ["700 g", "750 g"])
    assert not _holds("The dough needs water.", ["750 g"])


def test_a_set_file_that_is_missing_is_an_empty_set(tmp_path):
    (tmp_path / "questions.jsonl").write_text('{"question": "q", "answers": ["a"]}\n\n', encoding="utf-8")
    assert _rows(tmp_path / "questions.jsonl") == [{"question": "q", "answers": ["a"]}]
    assert _rows(tmp_path / "nearmiss.jsonl") == []
