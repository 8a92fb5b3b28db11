"""Waiting on what a test can see, never on the clock: a condition with its own deadline, a
process's output read as it comes, and processes stopped whatever happens to the test.

A busy machine (two cores, the whole suite at once) makes every step slower, so each wait has a
generous deadline of its own, and passes the moment its condition holds: a fast run stays fast.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not come true before its deadline."""


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    detail: Callable[[], str] | None = None,
) -> T:
    """Call `condition` until it returns something true, and return that; after `timeout`
    seconds raise WaitTimeout saying what was awaited (and `detail()`, e.g. a process's output).
    An exception from `condition` ends the wait at once (it says more than a timeout would)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= deadline:
            message = f"waited {timeout:g} s for {what}, in vain"
            if detail is not None:
                message += f"\n{detail()}"
            raise WaitTimeout(message)
        time.sleep(interval)


class Output:
    """What a process writes to one pipe, read line by line on a thread of its own: the pipe
    never fills (a process writing to a full pipe stops), and a test can wait for a line."""

    def __init__(self, stream: IO[str]) -> None:
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.closed = threading.Event()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream: IO[str]) -> None:
        try:
            for line in stream:
                with self._lock:
                    self._lines.append(line)
        except (OSError, ValueError):  # the pipe went with the process
            pass
        finally:
            self.closed.set()

    @property
    def text(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def tail(self, chars: int = 3000) -> str:
        return f"its output ends:\n{self.text[-chars:]}"

    def line(self, predicate: Callable[[str], object], timeout: float, what: str) -> str:
        """The first line `predicate` holds for; WaitTimeout when none came before the deadline,
        AssertionError as soon as the pipe closed (the process ended) without one."""

        def found() -> str | None:
            ended = self.closed.is_set()  # read before the lines: none can come after
            with self._lock:
                for line in self._lines:
                    if predicate(line):
                        return line
            if ended:
                raise AssertionError(f"the output ended without {what}; {self.tail()}")
            return None

        return wait_for(found, timeout, what, detail=self.tail)


def open_gate(gate: Path, procs: list[subprocess.Popen], timeout: float = 120) -> None:
    """Once every process started with `procs.py ... --gate GATE` is ready (imported, its library
    open: it created GATE/ready-PID), let them all go at once (GATE/go): they start together
    however long each took to start."""
    wait_for(
        lambda: len(list(gate.glob("ready-*"))) == len(procs) or any(p.poll() is not None for p in procs),
        timeout,
        f"{len(procs)} processes to be ready",
    )
    ended = [p for p in procs if p.poll() is not None]
    assert not ended, [p.communicate(timeout=30)[1][-2000:] for p in ended]
    (gate / "go").touch()


def stop(proc: subprocess.Popen, *, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
    """End a process a test started: `sig`, then SIGKILL if it is still there after `timeout`
    seconds; reaped either way. A process that already ended is only reaped."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
            proc.wait(timeout)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            proc.kill()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:  # unkillable (stuck in the kernel): nothing more to do
        pass
