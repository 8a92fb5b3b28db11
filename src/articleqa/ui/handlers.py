"""What the page's events and the API run: plain methods over a Library, callable without a server."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html import escape as html_escape
from pathlib import Path
from urllib.parse import unquote

import gradio as gr

from articleqa.errors import ArticleQAError, IndexCorrupt, Stopped, rebuild_command
from articleqa.ingest.files import FORMATS
from articleqa.ingest.web import is_url
from articleqa.library import HISTORY_TURNS, Library
from articleqa.runtime import stopping
from articleqa.settings import MODES, Settings
from articleqa.ui import conversations, render
from articleqa.ui.limits import check_upload

log = logging.getLogger("articleqa")
MAX_K = Settings().ui_max_k  # the chat's passages slider goes this far


@dataclass
class Lifecycle:
    """What stopping needs: the signal to stop, and the lock a change holds while it runs."""

    stopping: threading.Event = field(default_factory=threading.Event)
    writing: threading.Lock = field(default_factory=threading.Lock)
    # A visitor's "Cancel" for the change their session is running (session -> flag).
    cancels: dict[str, threading.Event] = field(default_factory=dict)
    # What the running change is doing, for every open library tab ("" when nothing runs).
    activity: str = ""
    # Sessions Gradio opened for calls of the ask and search API, forgotten by `forget_api_sessions`.
    api_sessions: set[str] = field(default_factory=set)
    guard: threading.Lock = field(default_factory=threading.Lock)

    def begin(self, request) -> tuple[str, threading.Event]:
        session = getattr(request, "session_hash", None) or "api"
        return session, self.cancels.setdefault(session, threading.Event())

    def called(self, request) -> None:
        """An API call of this request's session has answered: the session can go."""
        if getattr(request, "session_hash", None):
            self.answered({request.session_hash})

    def answered(self, sessions: set[str]) -> None:
        """Sessions to look at again in the next round."""
        with self.guard:
            self.api_sessions |= sessions

    def answered_api_sessions(self) -> set[str]:
        """The sessions of API calls that answered since the last time asked."""
        with self.guard:
            done, self.api_sessions = self.api_sessions, set()
        return done

    @contextmanager
    def write_turn(self) -> Iterator[None]:
        """Hold the one write lane; while waiting for it, a stop or a cancel still ends the wait."""
        while not self.writing.acquire(timeout=0.1):
            stopping.checkpoint()
        try:
            yield
        finally:
            self.writing.release()

    def check(self, flag: threading.Event, what: str) -> None:
        """Raise Stopped at a change's next step when the server stops or its visitor cancelled."""
        if self.stopping.is_set():
            raise Stopped(f"the server is stopping: {what} was not added")
        if flag.is_set():
            raise Stopped(f"cancelled: {what} was not added")


class Handlers:
    """The page's event handlers and the /ask and /search API over `lib`; `life` is what the
    server's stop() and forget_api_sessions() need. Each returns the new values of its outputs."""

    def __init__(self, lib: Library) -> None:
        self.lib = lib
        self.life = Lifecycle()
        self._downloads: Path | None = None  # one copy of each original file served, made on first use
        self.damage: str | None = None  # what check_library found wrong, if anything

    def check_library(self) -> None:
        """Read every file of the library against its checksum (the server does this once, in the
        background, as it starts): a damaged library says what is damaged instead of answering,
        since a flipped byte in its vectors or postings can change answers silently."""
        try:
            files, problems = self.lib.verify()
        except (ArticleQAError, OSError) as exc:
            files, problems = 0, [str(exc)]
        if problems:
            fix = rebuild_command(self.lib.index.folder)
            self.damage = (
                f"this library is damaged ({len(problems)} of {files} files fail their check; the first: "
                f"{problems[0]}): its answers could be wrong, so none are given. " + fix[:1].upper() + fix[1:]
            )
            log.error("%s", self.damage)

    def _refuse_if_damaged(self) -> None:
        if self.damage:
            raise IndexCorrupt(self.damage)

    def library_view(self):
        """The library tab's table, the choices of articles to remove, and the sidebar's summary."""
        counts = self.lib.passage_counts()
        articles = self.lib.articles()
        choices = [(f"{a.title} ({a.id})", a.id) for a in articles]
        summary = f"{len(articles)} articles · {sum(counts.values())} passages"
        return render.library_html(articles, counts), gr.update(choices=choices, value=None), summary

    # -- the chat ---------------------------------------------------------------------------------

    def chat(self, question: str, messages: list, asked: list[str], k: int, mode: str, turns: list[str] | None = None):
        # The chat endpoint is callable from outside the page too: every input is checked.
        messages = messages if isinstance(messages, list) else []
        asked = [a for a in asked if isinstance(a, str)][-HISTORY_TURNS:] if isinstance(asked, list) else []
        turns = [t for t in turns if isinstance(t, str)] if isinstance(turns, list) else []
        if isinstance(question, str) and not question.strip():
            gr.Warning("Type a question first: the box is empty.")
            return gr.update(), messages, asked, turns
        shown = question.strip() if isinstance(question, str) else repr(question)[:200]
        messages = [*messages, {"role": "user", "content": render.question_html(shown)}]
        try:
            self._refuse_if_damaged()
            answer = self.lib.ask(question, k=_whole(k), mode=mode, history=asked)
            similar = self.lib.similar_words(answer.query, answer.hits)
        except ArticleQAError as exc:
            reply = render.error_html(str(exc))
        else:
            reply = render.answer_html(answer, similar)
            # Only answered questions are context for a follow-up: "and for hair?" after an
            # off-topic question leans on the last topic the articles did answer.
            asked = [*asked, question] if answer.found else asked
            turns = [*turns, render.answer_markdown(answer)]
        return "", [*messages, {"role": "assistant", "content": reply}], asked, turns

    def pick_example(self, evt: gr.SelectData, messages: list, asked: list[str], k: int, mode: str, turns: list[str]):
        return self.chat(evt.value["text"], messages, asked, k, mode, turns)

    # -- conversations kept in the visitor's browser ----------------------------------------------

    def save(self, messages: list, asked: list[str], turns: list[str], saved):
        saved = conversations.record(saved, messages, asked, turns)
        return _shown_conversation(saved, conversations.opened(saved, saved["current"]))[3:]

    def reopen(self, saved, messages: list):
        saved = conversations.checked(saved)
        k_value = saved["k"] if isinstance(saved["k"], int) and 1 <= saved["k"] <= MAX_K else gr.update()
        mode_value = saved["mode"] if saved["mode"] in MODES else gr.update()
        if messages:  # asked before the saved conversation came back (a quick click): keep it, as a new one
            saved = {**saved, "current": None}
            listed = gr.update(choices=conversations.choices(saved), value=None)
            return gr.update(), gr.update(), gr.update(), saved, listed, gr.update(), k_value, mode_value
        current = conversations.opened(saved, saved["current"])
        return *_shown_conversation(saved, current), k_value, mode_value

    def open_past(self, conversation_id: str, saved):
        saved = conversations.checked(saved)
        current = conversations.opened(saved, conversation_id)
        return _shown_conversation({**saved, "current": current and current["id"]}, current)

    def start_new(self, saved):
        return _shown_conversation({**conversations.checked(saved), "current": None}, None)

    def forget_current(self, saved):
        saved = conversations.checked(saved)
        return _shown_conversation(conversations.forget(saved, saved["current"]), None)

    def keep_settings(self, k_value, mode_value, saved):
        return {**conversations.checked(saved), "k": _whole(k_value), "mode": mode_value}

    # -- the reader -------------------------------------------------------------------------------

    def open_reader(self, target: str):
        """The whole article a "Read the whole article" link names, at its passage."""
        try:
            _, quoted, *numbers = (target or "").split(":")
            start, end, hs, he = (int(n) for n in numbers)
            article = self.lib.article(unquote(quoted))
        except (ValueError, ArticleQAError):
            return gr.update(), gr.update(), gr.update()
        answer = (hs, he) if 0 <= hs < he else None
        html = render.reader_html(article, (start, end), answer)
        path = self.lib.original(article.id)
        download = gr.update(visible=False, value=None)
        if path is not None:
            copy = self._served_copy(article, path)
            download = gr.update(visible=True, value=str(copy), label=f"Download the original file ({path.name})")
        return html, gr.Tabs(selected="reader"), download

    def _served_copy(self, article, path: Path) -> Path:
        """The copy of an article's original file that the page serves: one per article and
        version however often it is opened (served from Gradio's temp folder, never from where
        the file lies), removed with the article."""
        if self._downloads is None:
            self._downloads = Path(tempfile.mkdtemp(prefix="originals-", dir=os.environ.get("GRADIO_TEMP_DIR") or None))
        folder = self._downloads / f"{_safe_name(article.id)}-{article.content_hash}"
        copy = folder / path.name
        if not copy.is_file():
            self._forget_copies(article.id)  # an older version's
            folder.mkdir(parents=True, exist_ok=True)
            partial = folder / f".{path.name}.part"
            shutil.copyfile(path, partial)
            partial.replace(copy)
        return copy

    def _forget_copies(self, article_id: str) -> None:
        if self._downloads is not None:
            for old in self._downloads.glob(f"{_safe_name(article_id)}-*"):
                shutil.rmtree(old, ignore_errors=True)

    # -- changes to the library: one at a time, each cancellable ----------------------------------

    def upload(self, files: list[str] | None, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        notes: list[str] = []
        files = files or []
        session, flag = self.life.begin(request)
        try:
            self._upload(files, notes, flag, progress)
        finally:
            self.life.cancels.pop(session, None)
            self.life.activity = ""
        table, choices, summary = self.library_view()
        return None, _notes_html(notes or [f"Choose {FORMATS} files to add."]), table, choices, summary

    def _upload(self, files: list[str], notes: list[str], flag: threading.Event, progress) -> None:
        life = self.life
        for i, tmp in enumerate(files):
            # Gradio saved the upload under its own temp folder; the user's file name only
            # chooses the format and the article id.
            name = Path(tmp).name
            problem = check_upload(name, os.path.getsize(tmp))
            if problem:
                notes.append(f"✗ {problem}")
                continue

            def step(fraction: float, message: str, i: int = i, name: str = name) -> None:
                life.check(flag, name)
                life.activity = f"Adding {name}: {message} ({(i + fraction) / len(files):.0%})"
                progress((i + fraction) / len(files), desc=f"{name}: {message}")

            try:
                with stopping.stop_points(lambda name=name: life.check(flag, name)):
                    # Read outside the write lane, in a worker within its budget: a runaway file
                    # holds up no one else's upload, and Cancel kills it.
                    step(0.0, "reading")
                    data = Path(tmp).read_bytes()
                    article = self.lib.read_upload(data, filename=name, progress=step)
                    with life.write_turn():
                        step(0.0, "splitting into passages")
                        article = self.lib.add_upload(article, data, progress=step)
            except ArticleQAError as exc:
                notes.append(f"✗ {name}: {exc}")
            else:
                notes.append(f"✓ added “{article.title}” from {name}")
            if flag.is_set():
                notes.extend(f"✗ cancelled: {Path(rest).name} was not added" for rest in files[i + 1 :])
                break

    def add_link(self, url: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        url = url.strip() if isinstance(url, str) else ""
        if not is_url(url):
            table, choices, summary = self.library_view()
            note = "✗ Paste a link that starts with http:// or https://." if url else "Paste a link to add."
            return gr.update(), _notes_html([note]), table, choices, summary

        life = self.life
        session, flag = life.begin(request)

        def step(fraction: float, message: str) -> None:
            life.check(flag, url)
            life.activity = f"Adding {url}: {message} ({fraction:.0%})"
            progress(fraction, desc=message)

        try:
            with stopping.stop_points(lambda: life.check(flag, url)):
                step(0.0, f"fetching {url}")
                article = self.lib.read_link(url, progress=step)
                with life.write_turn():
                    change = self.lib.add(article, progress=step)
        except ArticleQAError as exc:
            note, value = f"✗ {exc}", gr.update()
        else:
            note, value = self._added(url, change)
        finally:
            life.cancels.pop(session, None)
            life.activity = ""
        table, choices, summary = self.library_view()
        return value, _notes_html([note]), table, choices, summary

    def _added(self, url: str, change) -> tuple[str, object]:
        """What adding a link did, and the link box's new value ("": done with it)."""
        article_id = (change.added or change.replaced or change.unchanged or [""])[0]
        title = self.lib.article(article_id).title if article_id else url
        if change.skipped:
            return f"✗ {url}: {change.skipped[0][2]}", gr.update()
        if change.added or change.replaced:
            return f"✓ {'added' if change.added else 'updated'} “{title}” from {url}", ""
        return f"✓ “{title}” is up to date with {url}", ""

    def cancel(self, request: gr.Request):
        """Stop this visitor's upload or link at its next step: the library stays as it was."""
        flag = self.life.cancels.get(getattr(request, "session_hash", None) or "api")
        if flag is None:
            return _notes_html(["Nothing is being added."])
        flag.set()
        return _notes_html(["Cancelling: the library stays as it was."])

    def ask_remove(self, article_id: str | None):
        """The first click on Remove only asks: which article, how much goes."""
        if not article_id:
            return _notes_html(["Choose an article to remove."]), gr.update(visible=False)
        try:
            article = self.lib.article(article_id)
        except ArticleQAError as exc:
            return _notes_html([f"✗ {exc}"]), gr.update(visible=False)
        n = self.lib.passage_counts().get(article_id, 0)
        question = f"Remove “{article.title}” and its {n} passage{'s' * (n != 1)} from the library?"
        return _notes_html([question]), gr.update(visible=True)

    def remove(self, article_id: str | None):
        removed = None
        if not article_id:
            note = "Choose an article to remove."
        else:
            try:
                removed = self.lib.article(article_id)
                with self.life.writing:
                    self.lib.remove(article_id)
                self._forget_copies(article_id)
                note = f"✓ removed “{removed.title}”"
            except ArticleQAError as exc:
                note, removed = f"✗ {exc}", None
        hide, undo = gr.update(visible=False), gr.update(visible=removed is not None)
        return _notes_html([note]), *self.library_view(), hide, undo, removed

    def restore(self, article):
        """Undo a removal: the article comes back (embedded again)."""
        if article is None:
            return _notes_html(["Nothing to undo."]), *self.library_view(), gr.update(visible=False), None
        try:
            with self.life.writing:
                self.lib.add(article)
            note = f"✓ restored “{article.title}”"
        except ArticleQAError as exc:
            note = f"✗ {exc}"
        return _notes_html([note]), *self.library_view(), gr.update(visible=False), None

    def keep(self):
        return _notes_html(["Nothing was removed."]), gr.update(visible=False)

    def activity(self, was_busy: bool):
        """What another tab's change is doing; the list is refreshed when it ends."""
        now = self.life.activity
        note = f'<p class="aqa-note aqa-activity">⏳ {html_escape(now)}</p>' if now else ""
        view = self.library_view() if (was_busy and not now) else (gr.update(),) * 3
        return note, *view, bool(now)

    # -- the API ----------------------------------------------------------------------------------

    def api_ask(
        self,
        question: str,
        k: int = 5,
        mode: str = "hybrid",
        history: list[str] | None = None,
        request: gr.Request = None,
    ) -> dict:
        """Answer a question from the articles: the answer sentence and the cited passages."""
        try:
            self._refuse_if_damaged()
            return self.lib.ask(question, k=k, mode=mode, history=history or []).to_dict()
        except ArticleQAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        finally:
            self.life.called(request)

    def api_search(self, question: str, k: int = 5, mode: str = "hybrid", request: gr.Request = None) -> dict:
        """The passages that best match a question, best first."""
        try:
            self._refuse_if_damaged()
            mode = self.lib.check(question, k=k, mode=mode).mode  # the mode's one name ("lexical" -> "keyword")
            hits = self.lib.search(question, k=k, mode=mode)
        except ArticleQAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        finally:
            self.life.called(request)
        return {"question": question, "mode": mode, "hits": [h.to_dict() for h in hits]}

    def check(self, arguments: dict) -> str | None:
        """Why an API call would be refused (its arguments as sent), or None: for BodyLimit at the door."""
        try:
            self.lib.check(
                arguments.get("question"),
                k=arguments.get("k", 5),
                mode=arguments.get("mode", "hybrid"),
                history=arguments.get("history") or (),
            )
        except ArticleQAError as exc:
            return str(exc)
        return None


def _shown_conversation(saved: dict, conversation: dict | None):
    """The chat, its context and the sidebar's list for `conversation` (None: a new one)."""
    c = conversation or {"messages": [], "asked": [], "turns": [], "title": ""}
    listed = gr.update(choices=conversations.choices(saved), value=conversation and conversation["id"])
    return c["messages"], c["asked"], c["turns"], saved, listed, export_file(c["title"], c["turns"])


def export_file(title: str, turns: list[str]) -> str | None:
    """The conversation as a Markdown file for the export button (in Gradio's temp folder)."""
    if not turns:
        return None
    folder = tempfile.mkdtemp(prefix="export-", dir=os.environ.get("GRADIO_TEMP_DIR") or None)
    path = Path(folder) / "conversation.md"
    path.write_text(conversations.markdown(title or "Conversation", turns), encoding="utf-8")
    return str(path)


def _whole(k) -> int:
    """The chat's k as a whole number; anything else is refused by `ask` with what to send."""
    try:
        return int(k) if isinstance(k, (int, float, str)) and float(k) == int(float(k)) else k
    except (TypeError, ValueError, OverflowError):
        return k


def _notes_html(notes: list[str]) -> str:
    return "".join(f'<p class="aqa-note">{render.text_html(n)}</p>' for n in notes)


def _safe_name(article_id: str) -> str:
    """An article id as one file name ("notes/bees" -> "notes_bees"), its hash keeping it unique."""
    import hashlib
    import re

    digest = hashlib.sha256(article_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return re.sub(r"[^\w.-]+", "_", article_id)[:80] + "-" + digest
