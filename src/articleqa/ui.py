"""The chat web UI (`articleqa serve`): a thin Gradio app over a Library; rendering lives in render.py."""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import secrets
import shutil
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from html import escape as html_escape
from pathlib import Path
from urllib.parse import unquote

from starlette.middleware import Middleware

from . import conversations, render, stopping
from .documents import SUFFIXES as DOCUMENT_SUFFIXES
from .errors import ArticleQAError, Stopped
from .fetch import is_url
from .ingest import FORMATS, SUPPORTED
from .library import HISTORY_TURNS, Library, seed_user_index, user_index_dir
from .library import open as open_library
from .memory import give_back, large_blocks_apart, share_arenas
from .settings import MODES, Settings, data_home

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported: no phoning home
# Gradio's queue rebuilds a pandas DataFrame of its last 10,000 events after every event, for a
# monitoring page we do not serve (launch turns it off): under 50 clients that cost 7-10 % of the
# answers and left 35-80 MB after the run in pyarrow's allocator (docs/reliability.md). Keep 100
# events, summarise never.
os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "100")
os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**62))
import gradio as gr  # noqa: E402

log = logging.getLogger("articleqa")

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
MAX_DOCUMENT_UPLOAD_BYTES = 50 * 1024 * 1024  # PDFs, DOCX and EPUB carry pictures besides text
# Any other request (a question, a chat turn with its conversation) is refused at the door above
# this size, before it is read or queued: 4 MiB is a conversation of about 250 replies.
MAX_REQUEST_BYTES = 4 * 1024 * 1024
# A call of the ask or search API carries one question and the earlier ones (only the last 20 are
# read): 256 KiB holds that many times over. Above it the call is refused unread, so a client
# sending a whole 100,000-turn conversation costs the server nothing (it cost 2.7 s a call,
# parsing 100,000 strings twice).
MAX_API_REQUEST_BYTES = 256 * 1024
SESSIONS = 500
UPLOAD_TYPES = SUPPORTED
MAX_K = 10
# Questions run side by side (the library is read through immutable snapshots); changes queue up
# one at a time in their own group, so an upload being embedded never holds up a question.
READ_LIMIT = 8


def serve(
    paths: list[str] | None = None,
    index_dir: str | None = None,
    host: str = "127.0.0.1",
    port: int = 7860,
    store: str | None = None,
    allow_private_urls: bool = False,
) -> None:
    """Open the library and serve the UI until interrupted (what `articleqa serve` runs).
    `allow_private_urls` lets visitors add links to loopback and private addresses."""
    large_blocks_apart()  # a server's memory returns after bursts (memory.py)
    share_arenas()
    lib = library_for(paths, index_dir, store)
    if allow_private_urls:
        lib.settings = replace(lib.settings, allow_private_urls=True)
    try:
        app = launch(build_app(lib), host=host, port=port)
    except OSError as exc:
        raise ArticleQAError(f"cannot listen on {host}:{port} ({exc}): choose another port with --port") from None
    try:
        # Listening first, then the model, so the page is up at once; the first question is not
        # slowed (on a machine's first run this writes the ONNX copy of the model).
        lib.embedder.encode_query("warm up")
        n = len(lib.index.articles)
        print(f"articleqa: {n} article{'s' * (n != 1)} at {app.local_url} (Ctrl+C to stop)", flush=True)
        wait_until_interrupted(app)
    except KeyboardInterrupt:
        pass  # Ctrl+C while warming up: stop all the same
    finally:
        done = stop(app)
    if done:
        print("articleqa: stopped", flush=True)
    else:  # a step that does not reach its next check in time (a long parse, a merge): dropped
        stopping.abandon("articleqa: stopped (the change in progress was abandoned; the index is as it was)")


def wait_until_interrupted(app: gr.Blocks) -> None:
    """Until Ctrl+C (or the server stops by itself); meanwhile the memory a burst of requests
    freed goes back to the system every half minute."""
    ticks = 0
    try:
        while app.is_running:
            time.sleep(0.1)
            ticks += 1
            if ticks % 10 == 0:
                forget_api_sessions(app)
            if ticks % 300 == 0:
                give_back()
    except KeyboardInterrupt:
        pass


def forget_api_sessions(app: gr.Blocks, idle: float = 2.0) -> None:
    """Forget the sessions Gradio opened for calls of the ask and search API that have answered.
    Gradio keeps every session (each with its own copy of the page's settings, about 0.3 MB)
    until 500 newer ones push it out; an API call needs none once it has answered. Forgotten
    within seconds, the few alive at a time reuse each other's memory: kept, 50 clients held
    about 150 MB that never went back to the system. A session used in the last `idle` seconds
    (a client calling again on it) waits for the next round; one holding a chat's state stays."""
    life: Lifecycle = app.articleqa_life
    done = life.answered_api_sessions()
    holder = getattr(app, "state_holder", None)
    if holder is None or not done:
        return
    now, later = datetime.now(), set()
    with holder.lock:
        for session in done:
            state = holder.session_data.get(session)
            if state is None or getattr(state, "state_data", None):
                continue
            used = holder.time_last_used.get(session)
            if used is not None and (now - used).total_seconds() < idle:
                later.add(session)
                continue
            holder.session_data.pop(session, None)
            holder.time_last_used.pop(session, None)
    life.answered(later)


def stop(app: gr.Blocks, *, wait: float = 2.0) -> bool:
    """Stop promptly: a change being written is left out at its next check (the index stays as it
    was; nothing half-written is published), then the server closes. False if the change was
    still running after `wait` seconds: the caller abandons it (stopping.abandon)."""
    life: Lifecycle = app.articleqa_life
    life.stopping.set()
    done = life.writing.acquire(timeout=wait)
    if done:
        life.writing.release()
    server = getattr(app, "server", None)
    if server is not None:
        # Uvicorn would wait for every open connection (a page's event stream, a client waiting
        # for its upload's answer) to end by itself; Gradio waits 5 s for it. Half a second.
        server.config.timeout_graceful_shutdown = 0.5
        logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)  # "cancelled N tasks": meant
    app.close()
    return done


def library_for(paths: list[str] | None, index_dir: str | None, store: str | None = None) -> Library:
    """The library to serve: the given paths synced into the index, else the index as it is;
    by default the user's own library, started as a copy of the built-in one (not re-embedded).
    `store`: a Milvus server for the passage vectors (see articleqa.open)."""
    if paths:
        lib = open_library(paths, index_dir=index_dir, store=store)
        for s in lib.skipped:
            log.warning("skipped %s: %s", s.path, s.reason)
        return lib
    folder = Path(index_dir) if index_dir else user_index_dir()
    if not index_dir:
        seed_user_index(folder)
    if (folder / "manifest.json").exists():
        return Library.load(folder, store=store)  # with the model it was built with
    return Library.at(folder, Settings().on_store(store))


def launch(app: gr.Blocks, *, host: str = "127.0.0.1", port: int = 7860) -> gr.Blocks:
    """Start the server in the background on `host` only (loopback by default); never a share link.
    Port 0: any free port (app.local_url names it)."""
    if port:
        return _launch(app, host, port)
    for attempt in range(5):
        # Gradio cannot bind port 0 itself (it names the requested port in the address it checks):
        # a port free a moment ago is tried, and another if someone took it meanwhile.
        with socket.socket() as probe:
            probe.bind((host, 0))
            free = probe.getsockname()[1]
        try:
            return _launch(app, host, free)
        except OSError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


def _launch(app: gr.Blocks, host: str, port: int) -> gr.Blocks:
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        # A client that sends a wrong type (k="abc" to the chat endpoint) hears what Gradio
        # expected instead of an empty error; our own refusals are gr.Error either way.
        show_error=True,
        max_file_size=MAX_DOCUMENT_UPLOAD_BYTES,
        app_kwargs={"middleware": [Middleware(BodyLimit, check=getattr(app, "articleqa_check", None))]},
        # Gradio keeps each visitor's (and each API call's) session in memory, 10,000 by default:
        # under load that alone held about 100 MB. The oldest go first.
        state_session_capacity=SESSIONS,
        css=render.CSS,
        js=render.PAGE_JS,
        theme=theme(),
        footer_links=["api"],
        enable_monitoring=False,  # no /monitoring page: it would show every visitor the traffic
    )
    return app


# The API functions whose calls are checked at the door, and their arguments in order.
_CHECKED = {"ask": ("question", "k", "mode", "history"), "search": ("question", "k", "mode")}
# Gradio serves a function at four routes: /call/NAME and /run/NAME and /api/NAME take
# {"data": [arguments in order]}, /call/v2/NAME takes {name: argument}.
_API_ROUTE = re.compile(r"/(call/v2|call|run|api)/([^/]+)/?$")


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes gets 413 at once, unread when its
    Content-Length says so, else as soon as the bytes received pass it (uploads have their own
    limit, Gradio's max_file_size). A call of the ask or search API, at any of Gradio's routes
    for it, has the tighter `api_limit` and is checked by `check` before it joins the queue, so a
    bad one is refused at once (422) instead of waiting for its turn."""

    def __init__(self, app, limit: int = MAX_REQUEST_BYTES, check=None, api_limit: int = MAX_API_REQUEST_BYTES) -> None:
        self.app = app
        self.limit = limit
        self.api_limit = api_limit
        self.check = check

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].rstrip("/").endswith("/upload"):
            return await self.app(scope, receive, send)
        route = _API_ROUTE.search(scope["path"]) if scope["method"] == "POST" else None
        checked = self.check is not None and route is not None and route[2] in _CHECKED
        limit = self.api_limit if checked else self.limit
        length = dict(scope.get("headers") or ()).get(b"content-length", b"")
        if length.isdigit() and int(length) > limit:
            return await _refuse(send, 413, _too_large(f"{int(length):,} bytes", limit, checked))
        if not checked and length.isdigit():
            return await self.app(scope, receive, send)
        # Read whole (a body sent without its length is counted as it comes), then replayed.
        chunks, size, more = [], 0, True
        while more:
            event = await receive()
            if event["type"] == "http.disconnect":
                return None  # the client left: nobody to answer
            chunks.append(event.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                return await _refuse(send, 413, _too_large(f"over {limit:,} bytes", limit, checked))
            more = event.get("more_body", False)
        body = b"".join(chunks)
        if checked:
            problem = self._problem(route, body)
            if problem:
                return await _refuse(send, 422, problem)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    def _problem(self, route: re.Match, body: bytes) -> str | None:
        """Why a call of a checked API function is refused, or None."""
        names = _CHECKED[route[2]]
        try:
            sent = json.loads(body)
            if route[1] == "call/v2":  # named arguments
                if not isinstance(sent, dict):
                    raise TypeError
                arguments = {name: sent[name] for name in names if name in sent}
            else:
                values = sent["data"]
                if not isinstance(values, list):
                    raise TypeError
                arguments = dict(zip(names, values))
        except (ValueError, KeyError, TypeError):
            shape = (
                "{" + ", ".join(f'"{n}": ...' for n in names) + "}"
                if route[1] == "call/v2"
                else ('{"data": [' + ", ".join(names) + "]}")
            )
            return f"send JSON: {shape}"
        return self.check(arguments)


def _too_large(size: str, limit: int, api: bool) -> str:
    what = " for an ask or search call" if api else ""
    return (
        f"request of {size} refused: the limit{what} is {limit:,} "
        f"(questions are under 1,000 characters; send at most the last {HISTORY_TURNS} of history)"
    )


async def _refuse(send, status: int, message: str) -> None:
    body = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def check_upload(name: str, size: int) -> str | None:
    """Why an uploaded file is refused, or None. `name` is only looked at, never opened."""
    suffix = Path(name).suffix.lower()
    if suffix not in UPLOAD_TYPES:
        return f"{name}: unsupported file type '{suffix or '(none)'}' (upload {FORMATS})"
    limit = MAX_DOCUMENT_UPLOAD_BYTES if suffix in DOCUMENT_SUFFIXES else MAX_UPLOAD_BYTES
    if size > limit:
        return f"{name}: too large ({size / 1024 / 1024:.1f} MB; the limit is {limit // 1024 // 1024} MB)"
    if size == 0:
        return f"{name}: the file is empty"
    return None


def theme() -> gr.themes.Base:
    """Gradio's Soft theme with text dark enough to read: every text at least 4.5:1 against its
    background (its light indigo labels and gray notes were about 2.5-3.6:1; axe-core checks it)."""
    return gr.themes.Soft().set(
        body_text_color_subdued="*neutral_600",
        block_label_text_color="*primary_800",
        block_title_text_color="*primary_800",
        block_info_text_color="*neutral_600",
        button_primary_background_fill="*primary_700",
        button_primary_background_fill_hover="*primary_800",
        checkbox_label_background_fill_selected="*primary_700",
        color_accent="*primary_700",
    )


def browser_secret() -> str:
    """The key conversations kept in visitors' browsers are encrypted with: the same across
    restarts (a new one each start would leave every saved conversation unreadable)."""
    path = data_home() / "ui-secret"
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(key)
        return key
    except OSError:
        return secrets.token_urlsafe(24)  # unreadable: this run's conversations only


def export_file(title: str, turns: list[str]) -> str | None:
    """The conversation as a Markdown file for the export button (in Gradio's temp folder)."""
    if not turns:
        return None
    folder = tempfile.mkdtemp(prefix="export-", dir=os.environ.get("GRADIO_TEMP_DIR") or None)
    path = Path(folder) / "conversation.md"
    path.write_text(conversations.markdown(title or "Conversation", turns), encoding="utf-8")
    return str(path)


def example_questions(lib: Library, n: int = 4) -> list[str]:
    """Questions a first-time user can click, varied: the articles' own question headings ("How to
    ..." ones read as questions), taken from each article in turn, leaving out any that asks what
    an earlier pick asks ("What Are Exosomes, Really?" after "What in the World Are Exosomes?")."""
    from .lexical import content_terms

    per_article: dict[str, list[str]] = {}
    for chunk in itertools.islice(lib.index.iter_chunks(), 5000):  # enough to find a few
        for heading in chunk.headings:
            question = (
                heading if heading.endswith("?") else f"{heading}?" if heading.lower().startswith("how to ") else ""
            )
            if question and 3 <= len(question.split()) <= 12 and question not in per_article.get(chunk.article_id, []):
                per_article.setdefault(chunk.article_id, []).append(question)
    filler = content_terms(_FILLER)
    picked: list[tuple[str, set[str]]] = []
    queues = [list(questions) for questions in per_article.values()]
    while len(picked) < n and any(queues):
        for queue in queues:
            while queue:
                question = queue.pop(0)
                terms = content_terms(question) - filler
                if all(len(terms & t) < 0.6 * len(terms | t) for _, t in picked) and (terms or not picked):
                    picked.append((question, terms))
                    break
            if len(picked) == n:
                break
    return [q for q, _ in picked] or [f"What does “{a.title}” say?" for a in lib.articles()[:n]]


# Words that make a question sound different without asking anything different.
_FILLER = "world really exactly actually truly thing things anyway everything need know"


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

    def check(self, flag: threading.Event, what: str) -> None:
        """Raise Stopped at a change's next step when the server stops or its visitor cancelled."""
        if self.stopping.is_set():
            raise Stopped(f"the server is stopping: {what} was not added")
        if flag.is_set():
            raise Stopped(f"cancelled: {what} was not added")


def build_app(lib: Library) -> gr.Blocks:
    """The Gradio app over `lib`: chat, settings, library management and the /ask and /search API."""
    life = Lifecycle()

    def library_view():
        counts = lib.passage_counts()
        articles = lib.articles()
        choices = [(f"{a.title} ({a.id})", a.id) for a in articles]
        summary = f"{len(articles)} articles · {sum(counts.values())} passages"
        return render.library_html(articles, counts), gr.update(choices=choices, value=None), summary

    def chat(question: str, messages: list, asked: list[str], k: int, mode: str, turns: list[str] | None = None):
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
            answer = lib.ask(question, k=_whole(k), mode=mode, history=asked)
            similar = lib.similar_words(answer.query, answer.hits)
        except ArticleQAError as exc:
            reply = render.error_html(str(exc))
        else:
            reply = render.answer_html(answer, similar)
            # Only answered questions are context for a follow-up: "and for hair?" after an
            # off-topic question leans on the last topic the articles did answer.
            asked = [*asked, question] if answer.found else asked
            turns = [*turns, render.answer_markdown(answer)]
        return "", [*messages, {"role": "assistant", "content": reply}], asked, turns

    def pick_example(evt: gr.SelectData, messages: list, asked: list[str], k: int, mode: str, turns: list[str]):
        return chat(evt.value["text"], messages, asked, k, mode, turns)

    # -- conversations kept in the visitor's browser --------------------------------------------

    def shown_conversation(saved: dict, conversation: dict | None):
        """The chat, its context and the sidebar's list for `conversation` (None: a new one)."""
        c = conversation or {"messages": [], "asked": [], "turns": [], "title": ""}
        listed = gr.update(choices=conversations.choices(saved), value=conversation and conversation["id"])
        return c["messages"], c["asked"], c["turns"], saved, listed, export_file(c["title"], c["turns"])

    def save(messages: list, asked: list[str], turns: list[str], saved):
        saved = conversations.record(saved, messages, asked, turns)
        return shown_conversation(saved, conversations.opened(saved, saved["current"]))[3:]

    def reopen(saved, messages: list):
        saved = conversations.checked(saved)
        k_value = saved["k"] if isinstance(saved["k"], int) and 1 <= saved["k"] <= MAX_K else gr.update()
        mode_value = saved["mode"] if saved["mode"] in MODES else gr.update()
        if messages:  # asked before the saved conversation came back (a quick click): keep it, as a new one
            saved = {**saved, "current": None}
            listed = gr.update(choices=conversations.choices(saved), value=None)
            return gr.update(), gr.update(), gr.update(), saved, listed, gr.update(), k_value, mode_value
        current = conversations.opened(saved, saved["current"])
        return *shown_conversation(saved, current), k_value, mode_value

    def open_past(conversation_id: str, saved):
        saved = conversations.checked(saved)
        current = conversations.opened(saved, conversation_id)
        return shown_conversation({**saved, "current": current and current["id"]}, current)

    def start_new(saved):
        return shown_conversation({**conversations.checked(saved), "current": None}, None)

    def forget_current(saved):
        saved = conversations.checked(saved)
        return shown_conversation(conversations.forget(saved, saved["current"]), None)

    def open_reader(target: str):
        """The whole article a "Read the whole article" link names, at its passage."""
        try:
            _, quoted, *numbers = (target or "").split(":")
            start, end, hs, he = (int(n) for n in numbers)
            article = lib.article(unquote(quoted))
        except (ValueError, ArticleQAError):
            return gr.update(), gr.update(), gr.update()
        answer = (hs, he) if 0 <= hs < he else None
        html = render.reader_html(article, (start, end), answer)
        path = lib.original(article.id)
        download = gr.update(visible=False, value=None)
        if path is not None:
            folder = tempfile.mkdtemp(prefix="original-", dir=os.environ.get("GRADIO_TEMP_DIR") or None)
            copy = Path(folder) / path.name
            shutil.copyfile(path, copy)  # served from Gradio's temp folder, never from where it lies
            download = gr.update(visible=True, value=str(copy), label=f"Download the original file ({path.name})")
        return html, gr.Tabs(selected="reader"), download

    def keep_settings(k_value, mode_value, saved):
        return {**conversations.checked(saved), "k": _whole(k_value), "mode": mode_value}

    def upload(files: list[str] | None, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        notes: list[str] = []
        files = files or []
        session, flag = life.begin(request)
        try:
            _upload(files, notes, flag, progress)
        finally:
            life.cancels.pop(session, None)
            life.activity = ""
        table, choices, summary = library_view()
        return None, _notes_html(notes or [f"Choose {FORMATS} files to add."]), table, choices, summary

    def _upload(files: list[str], notes: list[str], flag: threading.Event, progress) -> None:
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
                with life.writing, stopping.stop_points(lambda name=name: life.check(flag, name)):
                    step(0.0, "reading and splitting into passages")
                    article = lib.add_bytes(Path(tmp).read_bytes(), filename=name, progress=step)
            except ArticleQAError as exc:
                notes.append(f"✗ {name}: {exc}")
            else:
                notes.append(f"✓ added “{article.title}” from {name}")
            if flag.is_set():
                notes.extend(f"✗ cancelled: {Path(rest).name} was not added" for rest in files[i + 1 :])
                break

    def add_link(url: str, request: gr.Request, progress=gr.Progress()):  # noqa: B008 - Gradio's idiom
        url = url.strip() if isinstance(url, str) else ""
        if not is_url(url):
            table, choices, summary = library_view()
            note = "✗ Paste a link that starts with http:// or https://." if url else "Paste a link to add."
            return gr.update(), _notes_html([note]), table, choices, summary

        session, flag = life.begin(request)

        def step(fraction: float, message: str) -> None:
            life.check(flag, url)
            life.activity = f"Adding {url}: {message} ({fraction:.0%})"
            progress(fraction, desc=message)

        try:
            with life.writing, stopping.stop_points(lambda: life.check(flag, url)):
                step(0.0, f"fetching {url}")
                change = lib.add(url, progress=step)
        except ArticleQAError as exc:
            note, value = f"✗ {exc}", gr.update()
        else:
            article_id = (change.added or change.replaced or change.unchanged or [""])[0]
            title = lib.article(article_id).title if article_id else url
            if change.skipped:
                note, value = f"✗ {url}: {change.skipped[0][2]}", gr.update()
            elif change.added or change.replaced:
                note, value = f"✓ {'added' if change.added else 'updated'} “{title}” from {url}", ""
            else:
                note, value = f"✓ “{title}” is up to date with {url}", ""
        finally:
            life.cancels.pop(session, None)
            life.activity = ""
        table, choices, summary = library_view()
        return value, _notes_html([note]), table, choices, summary

    def cancel(request: gr.Request):
        """Stop this visitor's upload or link at its next step: the library stays as it was."""
        flag = life.cancels.get(getattr(request, "session_hash", None) or "api")
        if flag is None:
            return _notes_html(["Nothing is being added."])
        flag.set()
        return _notes_html(["Cancelling: the library stays as it was."])

    def ask_remove(article_id: str | None):
        """The first click on Remove only asks: which article, how much goes."""
        if not article_id:
            return _notes_html(["Choose an article to remove."]), gr.update(visible=False)
        try:
            article = lib.article(article_id)
        except ArticleQAError as exc:
            return _notes_html([f"✗ {exc}"]), gr.update(visible=False)
        n = lib.passage_counts().get(article_id, 0)
        question = f"Remove “{article.title}” and its {n} passage{'s' * (n != 1)} from the library?"
        return _notes_html([question]), gr.update(visible=True)

    def remove(article_id: str | None):
        removed = None
        if not article_id:
            note = "Choose an article to remove."
        else:
            try:
                removed = lib.article(article_id)
                with life.writing:
                    lib.remove(article_id)
                note = f"✓ removed “{removed.title}”"
            except ArticleQAError as exc:
                note, removed = f"✗ {exc}", None
        hide, undo = gr.update(visible=False), gr.update(visible=removed is not None)
        return _notes_html([note]), *library_view(), hide, undo, removed

    def restore(article):
        """Undo a removal: the article comes back (embedded again)."""
        if article is None:
            return _notes_html(["Nothing to undo."]), *library_view(), gr.update(visible=False), None
        try:
            with life.writing:
                lib.add(article)
            note = f"✓ restored “{article.title}”"
        except ArticleQAError as exc:
            note = f"✗ {exc}"
        return _notes_html([note]), *library_view(), gr.update(visible=False), None

    def keep():
        return _notes_html(["Nothing was removed."]), gr.update(visible=False)

    def activity(was_busy: bool):
        """What another tab's change is doing; the list is refreshed when it ends."""
        now = life.activity
        note = f'<p class="aqa-note aqa-activity">⏳ {html_escape(now)}</p>' if now else ""
        view = library_view() if (was_busy and not now) else (gr.update(),) * 3
        return note, *view, bool(now)

    def api_ask(
        question: str, k: int = 5, mode: str = "hybrid", history: list[str] | None = None, request: gr.Request = None
    ) -> dict:
        """Answer a question from the articles: the answer sentence and the cited passages."""
        try:
            return lib.ask(question, k=k, mode=mode, history=history or []).to_dict()
        except ArticleQAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        finally:
            life.called(request)

    def api_search(question: str, k: int = 5, mode: str = "hybrid", request: gr.Request = None) -> dict:
        """The passages that best match a question, best first."""
        try:
            mode = lib.check(question, k=k, mode=mode)[2]  # the mode's one name ("lexical" -> "keyword")
            hits = lib.search(question, k=k, mode=mode)
        except ArticleQAError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        finally:
            life.called(request)
        return {"question": question, "mode": mode, "hits": [h.to_dict() for h in hits]}

    examples = example_questions(lib)
    with gr.Blocks(title="articleqa", analytics_enabled=False) as app:
        asked = gr.State([])  # this session's questions, oldest first: the follow-up context
        turns = gr.State([])  # this conversation's answers as Markdown, with citations (the export)
        saved = gr.BrowserState(conversations.empty(), storage_key="articleqa-conversations", secret=browser_secret())
        with gr.Sidebar(label="Settings", open=True):
            gr.Markdown("### articleqa\nAnswers from your articles, with the passages that say so.")
            k = gr.Slider(1, MAX_K, value=min(lib.settings.k, MAX_K), step=1, label="Passages to cite")
            mode = gr.Radio(
                list(MODES),
                value=lib.settings.mode,
                label="Search mode",
                info="hybrid: meaning + keywords; dense: meaning only; keyword: exact words (BM25)",
            )
            summary = gr.Markdown(elem_id="aqa-summary")
            gr.Markdown("#### Conversations\nKept in this browser only.")
            past = gr.Radio(choices=[], label="Past conversations", elem_id="aqa-past", show_label=False)
            with gr.Row():
                new_chat = gr.Button("New", size="sm", elem_id="aqa-new-chat")
                forget = gr.Button("Delete", size="sm", elem_id="aqa-forget", variant="stop")
            export = gr.DownloadButton("Export as Markdown", size="sm", elem_id="aqa-export", value=None)
        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Chat", id="chat") as chat_tab:
                chatbot = gr.Chatbot(
                    elem_id="aqa-chat",
                    autoscroll=False,  # SHOW_LATEST_JS scrolls to the question and its answer instead
                    show_label=False,
                    height="72vh",
                    layout="bubble",
                    placeholder="Ask a question about the articles. Every answer cites the passages it comes from.",
                    examples=[{"text": q} for q in examples] or None,
                    # Replies are HTML built by render.py with every article and user string escaped;
                    # Gradio's sanitizer stays on as a second line of defence.
                    sanitize_html=True,
                    latex_delimiters=[],
                    allow_tags=False,
                    feedback_options=None,
                    buttons=[],  # a copy of a reply would be its HTML source
                )
                with gr.Row(equal_height=True):
                    question = gr.Textbox(
                        label="Your question",  # read by screen readers; the placeholder says the same
                        placeholder="Ask a question about the articles…",
                        show_label=False,
                        scale=8,
                        max_lines=4,
                        elem_id="aqa-question",
                        autofocus=True,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, elem_id="aqa-ask")
            with gr.Tab("Library", id="library") as library_tab:
                removed = gr.State(None)  # the article this visitor just removed, for Undo
                busy = gr.State(False)
                watch = gr.Timer(2.0, active=False)
                busy_note = gr.HTML(elem_id="aqa-activity")
                gr.Textbox(
                    label="Filter the list",
                    placeholder="a word of the title, source or id",
                    elem_id="aqa-filter",
                    max_lines=1,
                )
                table = gr.HTML(elem_id="aqa-library")
                with gr.Row():
                    with gr.Column():
                        files = gr.File(
                            label=(
                                f"Add articles ({', '.join(UPLOAD_TYPES)}; up to {MAX_UPLOAD_BYTES // 2**20} MB of"
                                f" text or {MAX_DOCUMENT_UPLOAD_BYTES // 2**20} MB for PDF, DOCX and EPUB)"
                            ),
                            file_count="multiple",
                            file_types=list(UPLOAD_TYPES),
                            elem_id="aqa-upload",
                        )
                        with gr.Row():
                            link = gr.Textbox(
                                label="Add from a link",
                                placeholder="https://…",
                                elem_id="aqa-link",
                                scale=4,
                            )
                            fetch_link = gr.Button("Add link", elem_id="aqa-add-link", scale=1, min_width=90)
                        stop_adding = gr.Button("Cancel adding", elem_id="aqa-cancel", size="sm", variant="secondary")
                    with gr.Column():
                        chosen = gr.Dropdown(label="Remove an article", choices=[], elem_id="aqa-remove-choice")
                        drop = gr.Button("Remove", variant="stop", elem_id="aqa-remove")
                        with gr.Row(visible=False) as confirm_row:
                            confirm = gr.Button("Yes, remove it", variant="stop", elem_id="aqa-remove-confirm")
                            keep_it = gr.Button("Keep it", elem_id="aqa-remove-keep")
                        undo = gr.Button("Undo the removal", visible=False, elem_id="aqa-undo")
                status = gr.HTML(elem_id="aqa-status")
            with gr.Tab("Reader", id="reader"):
                reader = gr.HTML(
                    '<p class="aqa-note">Choose <em>Read the whole article</em> under a cited passage.</p>',
                    elem_id="aqa-reader",
                )
                original = gr.DownloadButton("Download the original file", visible=False, elem_id="aqa-original")
        # Filled in by READ_JS when a "Read the whole article" link is clicked.
        read_request = gr.Textbox(elem_id="aqa-read-request", elem_classes="aqa-hidden", show_label=False)
        read_go = gr.Button("Open", elem_id="aqa-read-go", elem_classes="aqa-hidden")

        chat_io = dict(inputs=[question, chatbot, asked, k, mode, turns], outputs=[question, chatbot, asked, turns])
        read = dict(concurrency_id="read", concurrency_limit=READ_LIMIT)
        shown = dict(fn=None, js=render.SHOW_LATEST_JS, api_visibility="private")
        kept = dict(
            fn=save, inputs=[chatbot, asked, turns, saved], outputs=[saved, past, export], api_visibility="private"
        )
        conversation = [chatbot, asked, turns, saved, past, export]
        for replied in (
            question.submit(chat, **chat_io, api_name="chat", api_visibility="undocumented", **read),
            send.click(chat, **chat_io, api_visibility="private", **read),
            chatbot.example_select(
                pick_example,
                inputs=[chatbot, asked, k, mode, turns],
                outputs=chat_io["outputs"],
                api_visibility="private",
                **read,
            ),
        ):
            replied.then(**shown)
            replied.then(**kept)
        private = dict(api_visibility="private")
        app.load(reopen, inputs=[saved, chatbot], outputs=[*conversation, k, mode], **private)
        past.input(open_past, inputs=[past, saved], outputs=conversation, **private).then(**shown)
        new_chat.click(start_new, inputs=saved, outputs=conversation, **private)
        chatbot.clear(start_new, inputs=saved, outputs=conversation, **private)
        forget.click(forget_current, inputs=saved, outputs=conversation, **private)
        for setting in (k, mode):
            setting.input(keep_settings, inputs=[k, mode, saved], outputs=saved, **private)
        read_go.click(open_reader, inputs=read_request, outputs=[reader, tabs, original], **private).then(
            fn=None, js=render.SHOW_CITED_JS, **private
        )
        view = [table, chosen, summary]
        write = dict(api_visibility="undocumented", concurrency_id="write", concurrency_limit=1)
        uploading = files.upload(
            upload, inputs=files, outputs=[files, status, *view], api_name="upload", show_progress_on=files, **write
        )
        drop.click(ask_remove, inputs=chosen, outputs=[status, confirm_row], api_visibility="private")
        confirm.click(
            remove,
            inputs=chosen,
            outputs=[status, *view, confirm_row, undo, removed],
            api_name="remove",
            **write,
        )
        keep_it.click(keep, outputs=[status, confirm_row], api_visibility="private")
        undo.click(
            restore, inputs=removed, outputs=[status, *view, undo, removed], **{**write, "api_visibility": "private"}
        )
        watch.tick(
            activity, inputs=busy, outputs=[busy_note, *view, busy], api_visibility="private", show_progress="hidden"
        )
        library_tab.select(lambda: gr.Timer(active=True), outputs=watch, api_visibility="private")
        link_io = dict(inputs=link, outputs=[link, status, *view], show_progress_on=link, **write)
        fetching = fetch_link.click(add_link, api_name="add_link", **link_io)
        submitted = link.submit(add_link, **{**link_io, "api_visibility": "private"})
        # Not in the write lane (it would wait behind the change it cancels); queued changes of
        # this visitor are dropped by Gradio, the running one stops at its next step.
        stop_adding.click(
            cancel,
            outputs=status,
            cancels=[uploading, fetching, submitted],
            api_name="cancel",
            api_visibility="undocumented",
        )
        chat_tab.select(lambda: gr.Timer(active=False), outputs=watch, api_visibility="private")
        for trigger in (app.load, library_tab.select):
            trigger(library_view, outputs=view, api_visibility="private")
        gr.api(api_ask, api_name="ask", **read)
        gr.api(api_search, api_name="search", **read)
    app.articleqa_life = life  # for stop()

    def check(arguments: dict) -> str | None:
        """Why an API call would be refused (its arguments as sent), or None: for the door."""
        try:
            lib.check(
                arguments.get("question"),
                k=arguments.get("k", 5),
                mode=arguments.get("mode", "hybrid"),
                history=arguments.get("history") or (),
            )
        except ArticleQAError as exc:
            return str(exc)
        return None

    app.articleqa_check = check  # for BodyLimit
    return app


def _whole(k) -> int:
    """The chat's k as a whole number; anything else is refused by `ask` with what to send."""
    try:
        return int(k) if isinstance(k, (int, float, str)) and float(k) == int(float(k)) else k
    except (TypeError, ValueError, OverflowError):
        return k


def _notes_html(notes: list[str]) -> str:
    return "".join(f'<p class="aqa-note">{render.text_html(n)}</p>' for n in notes)
