"""Reading in worker processes (ingest/isolated.py): every read within its time and memory budget,
with progress by page, stopped by a cancel, the inputs made here and the links served on loopback."""

from __future__ import annotations

import threading
import time

import pytest
from benchmarks.hostile import GOOD, serve_hostile, tiny_text_pdf

from articleqa import Library
from articleqa.errors import Stopped, UnusableFile
from articleqa.ingest.files import SkipFile, read_paths
from articleqa.ingest.isolated import Budget, Workers
from articleqa.runtime import stopping
from articleqa.settings import Limits


@pytest.fixture(scope="module")
def site():
    server, base = serve_hostile()
    yield base
    server.shutdown()
    server.server_close()


@pytest.fixture
def workers():
    pool = Workers(Budget(fetch_seconds=3.0, parse_seconds=1.5, memory_mb=256))
    yield pool
    pool.close()


def test_a_file_too_slow_to_read_is_skipped_with_its_page_and_the_good_one_beside_it_is_read(tmp_path, workers):
    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=3000, lines=200))
    (tmp_path / "good.md").write_text(GOOD, encoding="utf-8")
    heard = []
    start = time.monotonic()
    got = read_paths([tmp_path], workers=workers, report=heard.append)
    assert time.monotonic() - start < 6
    assert [a.title for a in got.articles] == ["Hedgehogs"]
    (skipped,) = got.skipped
    assert skipped.path.endswith("tiny.pdf")
    assert "took longer than 2 s to read (at page 1 of 3,000)" in skipped.reason or (
        "took longer than 2 s to read (at page" in skipped.reason and "of 3,000)" in skipped.reason
    )
    assert "Limits.parse_seconds" in skipped.reason
    assert any("tiny.pdf: reading page 1 of 3,000" in h for h in heard)


def test_a_read_is_the_same_in_a_worker_as_in_this_process(workers):
    from conftest import DATA

    folders = [DATA / "articles", DATA / "documents", DATA / "bad"]
    here, there = read_paths(folders), read_paths(folders, workers=workers)
    assert there.articles == here.articles and there.articles
    assert there.skipped == here.skipped


def test_a_cancel_stops_a_read_in_the_middle_of_a_page_and_the_next_read_works(tmp_path, workers):
    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=50, lines=400))
    slow = Workers(Budget(fetch_seconds=3.0, parse_seconds=60, memory_mb=256))
    cancelled = threading.Event()

    def check():
        if cancelled.is_set():
            raise Stopped("cancelled: tiny.pdf was not added")

    threading.Timer(1.0, cancelled.set).start()
    start = time.monotonic()
    with pytest.raises(Stopped), stopping.stop_points(check):
        slow.read_file(tmp_path / "tiny.pdf", article_id="tiny", max_document_bytes=None)
    assert time.monotonic() - start < 2.5  # a page takes about 0.3 s in pdfium here: not waited for
    assert slow._idle == []  # the worker was killed, not kept
    (tmp_path / "good.md").write_text(GOOD, encoding="utf-8")
    assert slow.read_file(tmp_path / "good.md", article_id="good", max_document_bytes=None).title == "Hedgehogs"
    slow.close()


def test_a_read_that_outgrows_its_memory_is_stopped_and_said(tmp_path):
    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=200, lines=400))
    small = Workers(Budget(fetch_seconds=3.0, parse_seconds=60, memory_mb=5))
    with pytest.raises(SkipFile, match=r"needed more than 5 MB of memory to read .*Limits.parse_memory_mb"):
        small.read_file(tmp_path / "tiny.pdf", article_id="tiny", max_document_bytes=None)
    small.close()


def test_a_link_whose_headers_come_a_byte_a_second_ends_within_the_fetch_budget(site, workers):
    start = time.monotonic()
    with pytest.raises(
        UnusableFile, match=r"slow-headers: not fully sent within the 3 s a link may take \(Limits.link_seconds\)"
    ):
        workers.read_url(f"{site}/slow-headers", allow_private=True, max_bytes=2**20)
    assert time.monotonic() - start < 3.0 + 0.5  # the budget, and slack for a loaded machine's polling


def test_slow_redirects_count_against_one_budget_for_the_whole_fetch(site, workers):
    start = time.monotonic()
    with pytest.raises(UnusableFile, match="not fully sent within the 3 s"):
        workers.read_url(f"{site}/redirect/1/5", allow_private=True, max_bytes=2**20)  # 5 s in all
    assert time.monotonic() - start < 4.5
    assert workers.read_url(f"{site}/redirect/0.1/2", allow_private=True, max_bytes=2**20).title == "Good"


def test_a_link_is_read_in_a_worker_with_the_same_checks(site, workers):
    with pytest.raises(UnusableFile, match="private or local address"):
        workers.read_url(f"{site}/good", allow_private=False, max_bytes=2**20)
    with pytest.raises(UnusableFile, match=r"/nothing: the server answered 404 Not Found$"):
        workers.read_url(f"{site}/nothing", allow_private=True, max_bytes=2**20)


def test_a_library_reads_in_workers_with_the_budgets_its_settings_give(tmp_path, site, fake_settings, fake_embedder):
    from dataclasses import replace

    settings = replace(fake_settings, allow_private_urls=True, limits=Limits(parse_seconds=1.0, link_seconds=2.0))
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "tiny.pdf").write_bytes(tiny_text_pdf(pages=3000, lines=200))
    (tmp_path / "files" / "good.md").write_text(GOOD, encoding="utf-8")
    lib = Library.at(tmp_path / "index", settings, embedder=fake_embedder)
    lib.add(tmp_path / "files", f"{site}/slow-headers")
    assert [a.title for a in lib.articles()] == ["Hedgehogs"]
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in lib.skipped}
    assert "took longer than 1 s to read" in reasons["tiny.pdf"]
    assert "not fully sent within the 2 s" in reasons["slow-headers"]
    with pytest.raises(UnusableFile, match=r"^took longer than 1 s to read"):
        lib.add_bytes((tmp_path / "files" / "tiny.pdf").read_bytes(), filename="tiny.pdf")


def test_the_add_command_takes_a_read_budget_and_names_the_file_past_it(tmp_path, capsys):
    from articleqa.cli import main

    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=3000, lines=200))
    index = str(tmp_path / "idx")
    assert main(["add", str(tmp_path / "tiny.pdf"), "--index-dir", index, "--parse-seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert "tiny.pdf: took longer than 1 s to read (at page" in err and "--parse-seconds" in err
    assert main(["add", str(tmp_path / "tiny.pdf"), "--index-dir", index, "--parse-seconds", "0"]) == 2
    assert "--parse-seconds must be more than 0" in capsys.readouterr().err


def test_a_reader_that_dies_is_named_and_replaced(tmp_path, workers):
    import os
    import signal

    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=50, lines=400))
    slow = Workers(Budget(fetch_seconds=3.0, parse_seconds=60, memory_mb=256))
    (tmp_path / "good.md").write_text(GOOD, encoding="utf-8")
    slow.read_file(tmp_path / "good.md", article_id="good", max_document_bytes=None)
    (worker,) = slow._idle
    threading.Timer(0.5, os.kill, (worker.process.pid, signal.SIGKILL)).start()  # as a crash in pdfium would
    with pytest.raises(SkipFile, match=r"the reader stopped unexpectedly \(signal SIGKILL\)"):
        slow.read_file(tmp_path / "tiny.pdf", article_id="tiny", max_document_bytes=None)
    assert slow.read_file(tmp_path / "good.md", article_id="good", max_document_bytes=None).title == "Hedgehogs"
    slow.close()


def test_a_worker_ends_when_its_parent_is_killed_even_in_the_middle_of_a_page(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    (tmp_path / "tiny.pdf").write_bytes(tiny_text_pdf(pages=500, lines=400))  # minutes of reading
    job = {"path": str(tmp_path / "tiny.pdf"), "article_id": "tiny", "max_document_bytes": None}
    code = (
        "import time; from articleqa.ingest.isolated import Budget, Workers; "
        f"w = Workers(Budget(3, 600, 256))._take(); w.send(('file', {job!r})); "
        "time.sleep(1); print(w.process.pid, flush=True); time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 2.5  # its next page report (10 pages on) would end it later
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}") and "Z" not in _state(child):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{child}") or "Z" in _state(child)


def _state(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "gone"
