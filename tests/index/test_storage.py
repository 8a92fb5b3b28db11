"""Many processes, one index: real processes killed mid-write, concurrent writers and readers,
the write lock, and readers picking up a newer state without a restart."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from articleqa.index import storage
from articleqa.index.snapshot import Index
from conftest import ARTICLES, PROCS
from waiting import open_gate, wait_for


def run(*args, env=None, timeout=120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(PROCS), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def start(spawn):
    """start(*args): `procs.py ARGS` in a process of its own, stopped when the test ends."""

    def start(*args, env=None) -> subprocess.Popen:
        return spawn(
            [sys.executable, str(PROCS), *map(str, args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )

    return start


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[str, str]:
    """The output of a process that is expected to end by itself, once it did."""
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, err[-3000:]
    return out, err


def consistent(folder: Path) -> set[str]:
    """Open the index and check it is whole: every article's passages are all there and found."""
    index = Index.load(folder)
    counts = index.passage_counts()
    assert sum(counts.values()) == len(index)
    for article_id in index.articles:
        chunks = index.chunks_of(article_id)
        assert [c.ordinal for c in chunks] == list(range(counts[article_id]))
        assert all(index.chunk_at(c.key) == c for c in chunks)
    names = {p.name for p in (folder / "segments").iterdir()} if (folder / "segments").exists() else set()
    assert {s.name for s in index.segments} <= names
    return set(index.articles)


BASE = {"bicycle-chain", "green-tea", "notes/sourdough"}
POINTS = ["segment-half", "segment-written", "manifest-written", "published"]


@pytest.mark.parametrize("first,second", list(zip(POINTS, POINTS[1:] + POINTS[:1])))
def test_a_writer_killed_twice_in_a_row_leaves_a_whole_state_each_time(built, tmp_path, first, second):
    folder = built.index_dir
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    result = run("add", folder, kites, env={"ARTICLEQA_CRASH_AT": first})
    assert result.returncode == -signal.SIGKILL, result.stderr
    after_first = consistent(folder)
    assert after_first == (BASE | {"kites"} if first == "published" else BASE)
    result = run("add", folder, ARTICLES / "volcano.html", env={"ARTICLEQA_CRASH_AT": second})
    assert result.returncode == -signal.SIGKILL, result.stderr
    after_second = consistent(folder)
    assert after_second == (after_first | {"volcano"} if second == "published" else after_first)
    # The next write finishes and clears whatever the killed ones left.
    assert run("add", folder, kites).returncode == 0
    assert consistent(folder) >= BASE | {"kites"}
    manifest = storage.read_manifest(folder)
    leftovers = {p.name for p in (folder / "segments").iterdir()} - {s["name"] for s in manifest["segments"]}
    assert not leftovers
    assert not [p for p in folder.iterdir() if p.name.startswith(".tmp")]


def test_a_build_killed_at_random_moments_keeps_what_it_committed(tmp_path, start):
    folder = tmp_path / "idx"
    sources = tmp_path / "articles"
    sources.mkdir()
    for i in range(40):
        body = " ".join(f"Sentence {j} of article {i} is about topic {i % 7} and item {j}." for j in range(12))
        (sources / f"a{i:02d}.md").write_text(f"# Article {i}\n\n{body}\n")
    manifest = folder / storage.MANIFEST

    def published() -> bytes:
        return manifest.read_bytes() if manifest.exists() else b""  # replaced whole, never half-written

    seen = []
    # Each build is killed a moment after it has published a commit of its own (not after a fixed
    # time from its start, which on a slow machine passes before it has even imported): the
    # moments vary, and each kill lands in the middle of the writing, wherever that has got to.
    # (A build killed before the library's first commit: test_a_first_build_killed_before_*.)
    for delay in (0.0, 0.01, 0.03, 0.07, 0.15):
        before = published()
        proc = start("add", folder, sources, "--flush", "4")
        wait_for(
            lambda before=before, proc=proc: published() != before or proc.poll() is not None,
            120,
            "the build to publish a commit (or to finish)",
            interval=0.005,
        )
        time.sleep(delay)  # not a wait for anything: where in the writing the kill lands
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        if manifest.exists():
            seen.append(len(consistent(folder)))
    assert run("add", folder, sources).returncode == 0
    assert len(consistent(folder)) == 40
    assert seen == sorted(seen)  # each run resumed where the last one stopped, nothing lost


@pytest.mark.parametrize("point", ["segment-half", "segment-written", "manifest-written"])
def test_a_first_build_killed_before_its_first_commit_can_be_run_again(tmp_path, point):
    folder = tmp_path / "idx"
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    result = run("add", folder, kites, env={"ARTICLEQA_CRASH_AT": point})
    assert result.returncode == -signal.SIGKILL, result.stderr
    assert not (folder / storage.MANIFEST).exists()
    result = run("add", folder, kites)  # an empty library with leftovers, not a damaged one
    assert result.returncode == 0, result.stderr[-2000:]
    assert consistent(folder) == {"kites"}


def test_many_writers_and_readers_at_once_lose_nothing_and_never_fail(built, tmp_path, start):
    folder = built.index_dir
    gate, writers_done = tmp_path / "gate", tmp_path / "writers-done"
    gate.mkdir()
    # All start together once all are ready, and the readers read (12 s at least) until every
    # writer is done, so the reading overlaps all of the writing however slow the machine is.
    writers = [start("churn", folder, f"w{i}", 12, "--gate", gate) for i in range(3)]
    readers = [start("read", folder, 12, "--gate", gate, "--until", writers_done) for _ in range(3)]
    open_gate(gate, writers + readers)
    for proc in writers:
        json.loads(finish(proc)[0])
    writers_done.touch()
    stats = [json.loads(finish(proc)[0]) for proc in readers]
    assert sum(s["loads"] for s in stats) > 20
    assert [s["failures"] for s in stats] == [0, 0, 0], [s["errors"] for s in stats]
    # Each writer kept every second article of its own; all of them are there.
    final = consistent(folder)
    for i in range(3):
        assert {f"w{i}-{n}" for n in range(1, 12, 2)} <= final
        assert not {f"w{i}-{n}" for n in range(0, 12, 2)} & final


def test_two_processes_adding_at_the_same_moment_both_get_in(built, tmp_path, start):
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    gate = tmp_path / "gate"
    gate.mkdir()
    a = start("add", built.index_dir, kites, "--gate", gate)
    b = start("add", built.index_dir, ARTICLES / "volcano.html", "--gate", gate)
    open_gate(gate, [a, b])
    for proc in (a, b):
        finish(proc, timeout=120)
    assert consistent(built.index_dir) == BASE | {"kites", "volcano"}


def test_a_second_writer_waits_for_the_lock_then_gives_up_naming_the_holder(built, tmp_path, start):
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    with storage.write_lock(built.index_dir):
        result = run("add", built.index_dir, kites, "--timeout", "2")
    assert result.returncode == 2
    assert f"pid {os.getpid()}" in result.stderr and "try again" in result.stderr
    assert "kites" not in consistent(built.index_dir)
    # A writer that waits long enough gets its turn.
    waiting = tmp_path / "waiting"
    with storage.write_lock(built.index_dir):
        proc = start("add", built.index_dir, kites, "--timeout", "120", "--waiting", waiting)
        wait_for(lambda: waiting.exists() or proc.poll() is not None, 120, "the writer to reach the lock")
        with pytest.raises(subprocess.TimeoutExpired):  # at the lock: still waiting a second later
            proc.wait(1.0)
    finish(proc, timeout=120)
    assert "kites" in consistent(built.index_dir)


def test_a_running_reader_sees_another_process_change_without_a_restart(built, tmp_path):
    kites = tmp_path / "kites.md"
    kites.write_text("# Kites\n\nA kite flies best in a steady wind.\n")
    assert not built.search("steady wind kite", mode="lexical") or all(
        h.article.id != "kites" for h in built.search("steady wind kite", mode="lexical")
    )
    assert run("add", built.index_dir, kites).returncode == 0
    assert built.search("steady wind kite", k=1, mode="lexical")[0].article.id == "kites"
    assert "kites" in {a.id for a in built.articles()}
