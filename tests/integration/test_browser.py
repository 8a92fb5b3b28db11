"""The web UI in a real browser: Debian's Chromium driven through Playwright (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import pytest  # noqa: E402

import servers  # noqa: E402
from articleqa.library import Library  # noqa: E402
from articleqa.library import open as open_library  # noqa: E402
from articleqa.settings import Settings  # noqa: E402
from articleqa.ui.app import build_app  # noqa: E402
from conftest import DATA, ROOT  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What the page shows after a click or an answer can take seconds on a busy machine (Playwright's
# own default for expect() is 5 s): every wait for the page is this long unless it says otherwise.
PAGE_WAIT_MS = 30_000
# An answer or an upload: the real model on that busy machine.
ANSWER_WAIT_MS = 60_000
SCRIPT = "<script>window.__pwned=1</script>"
IMG = '<img src=x onerror="window.__pwned=1">'

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"Chromium is not installed at {CHROMIUM}"),
    # Gradio's queue monitoring trips pandas deprecation warnings that are not ours to fix.
    pytest.mark.filterwarnings("ignore:.*(no_silent_downcasting|copy keyword):Warning"),
]

ARTICLES = {
    "bees.txt": "How honeybees communicate\n\nHoneybees tell each other where flowers are with the waggle dance. "
    "The angle of the dance shows the direction of the food relative to the sun, and the length of the "
    "waggle run tells the distance.\n",
    "volcanoes.md": "---\ntitle: Living near volcanoes\ndate: '2023-04-05'\nurl: https://example.org/volcanoes\n---\n\n"
    "## Is volcanic ash dangerous?\n\n"
    "Volcanic ash is made of tiny shards of rock and glass that damage lungs and jet engines. "
    "Evacuation routes should be planned long before an eruption.\n",
    # An answer in a bullet list, and a summary whose lead crosses a paragraph break.
    "bread.md": "---\ntitle: Weekend bread\n---\n\nA plain white loaf for the weekend.\n\nIt takes a day, most "
    "of it waiting for the dough.\n\n## What goes in\n\n- 500 g strong bread flour\n- 350 g water at room "
    "temperature\n- 10 g fine sea salt\n\n## Baking\n\nBake the loaf at 230 degrees for forty minutes, "
    "until the crust is dark brown.\n",
    # Plain text, so the markup reaches the index exactly as written.
    "hostile.txt": f"Glacier notes {IMG}\n\nGlaciers advance when winter snowfall exceeds summer melt. {SCRIPT} "
    f"Moraines mark where a glacier once ended, and {IMG} crevasses open where the ice bends.\n",
}


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=PAGE_WAIT_MS)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield browser
        finally:
            browser.close()


def serve(lib: Library):
    return servers.launch(build_app(lib))


@pytest.fixture(scope="module")
def served(tmp_path_factory, real_embedder):
    """A small corpus of its own, indexed with the real model, served on a free loopback port:
    the address and the library."""
    root = tmp_path_factory.mktemp("site")
    for name, text in ARTICLES.items():
        (root / "articles").mkdir(exist_ok=True)
        (root / "articles" / name).write_text(text, encoding="utf-8")
    lib = Library.at(root / "index", Settings(), embedder=real_embedder)
    lib.sync([root / "articles"])
    app = serve(lib)
    try:
        yield app.local_url, lib
    finally:
        app.close()


@pytest.fixture(scope="module")
def site(served):
    return served[0]


@pytest.fixture
def page(chromium, site):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(site)
        page.wait_for_selector("#aqa-question textarea")
        yield page
    finally:
        context.close()


def ask(page, question: str, *, click: bool = False):
    """Type a question, press Enter (or the Ask button), and return the reply that appears."""
    from playwright.sync_api import expect

    replies = page.locator('#aqa-chat [data-testid="bot"]')
    before = replies.count()
    page.fill("#aqa-question textarea", question)
    if click:
        page.click("#aqa-ask")
    else:
        page.press("#aqa-question textarea", "Enter")
    expect(replies).to_have_count(before + 1, timeout=ANSWER_WAIT_MS)
    return replies.nth(before)


def test_answer_cites_its_passage_in_context(page):
    from playwright.sync_api import expect

    reply = ask(page, "How do bees tell each other where the food is?")
    expect(reply.locator(".aqa-lead mark")).to_contain_text("waggle dance")
    first = reply.locator(".aqa-hit").first
    expect(first).to_contain_text("How honeybees communicate")
    expect(first.locator(".aqa-passage mark")).to_contain_text("waggle dance")
    # Why it was chosen, in words; the numbers stay folded until asked for.
    expect(first.locator(".aqa-why")).to_contain_text("Why: close in meaning to your question;")
    expect(first.locator(".aqa-why")).to_contain_text("“bees” ≈ “honeybees”; same words: tell, food.")
    expect(first.locator("details.aqa-scores span")).to_be_hidden()
    context = first.locator(".aqa-article")
    expect(context).to_be_hidden()
    first.locator("summary", has_text="Show in the article").click()
    expect(context).to_be_visible()


def _record_copy(page, reply) -> str:
    """Click the reply's Copy answer and return what it handed to the clipboard (headless Chromium
    has no system clipboard to read back; the button says "Copied" for 1.5 s only, so what it
    says is recorded as it changes)."""
    page.evaluate("navigator.clipboard.writeText = (t) => { window.__copied = t; return Promise.resolve(); }")
    copy = reply.locator("button.aqa-copy")
    copy.evaluate(
        "b => { window.__labels = []; new MutationObserver(() => window.__labels.push(b.textContent))"
        ".observe(b, {childList: true, characterData: true, subtree: true}); }"
    )
    copy.click()
    page.wait_for_function("window.__labels.includes('Copied')", timeout=PAGE_WAIT_MS)
    return page.evaluate("window.__copied")


def test_an_answer_in_a_bullet_list_keeps_its_citations_and_copies_only_itself(page):
    from playwright.sync_api import expect

    reply = ask(page, "how much water goes in the weekend bread")
    expect(reply.locator(".aqa-lead mark")).to_contain_text("350 g water")
    expect(reply.locator(".aqa-hit").first).to_be_visible()
    expect(reply.locator(".aqa-hit").first).to_contain_text("Weekend bread")
    expect(reply.locator(".aqa-copy-text")).to_be_hidden()
    copied = _record_copy(page, reply)
    # the answer and where it comes from; not the rest of the passage
    assert "350 g water" in copied and "— “Weekend bread”" in copied, copied
    assert "Bake the loaf" not in copied and len(copied) < 300, copied


def test_an_answer_across_a_paragraph_break_keeps_its_citations(page):
    from playwright.sync_api import expect

    reply = ask(page, "Summarize the weekend bread article")
    lead = reply.locator(".aqa-lead mark")
    expect(lead).to_contain_text("A plain white loaf for the weekend. It takes a day")
    expect(lead).to_contain_text("[1]")
    expect(lead).to_contain_text("Baking: Bake the loaf at 230 degrees")
    expect(reply.locator(".aqa-hit").first).to_be_visible()
    expect(reply.locator(".aqa-hit").first).to_contain_text("Weekend bread")
    expect(reply.locator(".aqa-note").first).to_contain_text("A summary of “Weekend bread”")


def test_first_visit_offers_example_questions_from_the_articles(page):
    from playwright.sync_api import expect

    example = page.locator("#aqa-chat button", has_text="Is volcanic ash dangerous?")
    expect(example).to_be_visible()
    example.click()
    reply = page.locator('#aqa-chat [data-testid="bot"]')
    expect(reply).to_have_count(1, timeout=ANSWER_WAIT_MS)
    expect(page.locator('#aqa-chat [data-testid="user"]')).to_contain_text("Is volcanic ash dangerous?")
    first = reply.locator(".aqa-hit").first
    expect(first).to_contain_text("Living near volcanoes")
    expect(first.locator('a[href="https://example.org/volcanoes"][target="_blank"]')).to_be_visible()


def test_off_topic_question_is_not_covered(page):
    from playwright.sync_api import expect

    reply = ask(page, "What is a good recipe for sourdough bread?")
    expect(reply).to_contain_text("Not covered by these articles.")
    nearest = reply.locator(".aqa-nearest .aqa-hit").first
    expect(nearest).to_be_hidden()
    reply.locator("summary", has_text="Show nearest passages anyway").click()
    expect(nearest).to_be_visible()


def test_uploaded_article_is_indexed_and_cited(page, tmp_path):
    from playwright.sync_api import expect

    upload = tmp_path / "axolotl.md"
    upload.write_text("# Axolotl care\n\nAxolotls regrow lost limbs within a few weeks, even parts of their heart.\n")
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#aqa-upload input[type=file]", str(upload))
    expect(page.locator("#aqa-status")).to_contain_text("added “Axolotl care”", timeout=ANSWER_WAIT_MS)
    expect(page.locator("#aqa-library")).to_contain_text("Axolotl care")
    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "Can axolotls regrow their limbs?")
    expect(reply.locator(".aqa-hit").first).to_contain_text("Axolotl care")
    expect(reply.locator(".aqa-hit").first).to_contain_text("axolotl.md (uploaded)")


def test_an_uploaded_pdf_is_answered_with_its_page(page):
    from playwright.sync_api import expect

    paper = DATA / "documents" / "paper.pdf"
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#aqa-upload input[type=file]", str(paper))
    expect(page.locator("#aqa-status")).to_contain_text("added “Plant-Derived Exosomes", timeout=ANSWER_WAIT_MS)
    page.get_by_role("tab", name="Chat").click()
    reply = ask(page, "Who funded the split-face laser trial?")
    first = reply.locator(".aqa-hit").first
    expect(first).to_contain_text("Plant-Derived Exosomes After Fractional Laser")
    expect(first).to_contain_text("Nordic Skin Foundation")
    expect(first.locator(".aqa-page")).to_have_text("p. 2")
    expect(first.locator(".aqa-passage")).not_to_contain_text("##")  # headings show as headings


def test_an_empty_question_is_answered_with_what_to_do(page):
    from playwright.sync_api import expect

    page.click("#aqa-ask")
    expect(page.get_by_text("Type a question first")).to_be_visible()
    expect(page.locator('#aqa-chat [data-testid="user"]')).to_have_count(0)


def test_removing_asks_first_and_can_be_undone(page, tmp_path):
    from playwright.sync_api import expect

    note = tmp_path / "quokka.md"
    note.write_text("# Quokka facts\n\nQuokkas live on Rottnest Island and sleep through the hot day.\n")
    page.get_by_role("tab", name="Library").click()
    page.set_input_files("#aqa-upload input[type=file]", str(note))
    expect(page.locator("#aqa-status")).to_contain_text("added “Quokka facts”", timeout=ANSWER_WAIT_MS)
    page.locator("#aqa-remove-choice input").click()
    page.get_by_role("option", name="Quokka facts (quokka)").click()
    page.click("#aqa-remove")
    expect(page.locator("#aqa-status")).to_contain_text("Remove “Quokka facts” and its 1 passage")
    page.click("#aqa-remove-keep")
    expect(page.locator("#aqa-status")).to_contain_text("Nothing was removed")
    expect(page.locator("#aqa-library")).to_contain_text("Quokka facts")
    page.click("#aqa-remove")
    page.click("#aqa-remove-confirm")
    expect(page.locator("#aqa-status")).to_contain_text("removed “Quokka facts”", timeout=ANSWER_WAIT_MS)
    expect(page.locator("#aqa-library")).not_to_contain_text("Quokka facts")
    page.click("#aqa-undo")
    expect(page.locator("#aqa-status")).to_contain_text("restored “Quokka facts”", timeout=ANSWER_WAIT_MS)
    expect(page.locator("#aqa-library")).to_contain_text("Quokka facts")
    # The filter box hides the rows without the typed words.
    page.fill("#aqa-filter input, #aqa-filter textarea", "quokka")
    expect(page.locator("#aqa-library tbody tr:visible")).to_have_count(1)
    page.fill("#aqa-filter input, #aqa-filter textarea", "")
    expect(page.locator("#aqa-library tbody tr:visible")).not_to_have_count(1)


def test_the_library_shows_an_upload_running_in_another_tab(chromium, served, tmp_path, monkeypatch):
    from playwright.sync_api import expect

    site, lib = served
    shown = threading.Event()
    add_upload = lib.add_upload

    def held_add_upload(*args, **kwargs):
        # The upload runs until the other tab has shown it: the tab looks every 2 s, and a fast
        # machine would otherwise be done in between.
        shown.wait(300)  # a safety net only: set in finally
        return add_upload(*args, **kwargs)

    monkeypatch.setattr(lib, "add_upload", held_add_upload)
    big = tmp_path / "otters.txt"
    big.write_text(
        "Otters\n\n" + "\n\n".join(f"Otter fact {i}: otters hold hands when they sleep." for i in range(1500))
    )
    context = chromium.new_context()
    try:
        uploader, watcher = context.new_page(), context.new_page()
        for p in (uploader, watcher):
            p.goto(site)
            p.wait_for_selector("#aqa-question textarea")
            p.get_by_role("tab", name="Library").click()
        uploader.set_input_files("#aqa-upload input[type=file]", str(big))
        expect(watcher.locator("#aqa-activity")).to_contain_text("Adding otters.txt", timeout=60_000)
        shown.set()
        expect(uploader.locator("#aqa-status")).to_contain_text("added “Otters”", timeout=120_000)
        expect(watcher.locator("#aqa-library")).to_contain_text("Otters")
        expect(watcher.locator("#aqa-activity")).not_to_contain_text("Adding")
    finally:
        shown.set()
        context.close()


def test_conversations_and_settings_survive_a_reload(chromium, site):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(site)
        page.wait_for_selector("#aqa-question textarea")
        page.locator("#aqa-past").wait_for(state="attached")
        reply = ask(page, "What is volcanic ash made of?")
        page.get_by_label("dense").check()
        # Copy: the answer sentence and where it comes from.
        copied = _record_copy(page, reply)
        assert (
            "shards of rock and glass" in copied
            and "— “Living near volcanoes”, https://example.org/volcanoes" in copied
        )
        # Export: the conversation as Markdown with its citations.
        with page.expect_download() as download:
            page.click("#aqa-export")
        exported = Path(download.value.path()).read_text(encoding="utf-8")
        assert "## What is volcanic ash made of?" in exported and "https://example.org/volcanoes" in exported

        page.reload()
        page.wait_for_selector("#aqa-question textarea")
        expect(page.locator('#aqa-chat [data-testid="user"]')).to_contain_text("What is volcanic ash made of?")
        expect(page.get_by_label("dense")).to_be_checked()
        expect(page.locator("#aqa-past")).to_contain_text("What is volcanic ash made of?")

        page.click("#aqa-new-chat")
        expect(page.locator('#aqa-chat [data-testid="user"]')).to_have_count(0)
        ask(page, "How do bees tell each other where the food is?")
        expect(page.locator("#aqa-past label")).to_have_count(2)
        page.locator("#aqa-past label", has_text="volcanic ash").click()
        expect(page.locator('#aqa-chat [data-testid="user"]')).to_have_text(["What is volcanic ash made of?"])
        page.click("#aqa-forget")
        expect(page.locator("#aqa-past label")).to_have_count(1)
        expect(page.locator("#aqa-past")).not_to_contain_text("volcanic ash")
    finally:
        context.close()


def test_a_citation_opens_the_whole_article_at_its_passage(chromium, builtin_site):
    from playwright.sync_api import expect

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(builtin_site)
        page.wait_for_selector("#aqa-question textarea")
        reply = ask(page, "How long until I see results from exosome serum?")
        answer = reply.locator(".aqa-lead mark").inner_text()
        first = reply.locator(".aqa-hit").first
        title = first.locator(".aqa-hit-title strong").inner_text()
        first.get_by_role("link", name="Read the whole article").click()
        reader = page.locator("#aqa-reader")
        expect(reader.locator("h1")).to_have_text(title)
        expect(reader.locator("mark.aqa-cited strong")).to_have_text(answer)
        expect(reader.locator("h2, h3").first).to_be_visible()  # headings as headings
        page.wait_for_function(
            "(() => { const r = document.querySelector('#aqa-cited').getBoundingClientRect();"
            " return r.top >= 0 && r.top < innerHeight; })()",
            timeout=PAGE_WAIT_MS,
        )
        expect(page.locator("#aqa-original")).to_contain_text("Download the original file")
        with page.expect_download() as download:
            page.click("#aqa-original")
        from articleqa.library import CORPUS

        shipped = CORPUS / download.value.suggested_filename  # the file as shipped, not the cleaned text
        assert Path(download.value.path()).read_bytes() == shipped.read_bytes()
    finally:
        context.close()


AXE = ROOT / ".venv" / "axe" / "node_modules" / "axe-core" / "axe.min.js"


# The page is still: no output is being updated (Gradio shows those faded) and no fade is running.
STILL = (
    "!document.querySelector('.pending, .generating')"
    " && !document.getAnimations().some(a => a instanceof CSSTransition && a.playState === 'running')"
)
# axe-core's WCAG 2.1 A/AA checks: the serious and critical findings; null when the page did not
# stay still while they ran (an output updated meanwhile: the checks saw it half faded).
AXE_RUN = f"""async () => {{
  let moved = false;
  const busy = (c) => typeof c === 'string' && /\\b(pending|generating)\\b/.test(c);
  const watch = new MutationObserver((records) => {{
    if (records.some(r => busy(r.target.className) || busy(r.oldValue))) moved = true;
  }});
  const what = {{attributes: true, attributeFilter: ['class'], attributeOldValue: true, subtree: true}};
  watch.observe(document.body, what);
  const result = await axe.run(document, {{runOnly: {{type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21aa']}}}});
  watch.takeRecords().forEach(r => {{ if (busy(r.target.className) || busy(r.oldValue)) moved = true; }});
  watch.disconnect();
  if (moved || !({STILL})) return null;
  return result.violations.filter(v => ['serious', 'critical'].includes(v.impact))
    .map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).slice(0, 5).join(', '));
}}"""


def serious_violations(page, attempts: int = 10) -> list[str]:
    """axe-core's WCAG 2.1 A/AA checks on the page while it is still (the library tab updates
    its list every 2 s while it is open: a run that overlapped an update is run again)."""
    page.add_script_tag(path=str(AXE))
    for _ in range(attempts):
        page.wait_for_function(STILL, timeout=PAGE_WAIT_MS)
        found = page.evaluate(AXE_RUN)
        if found is not None:
            return found
    raise AssertionError(f"the page never stayed still through {attempts} runs of axe-core")


@pytest.mark.skipif(not AXE.exists(), reason="axe-core is installed by `make install-test` (npm)")
def test_chat_reader_and_library_pass_axe(chromium, builtin_site):
    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.goto(builtin_site)
        page.wait_for_selector("#aqa-question textarea")
        assert page.get_by_label("Your question").count() == 1  # the question box has a label
        # A card names what it says in other words (the question's "fast" is the passage's "quickly").
        said_otherwise = ask(page, "How fast do results show up?")
        assert "≈" in " ".join(said_otherwise.locator(".aqa-why").all_inner_texts())
        reply = ask(page, "How long until I see results from exosome serum?")
        assert serious_violations(page) == []
        reply.get_by_role("link", name="Read the whole article").first.click()
        page.wait_for_selector("#aqa-reader article")
        assert serious_violations(page) == []
        page.get_by_role("tab", name="Library").click()
        page.wait_for_selector("#aqa-library table")
        assert serious_violations(page) == []
    finally:
        context.close()


def test_hostile_markup_is_shown_not_run(page):
    from playwright.sync_api import expect

    reply = ask(page, f"When do glaciers advance? {IMG}", click=True)
    expect(page.locator('#aqa-chat [data-testid="user"]').last).to_contain_text(IMG)
    hit = reply.locator(".aqa-hit").first
    expect(hit).to_contain_text(f"Glacier notes {IMG}")  # the title, as text
    expect(hit.locator(".aqa-passage")).to_contain_text(SCRIPT)
    hit.locator("summary", has_text="Show in the article").click()
    expect(hit.locator(".aqa-article")).to_contain_text(SCRIPT)
    page.get_by_role("tab", name="Library").click()
    expect(page.locator("#aqa-library")).to_contain_text(f"Glacier notes {IMG}")
    assert page.locator("#aqa-chat script, #aqa-chat img[src=x], #aqa-library img[src=x]").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"


def test_page_loads_nothing_from_other_hosts(chromium, site):
    context = chromium.new_context()
    try:
        page = context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(site)
        ask(page, "What is volcanic ash made of?")
        assert requested and all(url.startswith(site) or url.startswith(("data:", "blob:")) for url in requested)
    finally:
        context.close()


def test_visitors_do_not_see_each_others_conversations(chromium, site):
    from playwright.sync_api import expect

    alice, bob = (chromium.new_context() for _ in range(2))
    try:
        a, b = alice.new_page(), bob.new_page()
        for p in (a, b):
            p.goto(site)
            p.wait_for_selector("#aqa-question textarea")
        ask(a, "What is volcanic ash made of?")
        reply = ask(b, "and what damages jet engines?")
        expect(b.locator('#aqa-chat [data-testid="user"]')).to_have_count(1)
        expect(b.locator("#aqa-chat")).not_to_contain_text("volcanic ash made of?")
        expect(reply).not_to_contain_text("Searched as")  # Alice's question is not Bob's context
        expect(a.locator('#aqa-chat [data-testid="bot"]')).to_have_count(1)
    finally:
        alice.close()
        bob.close()


@pytest.fixture(scope="module")
def builtin_site(real_embedder):
    """The built-in corpus (long passages, five to a reply), served on a free loopback port."""
    app = serve(open_library(embedder=real_embedder))
    try:
        yield app.local_url
    finally:
        app.close()


IN_VIEW = """() => {
  const chat = document.querySelector('#aqa-chat');
  const box = chat.querySelector('.bubble-wrap');
  const bots = chat.querySelectorAll('[data-testid="bot"]'), users = chat.querySelectorAll('[data-testid="user"]');
  const lead = bots[bots.length - 1].querySelector('.aqa-lead').getBoundingClientRect();
  const asked = users[users.length - 1].getBoundingClientRect(), seen = box.getBoundingClientRect();
  const inside = (r) => r.top >= Math.max(seen.top, 0) - 1 && r.bottom <= Math.min(seen.bottom, innerHeight) + 1;
  return {lead: inside(lead), question: inside(asked), wide: document.documentElement.scrollWidth - innerWidth};
}"""


@pytest.mark.parametrize(("width", "height"), [(1280, 900), (390, 844)], ids=["desktop", "phone"])
def test_the_question_and_its_answer_land_in_view(chromium, builtin_site, width, height):
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    context = chromium.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        page.goto(builtin_site)
        page.wait_for_selector("#aqa-question textarea")
        if width < 768:  # a phone: the chat first, the settings folded away
            page.wait_for_function("!document.querySelector('.sidebar.open')", timeout=PAGE_WAIT_MS)
        for question in ("What exactly is an exosome?", "How long until I see results?", "Are exosomes vegan?"):
            ask(page, question)
            try:  # the page scrolls in steps: wait for where it ends, not its first step
                page.wait_for_function(
                    f"(() => {{ const v = ({IN_VIEW})(); return v.lead && v.question && v.wide === 0; }})()",
                    timeout=PAGE_WAIT_MS,
                )
            except PlaywrightTimeout:
                pass  # the assertion says what is out of view
            assert page.evaluate(IN_VIEW) == {"lead": True, "question": True, "wide": 0}, question
        page.get_by_role("tab", name="Library").click()
        page.wait_for_selector("#aqa-library table")
        assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
        page.get_by_role("tab", name="Chat").click()
        page.get_by_role("link", name="Read the whole article").first.click()
        page.wait_for_selector("#aqa-reader article")
        assert page.evaluate("document.documentElement.scrollWidth - innerWidth") <= 0
    finally:
        context.close()


def test_screenshot_of_an_answer_on_the_builtin_corpus(chromium, tmp_path):
    """Set ARTICLEQA_SCREENSHOT=docs/screenshot.png to refresh the picture in the docs."""
    from playwright.sync_api import expect

    app = serve(open_library())
    context = None
    try:
        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.goto(app.local_url)
        page.wait_for_selector("#aqa-question textarea")
        page.get_by_label("number input for Passages to cite").fill("3")
        page.get_by_label("number input for Passages to cite").press("Enter")
        reply = ask(page, "What exactly is an exosome?")
        expect(reply.locator(".aqa-hit")).to_have_count(3)
        page.evaluate("document.querySelector('#aqa-chat .bubble-wrap').scrollTop = 0")
        shot = tmp_path / "screenshot.png"
        page.screenshot(path=str(shot))
        assert shot.stat().st_size > 20_000
        if os.environ.get("ARTICLEQA_SCREENSHOT"):
            shutil.copyfile(shot, os.environ["ARTICLEQA_SCREENSHOT"])
    finally:
        if context is not None:
            context.close()
        app.close()
