"""The web UI's server (`articleqa serve`): start it on loopback, keep it lean while it runs, stop it promptly."""

from __future__ import annotations

import logging
import socket
import threading
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

from starlette.middleware import Middleware

from articleqa.errors import ArticleQAError
from articleqa.library import Library, seed_user_index, user_index_dir
from articleqa.library import open as open_library
from articleqa.runtime import stopping
from articleqa.runtime.malloc import give_back, large_blocks_apart, share_arenas
from articleqa.settings import Settings
from articleqa.ui import assets
from articleqa.ui.app import App, build_app
from articleqa.ui.limits import MAX_DOCUMENT_UPLOAD_BYTES, BodyLimit

log = logging.getLogger("articleqa")

# Gradio keeps each visitor's (and each API call's) session in memory, 10,000 by default; the
# oldest go first (what that held under load: docs/reliability.md).
SESSIONS = 500


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
    large_blocks_apart()  # a server's memory returns after bursts (runtime/malloc.py)
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


def wait_until_interrupted(app: App) -> None:
    """Until Ctrl+C (or the server stops by itself); meanwhile the memory a burst of requests
    freed goes back to the system every half minute."""
    ticks = 0
    try:
        while app.blocks.is_running:
            time.sleep(0.1)
            ticks += 1
            if ticks % 10 == 0:
                forget_api_sessions(app)
            if ticks % 300 == 0:
                give_back()
    except KeyboardInterrupt:
        pass


def forget_api_sessions(app: App, idle: float = 2.0) -> None:
    """Forget the sessions Gradio opened for calls of the ask and search API that have answered.
    Gradio keeps every session (each with its own copy of the page's settings) until 500 newer
    ones push it out; an API call needs none once it has answered. Forgotten within seconds, the
    few alive at a time reuse each other's memory (kept, they never gave it back: docs/reliability.md).
    A session used in the last `idle` seconds (a client calling again on it) waits for the next
    round; one holding a chat's state stays."""
    life = app.handlers.life
    done = life.answered_api_sessions()
    holder = getattr(app.blocks, "state_holder", None)
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


def stop(app: App, *, wait: float = 2.0) -> bool:
    """Stop promptly: a change being written is left out at its next check (the index stays as it
    was; nothing half-written is published), then the server closes. False if the change was
    still running after `wait` seconds: the caller abandons it (stopping.abandon)."""
    life = app.handlers.life
    life.stopping.set()
    done = life.writing.acquire(timeout=wait)
    if done:
        life.writing.release()
    server = getattr(app.blocks, "server", None)
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


def launch(app: App, *, host: str = "127.0.0.1", port: int = 7860) -> App:
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


def _launch(app: App, host: str, port: int) -> App:
    threading.Thread(target=app.handlers.check_library, name="articleqa-verify", daemon=True).start()
    app.blocks.launch(
        server_name=host,
        server_port=port,
        share=False,
        prevent_thread_lock=True,
        quiet=True,
        # A client that sends a wrong type (k="abc" to the chat endpoint) hears what Gradio
        # expected instead of an empty error; our own refusals are gr.Error either way.
        show_error=True,
        max_file_size=MAX_DOCUMENT_UPLOAD_BYTES,
        app_kwargs={"middleware": [Middleware(BodyLimit, check=app.handlers.check)]},
        state_session_capacity=SESSIONS,
        css=assets.CSS,
        js=assets.PAGE_JS,
        theme=assets.theme(),
        footer_links=["api"],
        enable_monitoring=False,  # no /monitoring page: it would show every visitor the traffic
    )
    return app
