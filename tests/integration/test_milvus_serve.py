"""Two `articleqa serve` processes on one library whose vectors live on the real Milvus server:
an upload to one is answered by the other at once (the first question after it), a removal made
in one never comes back in either, and two writers at the same moment both get in."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

import servers
from articleqa.library import Library, seed_user_index
from conftest import DATA, PROCS
from waiting import open_gate, stop

pytestmark = [pytest.mark.slow, pytest.mark.server]
ARTICLES = DATA / "articles"


def serve(folder: Path, store: str, home: Path, spawn) -> tuple[subprocess.Popen, str]:
    """`articleqa serve` on a free port (stopped when the test ends at the latest), and the
    address it printed."""
    env = dict(os.environ, ARTICLEQA_HOME=str(home), GRADIO_ANALYTICS_ENABLED="False", HF_HUB_OFFLINE="1")
    proc, url, _ = servers.serve(["--index-dir", folder, "--store", store], env=env, spawn=spawn)
    return proc, url


def client(url):
    from gradio_client import Client

    return Client(url, verbose=False)


def titles(answer) -> list[str]:
    return [h["article"]["title"] for h in answer["hits"]]


def test_two_servers_share_one_library_on_milvus(tmp_path, milvus_server, spawn):
    from gradio_client import handle_file

    store = f"{milvus_server}/t_{uuid.uuid4().hex[:12]}"
    folder = tmp_path / "index"
    seed_user_index(folder)  # the built-in library, moved to the server by the first process
    one, url_one = serve(folder, store, tmp_path / "home1", spawn)
    two, url_two = serve(folder, store, tmp_path / "home2", spawn)
    path = tmp_path / "axolotl.md"
    path.write_text("# Axolotl care\n\nAxolotls regrow lost limbs within a few weeks, even parts of the heart.\n")
    a, b = client(url_one), client(url_two)
    b.predict(question="What are exosomes?", k=3, mode="dense", api_name="/ask")  # a server already in use
    _, status, *_ = a.predict([handle_file(str(path))], api_name="/upload")
    uploaded = time.monotonic()
    assert "added “Axolotl care”" in status
    # The first question the other server is asked after the upload finds it: no waiting, no
    # retrying. (How long that answer took depends on how busy the machine is: printed, not checked.)
    answer = b.predict(question="Can axolotls regrow limbs?", k=3, mode="dense", api_name="/ask")
    seen_after = time.monotonic() - uploaded
    assert "Axolotl care" in titles(answer), (titles(answer), seen_after)
    print(f"upload in one server answered by the other after {seen_after:.3f} s")
    status, *_ = a.predict("axolotl", api_name="/remove")  # the session that uploaded lists it
    assert "removed “Axolotl care”" in status
    for other in (b, a):
        for mode in ("dense", "hybrid"):
            answer = other.predict(question="Can axolotls regrow limbs?", k=5, mode=mode, api_name="/search")
            assert "Axolotl care" not in [h["article"]["title"] for h in answer["hits"]]
    for proc in (one, two):
        stop(proc)
    lib = Library.load(folder)
    assert "axolotl" not in lib.index.articles
    assert lib.index.remote.count() == len(lib.index)  # nothing left behind on the server


def test_two_writers_at_the_same_moment_both_get_in(tmp_path, milvus_server, spawn):
    store = f"{milvus_server}/t_{uuid.uuid4().hex[:12]}"
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    folder = tmp_path / "idx"
    first = subprocess.run(
        [sys.executable, str(PROCS), "add", str(folder), str(ARTICLES / "green-tea.md"), "--store", store],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert first.returncode == 0, first.stderr
    gate = tmp_path / "gate"
    gate.mkdir()
    procs = [
        spawn(
            [sys.executable, str(PROCS), "add", str(folder), str(path), "--gate", str(gate), "--store", store],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for path in (kites, ARTICLES / "volcano.html")
    ]
    open_gate(gate, procs)  # both write at once, however long each took to start
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    from fakes import FakeEmbedder

    lib = Library.load(folder, embedder=FakeEmbedder())
    assert {"green-tea", "kites", "volcano"} <= set(lib.index.articles)
    assert lib.index.remote.count() == len(lib.index)
    hits = lib.search("A kite flies best in a steady wind", k=3, mode="dense")
    assert hits[0].article.id == "kites"
