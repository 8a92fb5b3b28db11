"""The web UI: reply rendering and upload checks (pure), then the real app over HTTP with gradio_client."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import socket
import threading
import time
from html import unescape

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import pytest  # noqa: E402

import servers  # noqa: E402
from articleqa.library import Library, seed_user_index  # noqa: E402
from articleqa.library import open as open_library  # noqa: E402
from articleqa.schema import Answer, Article, Chunk, Hit  # noqa: E402
from articleqa.settings import Settings  # noqa: E402
from articleqa.ui import limits, render  # noqa: E402
from articleqa.ui import server as ui  # noqa: E402
from articleqa.ui.app import build_app  # noqa: E402
from articleqa.ui.examples import example_questions  # noqa: E402
from conftest import ROOT  # noqa: E402
from waiting import wait_for  # noqa: E402

DOCS = ROOT / "docs" / "ui.md"
# Gradio's queue monitoring trips pandas deprecation warnings that are not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword):Warning")
HOSTILE = '<script>window.__pwned=1</script> <img src=x onerror="window.__pwned=1">'

# -- rendering, no model ------------------------------------------------------------------------


def make_hit(*, title="Bees", text=None, url=None, source="notes/bees.md", before="", after="", rank=1) -> Hit:
    passage = text or "Bees dance. The waggle dance points to food. Then they rest."
    article = Article(id="bees", title=title, text=before + passage + after, source=source, date="2024-05-01", url=url)
    chunk = Chunk("bees", 0, len(before), len(before) + len(passage), passage, headings=("Dances",))
    start = passage.find("The waggle")
    end = passage.find("food.") + len("food.") if start >= 0 else None
    return Hit(
        chunk,
        article,
        score=0.87,
        rank=rank,
        dense_rank=2,
        dense_score=0.61,
        lexical_rank=1,
        highlight_start=start if start >= 0 else None,
        highlight_end=end,
    )


def make_answer(hit: Hit, *, found=True, question="Where is the food?", query=None) -> Answer:
    return Answer(
        question=question,
        found=found,
        text=hit.highlight if found else "",
        hits=(hit,),
        confidence=0.7,
        query=query or question,
        reason="" if found else "the closest passage is not close enough",
    )


def test_reply_shows_answer_sentence_and_cited_passage():
    html = render.answer_html(make_answer(make_hit()))
    assert "<mark>The waggle dance points to food.</mark>" in html  # the answer, and the span in the passage
    assert html.count("<mark>The waggle dance points to food.</mark>") == 2
    for shown in ("Bees", "notes/bees.md", "2024-05-01", "Dances"):
        assert shown in html
    assert "<details" in html and "Show in the article" in html
    # Why in words; the numbers folded under "Scores"; confidence explained on hover.
    assert "Why: close in meaning to your question; same words: food." in html
    assert re.search(r"<summary>Scores</summary>.*score 0\.87 · meaning #2, similarity 0\.61 · keyword #1", html)
    assert 'class="aqa-confidence" title="How likely the answer shown holds what you asked' in html
    for jargon in ("dense #", "word match 0", "best sentence 0"):
        assert jargon not in html.split("<summary>Scores</summary>")[0]


def test_why_names_the_question_words_the_passage_shares_in_any_form():
    assert render.shared_words("Do exosomes help fragile hair?", "Exosome serums for thin hair") == ["exosomes", "hair"]
    assert render.shared_words("What is it?", "anything") == []


def test_headings_in_a_passage_show_as_headings_not_markdown():
    hit = make_hit(text="Bees dance.\n## How they find food\nThe waggle dance points to food. Then they rest.")
    html = render.answer_html(make_answer(hit))
    assert '<strong class="aqa-h aqa-h2">How they find food</strong>' in html
    assert "## How" not in html
    assert "<mark>The waggle dance points to food.</mark>" in html
    # A question is the user's words: a leading '#' in it stays as typed.
    assert "# not a heading" in render.question_html("# not a heading")


def test_a_pdf_passage_is_cited_with_its_page():
    article = Article(id="p", title="Paper", text="Page one text.\nPage two text.", source="p.pdf", pages=(0, 15))
    chunk = Chunk("p", 0, 15, 29, "Page two text.")
    hit = Hit(chunk, article, score=1.0, rank=1)
    assert hit.pages == (2, 2) and hit.page_label == "p. 2"
    assert '<span class="aqa-page">p. 2</span>' in render.hit_html(hit)
    assert hit.to_dict()["chunk"]["pages"] == [2, 2]
    across = Hit(Chunk("p", 0, 0, 29, article.text), article, score=1.0, rank=1)
    assert across.page_label == "pp. 1–2"


def test_hostile_article_and_question_are_escaped_everywhere():
    hit = make_hit(title=HOSTILE, text=f"Bees dance. {HOSTILE} The waggle dance points to food.", source=HOSTILE)
    answer = make_answer(hit, question=HOSTILE, query=HOSTILE + " food")
    pages = [
        render.answer_html(answer),
        render.answer_html(make_answer(hit, found=False)),
        render.question_html(HOSTILE),
        render.error_html(HOSTILE),
        render.library_html([hit.article], {"bees": 1}),
    ]
    for html in pages:
        assert "<script" not in html and "<img" not in html
        assert "&lt;script&gt;" in html or "&lt;img" in html


def test_replies_are_single_line_html_so_markdown_leaves_them_alone():
    hit = make_hit(text="Bees dance.\n\n# Not a heading\n\nThe waggle dance points to food. *not italic* $$x$$")
    for html in (render.answer_html(make_answer(hit)), render.answer_html(make_answer(hit, found=False))):
        assert "\n" not in html
        # The article's heading is shown as one by our renderer; no Markdown touches the rest.
        assert '<strong class="aqa-h aqa-h1">Not a heading</strong>' in html
        assert "*not italic*" in html and "$$x$$" in html


@pytest.mark.parametrize(
    "url, linked",
    [
        ("https://example.org/a?b=1&c=2", True),
        ("http://example.org/", True),
        ("javascript:alert(1)", False),
        ("JAVASCRIPT:alert(1)", False),
        ("data:text/html,<script>alert(1)</script>", False),
        ("file:///etc/passwd", False),
        ("https://exa mple.org", False),
        ("//example.org/x", False),
    ],
)
def test_only_http_links_become_anchors(url, linked):
    html = render.source_html(make_hit(url=url).article)
    assert ("<a href=" in html) is linked
    if linked:
        assert 'href="' + url.replace("&", "&amp;") + '"' in html and 'rel="noopener noreferrer nofollow"' in html
    else:
        assert "notes/bees.md" in html  # falls back to the file it came from


def test_context_view_shows_the_passage_inside_its_article():
    hit = make_hit(before="Intro words here. " * 60, after=" Closing words there." * 60)
    html = render.context_html(hit)
    assert html.count("Intro words here.") < 60 and "…" in html  # trimmed to the surroundings
    inside = re.search(r'<mark class="aqa-in-article">(.*?)</mark>', html).group(1)
    assert "Bees dance." in inside and "<strong>The waggle dance points to food.</strong>" in inside
    assert html.index("Intro words") < html.index("aqa-in-article") < html.index("Closing words")


def test_not_covered_reply_hides_nearest_passages_behind_a_disclosure():
    html = render.answer_html(make_answer(make_hit(), found=False))
    assert "Not covered by these articles." in html and "not close enough" in html
    assert html.index("Show nearest passages anyway") < html.index("The waggle dance")
    assert html.index("<details") < html.index("aqa-hit")


def test_follow_up_says_what_was_searched():
    html = render.answer_html(
        make_answer(make_hit(), question="and for hair?", query="What are exosomes? and for hair?")
    )
    assert "Searched as: “What are exosomes? and for hair?”" in html


def test_api_dicts_are_plain_json_in_one_shape():
    answer = make_answer(make_hit(url="https://example.org"))
    out = answer.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["found"] and out["text"] == "The waggle dance points to food."
    hit = out["hits"][0]
    assert {"rank", "score", "text", "article", "chunk", "highlight", "dense_rank", "lexical_rank"} <= hit.keys()
    assert hit["article"]["url"] == "https://example.org" and hit["chunk"]["headings"] == ["Dances"]
    assert hit["highlight"]["text"] == "The waggle dance points to food."


@pytest.mark.parametrize(
    "name, size, problem",
    [
        ("notes.md", 1000, None),
        ("page.HTML", 1000, None),
        ("report.pdf", 1000, None),
        ("paper.PDF", limits.MAX_UPLOAD_BYTES + 1, None),  # documents carry pictures: a higher limit
        ("book.epub", limits.MAX_DOCUMENT_UPLOAD_BYTES + 1, "too large"),
        ("slides.pptx", 1000, "unsupported file type '.pptx'"),
        ("noext", 1000, "unsupported file type '(none)'"),
        ("big.txt", limits.MAX_UPLOAD_BYTES + 1, "too large"),
        ("blank.txt", 0, "empty"),
    ],
)
def test_upload_checks_say_what_is_wrong(name, size, problem):
    message = limits.check_upload(name, size)
    assert message is None if problem is None else problem in message


def test_examples_are_question_headings_from_the_corpus():
    lib = open_library()
    examples = example_questions(lib)
    headings = {h for c in lib.index.all_chunks() for h in c.headings}
    assert 2 <= len(examples) <= 4 and all(q.endswith("?") and q in headings for q in examples)
    # Varied: the built-in articles ask "what are exosomes?" three ways; only one of them is offered.
    same_question = {"What in the World Are Exosomes?", "What Are Exosomes, Really?", "What are exosomes?"}
    assert len(same_question & set(examples)) == 1, examples
    assert len(examples) == len(set(examples)) == 4


def test_a_reply_holds_no_line_break_whatever_its_answer_spans():
    """The chat reads a reply as Markdown: a blank line would end its HTML, and the passages would
    fall into the hidden copy text (and vanish from view, and all go to the clipboard)."""
    passage = "Keep the dough warm.\n\nThe water:\n• 750 g in all\n• 700 g at first, the remaining 50 grams later."
    hit = make_hit(text=passage)
    start = passage.find("The water")
    hit = Hit(hit.chunk, hit.article, score=0.9, rank=1, highlight_start=start, highlight_end=len(passage))
    html = render.answer_html(make_answer(hit))
    assert "\n" not in html
    copied = re.search(r'<span class="aqa-copy-text">(.*?)</span>', html).group(1)
    assert html.index("</span>") < html.index('class="aqa-hit')  # the passages are outside it
    assert "750 g in all" in unescape(copied) and "Keep the dough warm" not in unescape(copied)
    assert unescape(copied).endswith("“Bees”, notes/bees.md, 2024-05-01")


def test_default_library_is_a_seeded_copy_of_the_builtin_one(tmp_path, monkeypatch):
    monkeypatch.setenv("ARTICLEQA_HOME", str(tmp_path))
    lib = ui.library_for(None, None)
    assert (tmp_path / "index" / "manifest.json").exists() and not lib.read_only
    assert {a.id for a in lib.articles()} == {a.id for a in open_library().articles()}


@pytest.mark.slow
def test_serve_command_syncs_paths_and_listens_on_loopback_only(tmp_path, monkeypatch, capsys):
    import gradio as gr

    from articleqa import cli

    launched: dict = {}
    launch = gr.Blocks.launch
    monkeypatch.setattr(gr.Blocks, "launch", lambda app, **kw: launched.update(kw) or launch(app, **kw))
    monkeypatch.setattr(ui, "wait_until_interrupted", lambda app: launched.update(app=app))
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "tea.md").write_text("# Green tea\n\nGreen tea is steamed or pan-fired soon after picking.\n")

    code = cli.main(["serve", str(tmp_path / "notes"), "--index-dir", str(tmp_path / "index"), "--port", "0"])
    out, err = capsys.readouterr()
    assert code == 0, err
    port = launched["server_port"]  # port 0 asked: the free one the server found
    assert launched["server_name"] == "127.0.0.1" and launched["share"] is False
    assert launched["max_file_size"] == limits.MAX_DOCUMENT_UPLOAD_BYTES
    assert f"1 article at http://127.0.0.1:{port}/" in out
    assert (tmp_path / "index" / "manifest.json").exists()  # the folder was indexed before serving
    assert "/ask" in launched["app"].blocks.get_api_info()["named_endpoints"]


@pytest.mark.slow
def test_serve_on_a_busy_port_is_a_clean_error(tmp_path, capsys):
    from articleqa import cli

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli.main(["serve", "--index-dir", str(tmp_path / "index"), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port" in err and "Traceback" not in err


# -- the running app, real model ----------------------------------------------------------------


@pytest.fixture(scope="module")
def running(tmp_path_factory, real_embedder):
    """The app over a writable copy of the built-in library, on a free loopback port."""
    folder = tmp_path_factory.mktemp("ui") / "index"
    seed_user_index(folder)
    lib = Library.at(folder, Settings(), embedder=real_embedder)
    app = servers.launch(build_app(lib))
    assert app.local_url.startswith("http://127.0.0.1:")
    try:
        yield app, lib
    finally:
        app.close()


@pytest.fixture(scope="module")
def server(running):
    app, lib = running
    return app.local_url, lib


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


@pytest.mark.slow
def test_documented_python_example_works(server):
    url, _ = server
    code = re.search(r"```python\n(.*?)```", DOCS.read_text(encoding="utf-8"), re.S).group(1)
    assert 'Client("http://127.0.0.1:7860/")' in code
    scope: dict = {}
    exec(code.replace("http://127.0.0.1:7860/", url), scope)  # noqa: S102 - our own docs
    answer = scope["answer"]
    assert answer["found"] and answer["text"] and len(answer["hits"]) == 3
    assert any("exosome" in h["text"].lower() for h in answer["hits"])
    assert scope["hits"]["hits"] and scope["hits"]["mode"] == "keyword"


@pytest.mark.slow
def test_the_readme_client_example_runs_as_printed(server, capsys):
    url, _ = server
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    code = next(b for b in blocks if "gradio_client" in b)
    assert 'Client("http://127.0.0.1:7860/")' in code
    exec(code.replace("http://127.0.0.1:7860/", url), {})  # noqa: S102 - our own README
    printed = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("Loaded as API")]
    assert len(printed) == 4 and "exosome" in printed[0].lower(), printed  # the answer, then 3 hits
    assert [line.split()[0] for line in printed[1:]] == ["1", "2", "3"], printed


@pytest.mark.slow
def test_api_reports_user_errors_as_messages(server):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="question is empty"):
        client(server[0]).predict(question="  ", k=3, mode="hybrid", api_name="/ask")
    with pytest.raises(AppError, match="mode"):
        client(server[0]).predict(question="What are exosomes?", k=3, mode="telepathy", api_name="/search")
    with pytest.raises(AppError, match="history must be a list"):
        client(server[0]).predict(question="What are exosomes?", history=123, api_name="/ask")
    with pytest.raises(AppError, match="characters long"):
        client(server[0]).predict(question="Why?", history=["x" * 2_000_000], api_name="/ask")
    # The chat endpoint answers a wrong k or question type in the conversation, not with a blank.
    with pytest.raises(AppError, match="Expected a `float`"):
        client(server[0]).predict("What are exosomes?", [], "abc", "hybrid", api_name="/chat")


@pytest.mark.slow
def test_a_follow_up_leans_on_the_last_answered_question_not_an_off_topic_one(server):
    visitor = client(server[0])
    _, chat = visitor.predict("What are exosomes?", [], 3, "hybrid", api_name="/chat")
    _, chat = visitor.predict("What is the capital of France?", chat, 3, "hybrid", api_name="/chat")
    assert "Not covered" in str(chat[-1])
    _, chat = visitor.predict("and for hair?", chat, 3, "hybrid", api_name="/chat")
    assert "Searched as: “What are exosomes? and for hair?”" in str(chat[-1])
    # A complete question after another stands alone, pronoun or not.
    _, chat = visitor.predict("What do exosomes carry inside them?", chat, 3, "hybrid", api_name="/chat")
    assert "Searched as" not in str(chat[-1])


@pytest.mark.slow
def test_conversations_are_kept_per_session(server):
    alice, bob = client(server[0]), client(server[0])
    _, chat = alice.predict("What are exosomes?", [], 3, "hybrid", api_name="/chat")
    _, chat = alice.predict("and for hair?", chat, 3, "hybrid", api_name="/chat")
    assert "Searched as: “What are exosomes? and for hair?”" in str(chat[-1])
    _, other = bob.predict("and for hair?", [], 3, "hybrid", api_name="/chat")
    assert len(other) == 2 and "Searched as" not in str(other[-1])  # Alice's question is not Bob's context


@pytest.mark.slow
def test_upload_is_indexed_cited_and_removable(server, tmp_path):
    from gradio_client import handle_file

    url, lib = server
    path = tmp_path / "axolotl.md"
    path.write_text("# Axolotl care\n\nAxolotls regrow lost limbs within a few weeks, even parts of the heart.\n")
    visitor = client(url)
    _, status, table, *_ = visitor.predict([handle_file(str(path))], api_name="/upload")
    assert "added “Axolotl care”" in status and "Axolotl care" in table
    answer = visitor.predict(question="Can axolotls regrow limbs?", k=3, mode="hybrid", api_name="/ask")
    assert answer["found"] and answer["hits"][0]["article"]["title"] == "Axolotl care"
    assert answer["hits"][0]["article"]["source"] == "upload:axolotl.md"
    status, table, *_ = visitor.predict("axolotl", api_name="/remove")
    assert "removed “Axolotl care”" in status and "Axolotl" not in table
    assert "axolotl" not in {a.id for a in lib.articles()}


@pytest.mark.slow
def test_questions_are_answered_while_an_upload_is_indexing(server, tmp_path, monkeypatch):
    from gradio_client import handle_file

    url, lib = server
    started, release = threading.Event(), threading.Event()
    add_upload = lib.add_upload

    def slow_add_upload(*args, **kwargs):
        started.set()
        release.wait(300)  # held until the question is answered (a safety net only: set in finally)
        return add_upload(*args, **kwargs)

    monkeypatch.setattr(lib, "add_upload", slow_add_upload)
    path = tmp_path / "slow.txt"
    path.write_text("Slow uploads\n\nThis article takes its time to be indexed.\n")
    upload = client(url).submit([handle_file(str(path))], api_name="/upload")
    try:
        assert started.wait(120), "the upload never reached the library"
        answer = client(url).submit(question="What are exosomes?", k=2, api_name="/ask").result(timeout=120)
        assert answer["found"] and not release.is_set()  # answered while the upload still held the write lane
    finally:
        release.set()
        try:
            status = upload.result(timeout=120)[1]
        finally:
            if "slow" in {a.id for a in lib.articles()}:  # the module's library, as the next test expects it
                lib.remove("slow")
    assert "added" in status


@pytest.mark.slow
def test_an_upload_in_progress_can_be_cancelled_and_leaves_the_library_as_it_was(server, tmp_path, monkeypatch):
    from gradio_client import handle_file

    url, lib = server
    before = {a.id for a in lib.articles()}
    embedding, cancelled = threading.Event(), threading.Event()
    add_upload = lib.add_upload

    def watched_add_upload(*args, progress, **kwargs):
        steps = []

        def step(fraction, message):
            # Split into passages, as the embedding begins (its second report), the change waits
            # for the visitor's Cancel: on a fast machine it would otherwise be done before the
            # Cancel arrives, on a slow one not yet begun.
            steps.append(message)
            if len(steps) == 2:
                embedding.set()
                cancelled.wait(300)  # a safety net only: set in finally
            progress(fraction, message)

        return add_upload(*args, progress=step, **kwargs)

    monkeypatch.setattr(lib, "add_upload", watched_add_upload)
    big = tmp_path / "otters.txt"
    big.write_text("\n\n".join(f"Otter fact {i}. Otters hold hands when they sleep in rivers." for i in range(3000)))
    visitor = client(url)
    job = visitor.submit([handle_file(str(big))], api_name="/upload")
    try:
        assert embedding.wait(120), "the upload never got to embedding"
        assert "Cancelling" in visitor.predict(api_name="/cancel")
    finally:
        cancelled.set()
    wait_for(lambda: _settled(job), 120, "the cancelled upload to end")
    with lib._write_lock:  # the cancelled change has let go of the library
        assert {a.id for a in lib.articles()} == before
    assert "otters" not in lib.index.articles
    # Cancel with nothing running says so and changes nothing.
    assert "Nothing is being added" in client(url).predict(api_name="/cancel")


@pytest.mark.slow
def test_a_runaway_upload_holds_up_no_other_and_cancel_stops_its_reading(running, tmp_path):
    from benchmarks.hostile import GOOD, tiny_text_pdf
    from gradio_client import handle_file

    app, lib = running
    url = app.local_url
    slow = tmp_path / "tiny.pdf"
    slow.write_bytes(tiny_text_pdf(pages=3000, lines=200))  # minutes of pdfium, within 60 s of budget
    good = tmp_path / "hedgehogs.md"
    good.write_text(GOOD, encoding="utf-8")
    visitor = client(url)
    job = visitor.submit([handle_file(str(slow))], api_name="/upload")
    try:
        wait_for(lambda: "tiny.pdf: reading page" in app.handlers.life.activity, 60, "the PDF's pages to be read")
        start = time.monotonic()
        status = client(url).predict([handle_file(str(good))], api_name="/upload")[1]
        assert "added “Hedgehogs”" in status and time.monotonic() - start < 30
        assert not job.done()  # still reading its pages in its worker
        stopped = time.monotonic()
        assert "Cancelling" in visitor.predict(api_name="/cancel")
        wait_for(lambda: _settled(job), 20, "the cancelled upload to end")
        assert time.monotonic() - stopped < 10
    finally:
        if "hedgehogs" in {a.id for a in lib.articles()}:
            lib.remove("hedgehogs")
    assert "tiny" not in lib.index.articles


def _settled(job) -> bool:
    try:
        return job.done()
    except Exception:
        return True


@pytest.mark.slow
def test_ctrl_c_during_an_upload_stops_cleanly_and_keeps_the_index(tmp_path, spawn):
    import signal
    import subprocess

    from gradio_client import handle_file

    uploads = tmp_path / "gradio"
    env = {**os.environ, "GRADIO_TEMP_DIR": str(uploads), "GRADIO_ANALYTICS_ENABLED": "False"}
    index = tmp_path / "index"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "tea.md").write_text("# Green tea\n\nGreen tea is steamed or pan-fired soon after picking.\n")
    # Each phase has a deadline of its own: a slow start leaves the upload its whole time.
    server, url, out = servers.serve([tmp_path / "notes", "--index-dir", index], env=env, spawn=spawn)
    big = tmp_path / "otters.txt"
    big.write_text("\n\n".join(f"Otter fact {i}. Otters hold hands when they sleep in rivers." for i in range(3000)))
    job = client(url).submit([handle_file(str(big))], api_name="/upload")

    def embedding() -> bool:
        progress = job.status().progress_data or []
        return any("embedding" in (p.desc or "") for p in progress)

    wait_for(embedding, 240, "the upload to be embedded", detail=out.tail)
    server.send_signal(signal.SIGINT)
    try:
        server.wait(60)  # the product stops within seconds (benchmarks/shutdown.py); this is a hang guard
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGUSR1)  # where its threads are, into its output
        out.closed.wait(5)
        raise AssertionError(f"still running 60 s after Ctrl+C; {out.tail(6000)}") from None
    out.closed.wait(30)
    assert server.returncode in (0, 130), out.tail()
    assert "Traceback" not in out.text and "terminate called" not in out.text, out.tail()
    assert "articleqa: stopped" in out.text
    assert list(uploads.iterdir()) == []  # the server's upload folder went with it
    lib = Library.load(index)
    assert "tea" in lib.index.articles  # intact; the upload is in it only if it was finished
    assert lib.search("green tea picking", k=1, mode="lexical")[0].article.id == "tea"


@pytest.mark.slow
def test_an_oversized_request_is_refused_at_the_door(server):
    import time

    import httpx

    url, _ = server
    long = ["What are exosomes?"] * 100_000
    for route, history in (
        ("call", ["x" * (limits.MAX_REQUEST_BYTES + 10)]),
        ("call", long),
        ("run", long),
        ("call/v2", long),
    ):
        start = time.perf_counter()
        body = (
            {"question": "Why?", "history": history} if route == "call/v2" else {"data": ["Why?", 5, "hybrid", history]}
        )
        r = httpx.post(f"{url}gradio_api/{route}/ask", json=body, timeout=60)
        elapsed = time.perf_counter() - start
        # Refused at the door (BodyLimit's 413 and its words), not read, not queued: a queued call
        # would get an event id or wait for its answer. The time only guards against a hang; it is
        # generous because a busy machine takes seconds for what an idle one does in milliseconds.
        assert r.status_code == 413 and "the limit for an ask or search call is" in r.json()["error"]
        assert "the last 20" in r.json()["error"]
        assert elapsed < 30, f"refused only after {elapsed:.1f} s"
    ok = client(url).predict("What are exosomes?", api_name="/ask")  # the server answers on
    assert ok["hits"]


@pytest.mark.slow
def test_a_bad_api_call_is_refused_at_the_door_with_what_to_send(server):
    import httpx

    url, _ = server
    cases = [
        (["Why?", 5, "hybrid", 123], "history must be a list"),
        (["why " * 5000, 5, "hybrid", []], "characters long"),
        (["Why?", 10**9, "hybrid", []], "k must be a whole number"),
        (["Why?", 5, "telepathy", []], "unknown search mode"),
        ([42, 5, "hybrid", []], "the question must be text"),
    ]
    for data, says in cases:
        r = httpx.post(f"{url}gradio_api/call/ask", json={"data": data}, timeout=30)
        assert r.status_code == 422 and says in r.json()["error"], (data[:1], r.text[:200])
    r = httpx.post(f"{url}gradio_api/call/search", json={"data": "not a list"}, timeout=30)
    assert r.status_code == 422 and "send JSON" in r.json()["error"]
    r = httpx.post(f"{url}gradio_api/call/ask", json={"data": ["What are exosomes?", 3, "keyword", []]}, timeout=30)
    assert r.status_code == 200 and r.json()["event_id"]  # a good call goes on to the queue


@pytest.mark.slow
def test_sessions_of_api_calls_are_forgotten_once_answered(running):
    import httpx

    from servers import api_call

    app, _ = running
    sessions = app.blocks.state_holder.session_data
    app.blocks.state_holder["a-visitor"]  # the session Gradio opens for a page's own events
    with httpx.Client(timeout=60) as http:
        calls = [http.post(f"{app.local_url}gradio_api/call/ask", json={"data": [q, 3, "hybrid", []]}) for q in QS]
        events = [r.json()["event_id"] for r in calls]
        for event in events:  # each raw call is a session of its own, named by its event
            with http.stream("GET", f"{app.local_url}gradio_api/call/ask/{event}") as stream:
                assert any(line.startswith("event: complete") for line in stream.iter_lines())
        assert set(events) <= set(sessions)
        # Just used: they wait for the next round. ("Just" is `idle` seconds, 2 by default; an
        # hour here, as answering the calls above can take longer than 2 s on a busy machine.)
        ui.forget_api_sessions(app, idle=3600)
        assert set(events) <= set(sessions)
        ui.forget_api_sessions(app, idle=0)
        assert not set(events) & set(sessions) and "a-visitor" in sessions
        ok, answer = api_call(http, app.local_url.rstrip("/"), "search", ["What are exosomes?", 3, "keyword"])
        assert ok and "exosome" in answer.lower()  # the next call opens a session of its own


@pytest.mark.slow
def test_answers_do_not_rebuild_gradios_event_summary(running, monkeypatch):
    """Gradio's queue would build a pandas DataFrame of its recent events after every answer (for
    a monitoring page we do not serve); the server keeps at most 100 events and never summarises."""
    import gradio.queueing
    import httpx

    from servers import api_call

    built = []
    original = gradio.queueing.Queue._get_df
    monkeypatch.setattr(
        gradio.queueing.Queue, "_get_df", staticmethod(lambda records: built.append(1) or original(records))
    )
    app, _ = running
    with httpx.Client(timeout=60) as http:
        for q in QS:
            ok, _ = api_call(http, app.local_url.rstrip("/"), "ask", [q, 3, "hybrid", []])
            assert ok
    # The summary would be built after the reply went out, before the queue lets go of the event.
    wait_for(lambda: not app.blocks._queue.event_ids_to_events, 60, "the queue to finish with the answered calls")
    assert not built
    assert app.blocks._queue.ANALYTICS_MAX_EVENTS == 100
    for page in ("monitoring", "monitoring/summary"):  # and no page shows the traffic
        assert httpx.get(f"{app.local_url}{page}", timeout=10).status_code == 403


QS = ("What are exosomes?", "Are exosomes safe?")


def test_an_answer_copies_and_exports_with_its_citation():
    answer = make_answer(make_hit())
    html = render.answer_html(answer)
    assert '<button class="aqa-copy" type="button">Copy answer</button>' in html
    assert (
        '<span class="aqa-copy-text">The waggle dance points to food. — “Bees”, notes/bees.md, 2024-05-01</span>'
        in html
    )
    md = render.answer_markdown(answer)
    assert md.startswith("## Where is the food?\n\n**The waggle dance points to food.**")
    assert "1. “Bees”, notes/bees.md, 2024-05-01\n\n> Bees dance. The waggle dance points to food." in md


def test_the_reader_shows_the_whole_article_with_the_passage_and_answer_marked():
    text = (
        "Intro line.\n\n## How they dance\n\nBees dance. The waggle dance points to food.\n\n• one\n• two\n\nThe end."
    )
    article = Article(id="bees", title="Bees <3", text=text, source="notes/bees.md", url="https://example.org/bees")
    start = text.index("Bees dance.")
    end = start + len("Bees dance. The waggle dance points to food.")
    answer = (text.index("The waggle"), end)
    html = render.reader_html(article, (start, end), answer)
    assert html.startswith('<article class="aqa-reader"><h1>Bees &lt;3</h1>')
    assert 'href="https://example.org/bees"' in html  # the source as a link
    assert "<h3>How they dance</h3>" in html and "##" not in html
    assert "<ul><li>one</li><li>two</li></ul>" in html
    assert '<p><span id="aqa-cited"></span><mark class="aqa-cited">Bees dance. </mark>' in html
    assert '<mark class="aqa-cited"><strong>The waggle dance points to food.</strong></mark>' in html
    assert "<p>Intro line.</p>" in html and "<p>The end.</p>" in html


def test_a_pdf_in_the_reader_shows_where_pages_begin():
    article = Article(id="p", title="Paper", text="Page one text.\nPage two text.", source="p.pdf", pages=(0, 15))
    html = render.reader_html(article)
    assert '<p><span class="aqa-pageno">p. 2</span>Page two text.</p>' in html


def test_the_read_link_names_the_article_and_the_spans():
    hit = make_hit(before="Intro. ")
    link = render.read_link(hit)
    assert link.startswith('<a class="aqa-read" href="#aqa-read:bees:7:')


def test_why_names_words_said_differently():
    html = render.answer_html(make_answer(make_hit()), [[("meal", "food")]])
    assert "Why: close in meaning to your question; “meal” ≈ “food”; same words: food." in html


def _through_door(
    path: str, body: bytes, *, length: bool = True, pieces: int = 1, check=lambda values: None, leaves: bool = False
):
    """What BodyLimit answers to one POST: (status or None when passed on, body the app read).
    `leaves`: the client disconnects after the first piece."""
    import asyncio

    seen = {}

    async def app(scope, receive, send):
        event = await receive()
        seen["body"] = event["body"]

    async def run():
        size = -(-len(body) // pieces) or 1
        events = [body[i : i + size] for i in range(0, len(body), size)] or [b""]
        queue = [{"type": "http.request", "body": b, "more_body": i < len(events) - 1} for i, b in enumerate(events)]
        if leaves:
            queue = [{**queue[0], "more_body": True}, {"type": "http.disconnect"}]
        sent = []

        async def receive():
            return queue.pop(0)

        async def send(message):
            sent.append(message)

        headers = [(b"content-length", str(len(body)).encode())] if length else []
        await limits.BodyLimit(app, check=check)(
            {"type": "http", "method": "POST", "path": path, "headers": headers}, receive, send
        )
        return sent

    sent = asyncio.run(run())
    status = sent[0]["status"] if sent else None
    return status, (json.loads(sent[1]["body"])["error"] if sent else seen.get("body"))


def test_an_api_call_with_a_whole_long_conversation_is_refused_unread():
    huge = json.dumps({"data": ["and then?", 5, "hybrid", ["What are exosomes?"] * 100_000]}).encode()
    for length, pieces in ((True, 1), (False, 50)):  # by its Content-Length, or counted as it comes
        status, said = _through_door("/gradio_api/call/ask", huge, length=length, pieces=pieces)
        assert status == 413 and "the limit for an ask or search call is 262,144" in said and "the last 20" in said
    fine = json.dumps({"data": ["and then?", 5, "hybrid", ["What are exosomes? " * 50] * 20]}).encode()
    assert _through_door("/gradio_api/call/ask", fine) == (None, fine)  # passed on, body replayed whole
    # The page's own requests carry the conversation shown: they keep the 4 MiB limit.
    page = b"x" * (limits.MAX_API_REQUEST_BYTES * 4)
    assert _through_door("/gradio_api/queue/join", page) == (None, page)
    for length in (True, False):
        status, said = _through_door(
            "/gradio_api/queue/join", b"x" * (limits.MAX_REQUEST_BYTES + 1), length=length, pieces=9
        )
        assert status == 413 and "the limit is 4,194,304" in said


def test_every_route_gradio_serves_the_api_at_is_bounded_and_checked():
    asked = []
    history = ["What are exosomes?"] * 100_000
    named = json.dumps({"question": "and then?", "history": history}).encode()
    listed = json.dumps({"data": ["and then?", 5, "hybrid", history]}).encode()
    for path, body in (
        ("/gradio_api/call/v2/ask", named),
        ("/gradio_api/run/ask", listed),
        ("/gradio_api/api/ask/", listed),
        ("/gradio_api/run/search", listed),
    ):
        status, said = _through_door(path, body, check=asked.append)
        assert status == 413 and "the limit for an ask or search call" in said, path
    assert not asked  # refused before any check
    small = json.dumps({"question": "Why?", "k": 3}).encode()
    assert _through_door("/gradio_api/call/v2/ask", small, check=asked.append) == (None, small)
    assert asked == [{"question": "Why?", "k": 3}]  # named arguments, checked as sent
    status, said = _through_door("/gradio_api/call/v2/search", b"[1, 2]", check=asked.append)
    assert status == 422 and said == 'send JSON: {"question": ..., "k": ..., "mode": ...}'
    status, said = _through_door("/gradio_api/run/ask", small, check=lambda a: "the question is empty")
    assert status == 422 and said == 'send JSON: {"data": [question, k, mode, history]}'
    status, said = _through_door("/gradio_api/run/ask", listed[:1000], length=False, pieces=4, leaves=True)
    assert (status, said) == (None, None)  # the client left while sending: nothing read, nothing answered


def test_the_fact_asked_for_is_marked_inside_the_answer_and_the_passage():
    text = "Bees dance. The waggle dance began in 1885 near Paris. Then they rest."
    hit = make_hit(text=text)
    start, end = text.find("The waggle"), text.find("Paris.") + len("Paris.")
    year = text.find("1885")
    hit = dataclasses.replace(hit, highlight_start=start, highlight_end=end, span_start=year, span_end=year + 4)
    html = render.answer_html(make_answer(hit, question="when did the dance begin"))
    marked = '<mark>The waggle dance began in <strong class="aqa-key">1885</strong> near Paris.</mark>'
    assert html.count(marked) == 2  # the answer, and the highlight in the cited passage
