"""`python -m benchmarks browser`: from pressing Enter to the answer on screen, in Chromium.

The chat UI is served on a free loopback port; Debian's Chromium (driven by Playwright, never
`playwright install`) types each question and presses Enter. The page itself times it: a key
listener notes the Enter, a MutationObserver waits for the new reply's answer line, and one
animation frame later (the reply is painted) the time is taken. Playwright's own round trips are
not in the figure.
"""

from __future__ import annotations

import os
import socket
import statistics
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Armed before each Enter; resolves with milliseconds from the keydown to the painted reply.
_ARM = """
() => {
  const chat = document.querySelector('#aqa-chat');
  const field = document.querySelector('#aqa-question textarea');
  const before = chat.querySelectorAll('[data-testid="bot"] .aqa-reply').length;
  window.__aqaLatency = new Promise((resolve) => {
    let start = null;
    field.addEventListener('keydown', (e) => { if (e.key === 'Enter') start = performance.now(); },
                           {once: true, capture: true});
    const watch = new MutationObserver(() => {
      if (start !== null && chat.querySelectorAll('[data-testid="bot"] .aqa-reply').length > before) {
        watch.disconnect();
        requestAnimationFrame(() => resolve(performance.now() - start));
      }
    });
    watch.observe(chat, {childList: true, subtree: true, characterData: true});
  });
}
"""


def run(library, questions: list[str], *, warmup: int = 3, width: int = 1280) -> dict:
    """Ask each question in a fresh chat (the reply box starts empty); milliseconds per answer."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from playwright.sync_api import sync_playwright

    from articleqa.ui.app import build_app
    from articleqa.ui.server import launch

    if not Path(CHROMIUM).exists():
        from articleqa.errors import ArticleQAError

        raise ArticleQAError(f"no Chromium at {CHROMIUM}: apt-get install chromium (never `playwright install`)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = launch(build_app(library), host="127.0.0.1", port=port)
    times: list[float] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": width, "height": 900})
            for n, question in enumerate([*questions[:warmup], *questions]):
                if n % 10 == 0:  # a long chat grows the page; start a new conversation now and then, as users do
                    page.goto(app.local_url)
                    page.wait_for_selector("#aqa-question textarea")
                    page.wait_for_timeout(300)  # the kept conversation comes back first
                    page.click("#aqa-new-chat")
                    page.wait_for_function("!document.querySelector('#aqa-chat [data-testid=\"bot\"]')")
                page.fill("#aqa-question textarea", question)
                page.evaluate(_ARM)
                page.press("#aqa-question textarea", "Enter")
                ms = page.evaluate("window.__aqaLatency")
                if n >= warmup:
                    times.append(ms)
            browser.close()
    finally:
        app.close()
    ordered = sorted(times)
    return {
        "questions": len(times),
        "viewport_width": width,
        "p50_ms": round(statistics.median(ordered), 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], 1),
        "max_ms": round(ordered[-1], 1),
    }


def main(args) -> int:
    """`python -m benchmarks browser`: Enter to answer on screen, in Chromium."""
    from articleqa.evaluate import load_questions
    from articleqa.library import Library
    from articleqa.library import open as open_library
    from articleqa.ui.examples import example_questions
    from benchmarks.common import machine, write
    from benchmarks.latency import latency

    lib = Library.load(args.index_dir) if args.index_dir else open_library()
    questions = [q.question for path in args.questions or () for q in load_questions(path)]
    questions = (questions or example_questions(lib, n=20))[: args.queries]
    result = {"machine": machine(), "browser": run(lib, questions)}
    result["server_ask_ms"] = latency(lib, questions, modes=("hybrid",), call="ask")["hybrid"]
    write(result, args.out)
    return 0
