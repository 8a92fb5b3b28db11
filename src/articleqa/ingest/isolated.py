"""Reading files and links in worker processes, so a runaway input cannot hold up anything else.

Each read runs in a worker with a time budget for the whole of it (a link's fetch, however slowly
the server sends and however many redirects, then the parse), a memory budget, progress by page,
and a stop that kills the worker: a parse inside a C library (a 3,000-page PDF in pdfium) cannot
be interrupted any other way. A worker is a fresh interpreter (about 0.1 s to start);
an idle one is kept for the next read.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

from articleqa.errors import ArticleQAError, UnusableFile
from articleqa.runtime.stopping import checkpoint
from articleqa.schema import Article
from articleqa.settings import Limits

log = logging.getLogger("articleqa")

Report = Callable[[str], None]  # what a read is doing: "page 12 of 3,000"
_POLL = 0.05  # seconds between looks at a running read (its messages, its clock, its memory)
_RESERVE = 0.25  # of a link's seconds, kept for stopping its worker and saying why: it ends within them
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True)
class Budget:
    """What one read may cost (Limits holds the defaults a deployment sets)."""

    fetch_seconds: float
    parse_seconds: float
    memory_mb: float

    @classmethod
    def of(cls, limits: Limits) -> Budget:
        return cls(limits.link_seconds, limits.parse_seconds, limits.parse_memory_mb)


class Workers:
    """Worker processes that read files and links, one read per worker at a time; an instance may
    be shared by threads (each read takes an idle worker or starts one)."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    def read_file(
        self, path: str | Path, *, article_id: str, max_document_bytes: int | None, report: Report | None = None
    ) -> Article:
        from articleqa.ingest.files import SkipFile

        job = ("file", {"path": str(path), "article_id": article_id, "max_document_bytes": max_document_bytes})
        return self._run(job, SkipFile, report)

    def parse(self, raw: bytes, *, name: str, article_id: str, source: str, report: Report | None = None) -> Article:
        from articleqa.ingest.files import SkipFile

        job = ("bytes", {"raw": raw, "name": name, "article_id": article_id, "source": source})
        return self._run(job, SkipFile, report)

    def read_url(self, url: str, *, allow_private: bool, max_bytes: int, report: Report | None = None) -> Article:
        timeout = self.budget.fetch_seconds
        job = ("url", {"url": url, "allow_private": allow_private, "max_bytes": max_bytes, "timeout": timeout})
        return self._run(job, UnusableFile, report, name=url.strip())

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for worker in idle:
            worker.stop()

    # -- one read ---------------------------------------------------------------------------

    def _run(self, job: tuple, refusal: type[UnusableFile], report: Report | None, name: str = "") -> Article:
        begun = time.monotonic()  # a link's whole time counts from here, the worker's start included
        worker = self._take()
        keep = False
        try:
            article = self._wait(worker, job, refusal, report, name, begun)
            keep = True
            return article
        except UnusableFile as exc:
            keep = worker.alive() and not getattr(exc, "killed", False)
            raise
        finally:
            if keep:
                with self._lock:
                    self._idle.append(worker)
            else:
                worker.stop()

    def _wait(
        self,
        worker: _Worker,
        job: tuple,
        refusal: type[UnusableFile],
        report: Report | None,
        name: str,
        begun: float,
    ) -> Article:
        budget = self.budget
        fetching = job[0] == "url"
        prefix = f"{name}: " if name else ""
        worker.send(job)
        start = begun
        base = worker.resident() or 0
        where = ""  # the last progress, said when a budget ends the read
        while True:
            checkpoint()  # a stop or a cancel: the worker goes (finally in _run)
            message = worker.receive(_POLL)
            if message is not None:
                what = message[0]
                if what == "done":
                    return message[1]
                if what == "refused":
                    raise refusal(message[1])
                if what == "fetched":  # the fetch is over; the parse has a budget of its own
                    fetching, start = False, time.monotonic()
                elif what == "page":
                    where = f" (at page {message[1]:,} of {message[2]:,})"
                    if report is not None:
                        report(f"reading page {message[1]:,} of {message[2]:,}")
                continue
            if not worker.alive():
                raise _killed(refusal, f"{prefix}the reader stopped unexpectedly ({worker.ended()}){where}")
            elapsed = time.monotonic() - start
            if fetching and elapsed > budget.fetch_seconds - _RESERVE:
                raise _killed(
                    refusal,
                    f"{prefix}not fully sent within the {budget.fetch_seconds:.0f} s a link may take "
                    "(Limits.link_seconds)",
                )
            if not fetching and elapsed > budget.parse_seconds:
                raise _killed(
                    refusal,
                    f"{prefix}took longer than {budget.parse_seconds:.0f} s to read{where} "
                    "(Limits.parse_seconds, --parse-seconds)",
                )
            grown = (worker.resident() or base) - base
            if grown > budget.memory_mb * 2**20:
                raise _killed(
                    refusal,
                    f"{prefix}needed more than {budget.memory_mb:.0f} MB of memory to read{where} "
                    "(Limits.parse_memory_mb)",
                )

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.alive():
                    return worker
        return _Worker.start()


def _killed(refusal: type[UnusableFile], message: str) -> UnusableFile:
    exc = refusal(message)
    exc.killed = True  # the worker is in the middle of something: it goes
    return exc


class _Worker:
    """One worker process and its end of the pipe."""

    def __init__(self, process, conn) -> None:
        self.process, self.conn = process, conn

    @classmethod
    def start(cls) -> _Worker:
        """A fresh interpreter (`python -m articleqa.ingest.isolated FD`), not a fork: a fork of a
        server with threads could copy a held lock, and multiprocessing would re-run the caller's
        script in the child."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[2])  # where `articleqa` is importable from
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH", "")) if p)
        try:
            with theirs:
                process = subprocess.Popen(
                    [sys.executable, "-m", "articleqa.ingest.isolated", str(theirs.fileno())],
                    pass_fds=[theirs.fileno()],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    env=env,
                    start_new_session=True,  # Ctrl+C goes to the caller, which stops its reads
                )
        except OSError as exc:
            ours.close()
            raise ArticleQAError(f"could not start a process to read files in ({exc})") from exc
        return cls(process, Connection(ours.detach()))

    def send(self, job: tuple) -> None:
        try:
            self.conn.send(job)
        except (OSError, EOFError):
            pass  # it died: the wait below says so

    def receive(self, timeout: float):
        try:
            if self.conn.poll(timeout):
                return self.conn.recv()
        except (OSError, EOFError):
            time.sleep(timeout)  # the pipe is closed: the process is ending, and alive() will say so
        return None

    def alive(self) -> bool:
        return self.process.poll() is None

    def ended(self) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1)
        code = self.process.returncode
        if code is not None and code < 0:
            with contextlib.suppress(ValueError):
                return f"signal {signal.Signals(-code).name}"
        return f"exit status {code}"

    def resident(self) -> int | None:
        """The worker's resident memory in bytes (None when it is gone)."""
        try:
            with open(f"/proc/{self.process.pid}/statm", "rb") as f:
                return int(f.read().split()[1]) * _PAGE
        except (OSError, ValueError, IndexError):
            return None

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.close()
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


_shared_lock = threading.Lock()


# -- inside the worker -------------------------------------------------------------------------


def _serve(conn) -> None:
    """Read jobs until the pipe closes; every outcome goes back as a message."""
    from articleqa.ingest import documents, files, web

    _end_with_parent()
    logging.getLogger("articleqa").setLevel(logging.ERROR)  # the parent logs what is skipped

    def page(number: int, pages: int) -> None:
        conn.send(("page", number, pages))

    while True:
        try:
            kind, job = conn.recv()
        except (EOFError, OSError):
            return
        try:
            with documents.reporting_pages(page):
                if kind == "file":
                    article = files.read_file(job.pop("path"), **job)
                elif kind == "bytes":
                    article = files.parse(job.pop("raw"), **job)
                else:
                    fetched = web.fetch(job["url"], **{k: v for k, v in job.items() if k != "url"})
                    conn.send(("fetched", len(fetched.data)))
                    article = web.read_fetched(job["url"], fetched)
            reply = ("done", article)
        except UnusableFile as exc:
            reply = ("refused", str(exc))
        except RecursionError:
            reply = ("refused", "nested too deeply to read")
        except MemoryError:
            reply = ("refused", "too large to read in memory")
        except Exception as exc:  # noqa: BLE001 - one unreadable input is refused, never the worker's end
            reply = ("refused", f"could not be read ({type(exc).__name__}: {exc})")
        try:
            conn.send(reply)
        except (OSError, EOFError):
            return


_shared: dict[Budget, Workers] = {}


def workers_for(limits: Limits) -> Workers | None:
    """The process's workers for these limits (None when reading in-process is asked for)."""
    if not limits.isolate:
        return None
    budget = Budget.of(limits)
    with _shared_lock:
        if not _shared:
            atexit.register(_close_all)
        return _shared.setdefault(budget, Workers(budget))


def _close_all() -> None:
    """Idle workers end with the process (they would see the pipe close anyway)."""
    with _shared_lock:
        pools = list(_shared.values())
    for pool in pools:
        pool.close()


def _end_with_parent() -> None:
    """This worker ends when the process that started it is gone, however it went: a thread
    watches for the worker being handed to another parent. (Linux's parent-death signal would
    follow the starting thread, not the process: a server's thread pool ends threads.)"""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.25)
        os._exit(1)

    threading.Thread(target=watch, name="articleqa-orphan-watch", daemon=True).start()


if __name__ == "__main__":
    _serve(Connection(int(sys.argv[1])))
