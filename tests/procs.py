"""Run as a separate process by the storage tests: a writer or a reader of one index folder.

python procs.py add INDEX FILE... [--timeout S] [--store URI]   add files (fake embedder), print the change
python procs.py churn INDEX PREFIX N               add and remove N articles of its own, one by one
python procs.py read INDEX SECONDS [--until FILE]  open and search in a loop for SECONDS (and until FILE
                                                   exists); print counts as JSON
python procs.py raycrash INDEX FOLDER              a Ray build (real model, one actor, a segment every 8
                                                   passages) that dies after its first commit,
                                                   then resumes; print what each embedded as JSON

Tests line processes up with files, not with the clock:
  --gate DIR      (add, churn, read) once ready to work (imported, library open), create
                  DIR/ready-PID, then wait until DIR/go exists: the test opens the gate when all are ready
  --waiting FILE  (add) create FILE when about to wait for the index's write lock
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from articleqa import Article, Library, Settings  # noqa: E402
from articleqa.errors import ArticleQAError  # noqa: E402
from articleqa.index.snapshot import Index  # noqa: E402
from articleqa.settings import StorageSettings  # noqa: E402
from fakes import FakeEmbedder  # noqa: E402


def library(folder: str, timeout: float = 600.0, flush: int = 20_000, store: str | None = None) -> Library:
    storage = StorageSettings(lock_timeout=timeout, flush_passages=flush, store=store)
    return Library.at(Path(folder), Settings(model=FakeEmbedder.name, storage=storage), embedder=FakeEmbedder())


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def positional(argv: list[str]) -> list[str]:
    """The arguments that are neither an option nor an option's value."""
    values = {argv[i + 1] for i, a in enumerate(argv[:-1]) if a.startswith("--")}
    return [a for a in argv if not a.startswith("--") and a not in values]


def gate(argv: list[str]) -> None:
    """With --gate DIR: say ready, then wait for the test to open the gate (DIR/go)."""
    folder = option(argv, "--gate")
    if folder is None:
        return
    (Path(folder) / f"ready-{os.getpid()}").touch()
    deadline = time.monotonic() + 600
    while not (Path(folder) / "go").exists():
        if time.monotonic() > deadline:
            raise SystemExit("the gate was never opened")
        time.sleep(0.005)


def say_when_waiting_for_the_lock(path: str) -> None:
    """Create `path` when this process is about to wait for an index's write lock."""
    from filelock import FileLock

    from articleqa.index.storage import LOCK

    acquire = FileLock.acquire

    def announced(self, *args, **kwargs):
        if Path(self.lock_file).name == LOCK:
            Path(path).touch()
        return acquire(self, *args, **kwargs)

    FileLock.acquire = announced


def main(argv: list[str]) -> int:
    command, folder = argv[0], argv[1]
    if command == "add":
        timeout = float(option(argv, "--timeout") or 600.0)
        flush = int(option(argv, "--flush") or 20_000)
        store = option(argv, "--store")
        paths = positional(argv[2:])
        lib = library(folder, timeout, flush, store)
        if option(argv, "--waiting"):
            say_when_waiting_for_the_lock(option(argv, "--waiting"))
        gate(argv)
        try:
            change = lib.add(*paths)
        except ArticleQAError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"added": list(change.added), "replaced": list(change.replaced)}))
        return 0
    if command == "churn":
        prefix, n = argv[2], int(argv[3])
        lib = library(folder)
        gate(argv)
        for i in range(n):
            text = f"Churn article {prefix} number {i}. It talks about {prefix} things, item {i}."
            lib.add(Article(id=f"{prefix}-{i}", title=f"{prefix} {i}", text=text, source="churn"))
            if i % 2:
                lib.remove(f"{prefix}-{i - 1}")
        print(json.dumps(sorted(lib.index.articles)))
        return 0
    if command == "read":
        stop_file = option(argv, "--until")
        loads = failures = searches = 0
        errors: list[str] = []
        embedder = FakeEmbedder()
        gate(argv)
        until = time.monotonic() + float(argv[2])
        while time.monotonic() < until or (stop_file is not None and not Path(stop_file).exists()):
            try:
                index = Index.load(folder)
                loads += 1
                lib = Library(index, Settings(model=FakeEmbedder.name), index_dir=Path(folder), embedder=embedder)
                lib.search("churn things item", k=5)
                lib.search("churn things", k=3, mode="lexical")
                searches += 1
            except Exception as exc:  # every failure counts: the point is that there are none
                failures += 1
                errors.append(f"{type(exc).__name__}: {exc}")
        print(json.dumps({"loads": loads, "searches": searches, "failures": failures, "errors": errors[:5]}))
        return 0
    if command == "raycrash":
        return ray_crash(folder, argv[2])
    raise SystemExit(f"unknown command {command}")


def ray_crash(folder: str, articles: str) -> int:
    from dataclasses import replace

    from articleqa.embed.ray import RayEmbedder
    from articleqa.index import writer

    settings = Settings()
    settings = replace(settings, storage=replace(settings.storage, flush_passages=8))
    embedder = RayEmbedder(settings.model, actors=1)  # one actor: resuming is the point, not spreading
    commit, commits = writer.commit, []

    def dies_after_the_first(*args, **kwargs):
        if commits:
            raise KeyboardInterrupt("the build process died")
        commits.append(commit(*args, **kwargs))
        return commits[-1]

    writer.commit = dies_after_the_first
    try:
        Library.at(Path(folder), settings, embedder=embedder).sync([articles])
    except KeyboardInterrupt:
        pass
    writer.commit = commit
    first = len(commits[0]) if commits else 0
    change = Library.at(Path(folder), settings, embedder=embedder).sync([articles])
    lib = Library.load(Path(folder))
    total, articles = len(lib.index), len(lib.index.articles)
    print(json.dumps({"first": first, "embedded_after": change.embedded, "total": total, "articles": articles}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
