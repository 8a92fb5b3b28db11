"""The UI's event handlers called as plain methods: no server, the fake embedder."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import SimpleNamespace

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402
import pytest  # noqa: E402

from articleqa.ui.handlers import Handlers  # noqa: E402

UNCHANGED = gr.update()


def visitor(session: str = "visitor-1"):
    """What Gradio passes as gr.Request: only the session is read."""
    return SimpleNamespace(session_hash=session)


def no_progress(*args, **kwargs) -> None:
    pass


@pytest.fixture
def handlers(built) -> Handlers:
    return Handlers(built)


def test_an_empty_question_asks_for_one_and_changes_nothing(handlers):
    messages = [{"role": "user", "content": "earlier"}]
    with pytest.warns(UserWarning, match="Type a question first"):
        box, shown, asked, turns = handlers.chat("   ", messages, ["earlier?"], 3, "hybrid", [])
    assert box == UNCHANGED  # the box keeps what was typed
    assert (shown, asked, turns) == (messages, ["earlier?"], [])


def test_a_question_gets_a_reply_with_its_passages(handlers):
    box, messages, asked, turns = handlers.chat("How is green tea made?", [], [], 3, "hybrid", [])
    assert box == ""
    assert [m["role"] for m in messages] == ["user", "assistant"]
    assert "How is green tea made?" in messages[0]["content"]
    assert 'class="aqa-reply' in messages[1]["content"] and "aqa-hit" in messages[1]["content"]
    # A bad k is answered in the conversation, not as a crash.
    _, messages, _, _ = handlers.chat("How is green tea made?", [], [], "abc", "hybrid", [])
    assert "Cannot answer that." in messages[-1]["content"]


def test_cancel_with_nothing_running_says_so(handlers):
    assert "Nothing is being added." in handlers.cancel(visitor())


def test_open_reader_ignores_a_bad_target(handlers):
    for target in ("", "nonsense", "aqa-read:green-tea:1:2", "aqa-read:no-such-article:0:10:-1:-1"):
        assert handlers.open_reader(target) == (UNCHANGED, UNCHANGED, UNCHANGED), target


def test_open_reader_shows_the_article_at_its_passage_and_offers_a_copy_of_its_file(
    handlers, built, tmp_path, monkeypatch
):
    (tmp_path / "gradio").mkdir()  # Gradio makes its folder when it starts
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    article = built.articles()[0]
    html, tabs, download = handlers.open_reader(f"aqa-read:{article.id}:0:20:-1:-1")
    assert f"<h1>{article.title}</h1>" in html and 'id="aqa-cited"' in html
    assert tabs.selected == "reader"
    copy = Path(download["value"])
    assert download["visible"] is True and copy.name in download["label"]
    assert copy.is_relative_to(tmp_path / "gradio")  # served from Gradio's folder, never from where it lies
    assert copy.read_bytes() == built.original(article.id).read_bytes()


def test_opening_an_article_many_times_keeps_one_copy_of_its_file_removed_with_it(
    handlers, built, tmp_path, monkeypatch
):
    (tmp_path / "gradio").mkdir()
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    article = built.articles()[0]
    copies = {handlers.open_reader(f"aqa-read:{article.id}:0:20:-1:-1")[2]["value"] for _ in range(30)}
    assert len(copies) == 1
    files = [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]
    assert [p.name for p in files] == [Path(built.original(article.id)).name]
    handlers.remove(article.id)
    assert not [p for p in (tmp_path / "gradio").rglob("*") if p.is_file()]


def test_an_upload_adds_good_files_and_says_why_others_are_refused(handlers, built, tmp_path):
    good, bad = tmp_path / "otters.md", tmp_path / "slides.pptx"
    good.write_text("# Otters\n\nSea otters hold hands while they sleep so they do not drift apart.\n")
    bad.write_bytes(b"not a supported format")
    files, notes, table, _, summary = handlers.upload([str(good), str(bad)], visitor(), no_progress)
    assert files is None
    assert "✓ added “Otters” from otters.md" in notes
    assert "✗ slides.pptx: unsupported file type &#x27;.pptx&#x27;" in notes  # escaped: it is HTML
    assert "Otters" in table and summary.startswith(f"{len(built.articles())} articles")
    assert not handlers.life.cancels and handlers.life.activity == ""  # nothing left behind


def test_an_upload_while_the_server_stops_leaves_the_library_as_it_was(handlers, built, tmp_path):
    before = {a.id for a in built.articles()}
    note = tmp_path / "otters.md"
    note.write_text("# Otters\n\nSea otters hold hands while they sleep.\n")
    handlers.life.stopping.set()
    _, notes, *_ = handlers.upload([str(note)], visitor(), no_progress)
    assert "the server is stopping: otters.md was not added" in notes
    assert {a.id for a in built.articles()} == before


def test_a_cancelled_upload_adds_nothing(handlers, built, tmp_path):
    before = {a.id for a in built.articles()}
    files = [tmp_path / "a.md", tmp_path / "b.md"]
    for f in files:
        f.write_text("# A note\n\nSomething worth keeping.\n")
    handlers.life.cancels["visitor-1"] = threading.Event()
    handlers.life.cancels["visitor-1"].set()  # Cancel pressed before the first step
    _, notes, *_ = handlers.upload([str(f) for f in files], visitor(), no_progress)
    assert "cancelled: a.md was not added" in notes and "cancelled: b.md was not added" in notes
    assert {a.id for a in built.articles()} == before


def test_remove_asks_first_then_removes_and_undo_restores(handlers, built):
    article = built.articles()[0]
    question, confirm = handlers.ask_remove(article.id)
    assert f"Remove “{article.title}”" in question and confirm["visible"] is True
    note, _, _, _, hide, undo, removed = handlers.remove(article.id)
    assert "✓ removed" in note and hide["visible"] is False and undo["visible"] is True
    assert article.id not in {a.id for a in built.articles()}
    note, *_ = handlers.restore(removed)
    assert "✓ restored" in note and article.id in {a.id for a in built.articles()}
    assert "Nothing to undo." in handlers.restore(None)[0]


def test_the_api_check_says_why_a_call_would_be_refused(handlers):
    assert handlers.check({"question": "How is green tea made?", "k": 3}) is None
    assert "question is empty" in handlers.check({"question": "  "})
    assert "unknown search mode" in handlers.check({"question": "Why?", "mode": "telepathy"})
    with pytest.raises(gr.Error, match="mode"):
        handlers.api_search("Why?", mode="telepathy")
    found = handlers.api_search("green tea", k=2, mode="lexical")
    assert found["mode"] == "keyword" and len(found["hits"]) <= 2


def test_a_damaged_library_says_so_instead_of_answering(built):
    whole = Handlers(built)
    whole.check_library()
    assert whole.damage is None
    vectors = next(p for p in next((built.index_dir / "segments").iterdir()).iterdir() if "postings" in p.name)
    data = bytearray(vectors.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: answers could change silently, only the checksum tells
    vectors.write_bytes(bytes(data))
    handlers = Handlers(built)
    handlers.check_library()  # what the server runs in the background as it starts
    _, messages, asked, _ = handlers.chat("How is green tea made?", [], [], 3, "hybrid", [])
    reply = messages[-1]["content"]
    assert "this library is damaged" in reply and vectors.name in reply and "articleqa build --rebuild" in reply
    assert asked == []
    for call in (handlers.api_ask, handlers.api_search):
        with pytest.raises(gr.Error, match="this library is damaged"):
            call("How is green tea made?", request=visitor())
