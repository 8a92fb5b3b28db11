"""Shared fixtures: an isolated ARTICLEQA_HOME, the fake and the real embedder, tiny corpora."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from articleqa import Library, Settings
from fakes import FakeEmbedder
from waiting import Output, stop

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DATA = TESTS / "data"
PROCS = TESTS / "procs.py"  # a writer or reader of one index, run as a separate process
ARTICLES = DATA / "articles"
BAD = DATA / "bad"
# The fixture articles every plumbing test indexes (the HTML page has tests of its own).
PLAIN_ARTICLES = ("green-tea.md", "bicycle-chain.txt", "notes/sourdough.md")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """No test reads or writes the user's real library."""
    monkeypatch.setenv("ARTICLEQA_HOME", str(tmp_path_factory.mktemp("home")))
    monkeypatch.delenv("ARTICLEQA_MODEL", raising=False)


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory):
    """The real Milvus server, loopback only (tests/milvus_server.py), for this test session; or the
    one ARTICLEQA_MILVUS names. Where it cannot start, the tests that need it are skipped with the
    reason, except in CI (CI=true), where that is a failure."""
    import os
    import subprocess
    import sys

    if os.environ.get("ARTICLEQA_MILVUS"):
        yield os.environ["ARTICLEQA_MILVUS"]
        return
    data = tmp_path_factory.mktemp("milvus-server")
    # Port 0: the helper binds its listener on a port the system picks and prints it in its
    # `ready milvus://127.0.0.1:PORT` line, so no other process can take the port in between.
    proc = subprocess.Popen(
        [sys.executable, str(TESTS / "milvus_server.py"), "--data", str(data), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc.stdout)
    try:
        try:
            # The helper gives up by itself after 180 s of an unhealthy server; a margin on top.
            line = out.line(lambda line: line.startswith("ready "), 300, "the Milvus server's `ready` line")
        except AssertionError as exc:
            reason = f"the Milvus server did not start: {exc}"
            if os.environ.get("CI"):
                pytest.fail(reason)
            pytest.skip(reason)
        yield line.split()[1]
    finally:
        stop(proc, timeout=60)  # SIGTERM: the helper stops the server's whole process group


@pytest.fixture
def spawn():
    """Start a process (subprocess.Popen's arguments) that is stopped at the end of the test
    whatever happens to it: SIGTERM, then SIGKILL after 10 s."""
    import subprocess

    started: list[subprocess.Popen] = []

    def start(*args, **kwargs) -> subprocess.Popen:
        started.append(subprocess.Popen(*args, **kwargs))
        return started[-1]

    try:
        yield start
    finally:
        for proc in started:
            stop(proc, timeout=10)


@pytest.fixture(scope="session")
def real_embedder():
    """The bundled all-MiniLM-L6-v2, loaded from disk once per test session."""
    from articleqa.embed.model import SentenceEmbedder

    return SentenceEmbedder()


@pytest.fixture
def fake_embedder() -> FakeEmbedder:
    return FakeEmbedder()


@pytest.fixture
def corpus(tmp_path) -> Path:
    """A writable copy of the small fixture articles (tests change and delete files in it)."""
    folder = tmp_path / "articles"
    for name in PLAIN_ARTICLES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ARTICLES / name, folder / name)
    return folder


@pytest.fixture
def built(make_library, corpus):
    """A library (fake embedder) synced with the fixture articles."""
    lib = make_library()
    lib.sync([corpus])
    return lib


@pytest.fixture
def fake_settings() -> Settings:
    return Settings(model=FakeEmbedder.name)


@pytest.fixture
def make_library(tmp_path, fake_settings, fake_embedder):
    """Open (or reopen) a Library in tmp_path/idx with the fake embedder."""

    def make(index_dir: Path | None = None, **kwargs) -> Library:
        return Library.at(index_dir or tmp_path / "idx", fake_settings, embedder=fake_embedder, **kwargs)

    return make


@pytest.fixture(scope="session")
def builtin_as_beir(tmp_path_factory) -> Path:
    """The built-in articles' paragraphs as a small BEIR-shaped folder (corpus.jsonl, one query):
    the source the benchmarks' synthetic library and embedder draw their words from."""
    import json

    from articleqa.library import CORPUS
    from articleqa.text.sentences import normalize

    folder = tmp_path_factory.mktemp("beir")
    docs = []
    for path in sorted(CORPUS.iterdir()):
        for paragraph in normalize(path.read_text(encoding="utf-8")).split("\n\n"):
            if paragraph.count(". ") >= 2:
                docs.append({"_id": str(len(docs)), "title": path.stem, "text": paragraph.replace("\n", " ")})
    (folder / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (folder / "queries.jsonl").write_text(json.dumps({"_id": "1", "text": "What do exosomes carry?"}) + "\n")
    return folder
