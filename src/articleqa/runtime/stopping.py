"""Stopping promptly: Ctrl+C or SIGTERM ends the command within seconds, whatever it is doing.

Two halves. A long piece of work (embedding, parsing, fetching) calls `checkpoint()` between
small steps; a caller that can be stopped from another thread (the server's write lane) gives
it a check with `stop_points`, which raises Stopped there. And the command line's `run` installs
a watchdog that ends the process if it is still alive `grace` seconds after the signal, with
exit status 130. Ending it then abandons the change in progress; the index survives that, as it
survives a crash, because a change is published by one rename of its manifest (storage.py) and
leftovers are collected by the next write.

The watchdog cannot rely on the main thread (it may be inside a long C call) nor on any Python
thread (a C call that keeps the GIL, as parts of torch's ONNX export do, stops them all). So the
signal reaches a small process of its own, through the byte CPython's C handler writes to the
wakeup fd: it tells a thread here to end the process at `grace`, and kills the process itself
if that thread has not been able to run a moment later.
"""

from __future__ import annotations

import contextlib
import faulthandler
import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

GRACE = 4.0  # seconds from the signal to the end of the process, at the most
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_check: ContextVar[Callable[[], None] | None] = ContextVar("articleqa_stop_check", default=None)
_last_words: list[Callable[[], None]] = []
_installed = False
_control: int | None = None
_interrupted = False


def checkpoint() -> None:
    """A safe place to stop: raises what the current `stop_points` check raises, if anything."""
    check = _check.get()
    if check is not None:
        check()


@contextmanager
def stop_points(check: Callable[[], None]) -> Iterator[None]:
    """Within this block, every `checkpoint()` of this thread calls `check` (which raises to stop)."""
    token = _check.set(check)
    try:
        yield
    finally:
        _check.reset(token)


def at_abandon(callback: Callable[[], None]) -> None:
    """Run `callback` (quick cleanup: a temporary folder) if the process is ended by the watchdog."""
    _last_words.append(callback)


def interrupted() -> bool:
    """Whether a stop signal (Ctrl+C, SIGTERM) has come."""
    return _interrupted


def exit_now(code: int) -> None:
    """End the process now, its output flushed, skipping the interpreter's teardown."""
    with contextlib.suppress(Exception):
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(code)


def abandon(message: str, code: int = 130) -> None:
    """End the process now, without waiting for other threads: the change in progress is dropped
    (never half-published). Cleanup registered with `at_abandon` runs first."""
    for callback in reversed(_last_words):
        with contextlib.suppress(Exception):
            callback()
    with contextlib.suppress(Exception):
        print(message, flush=True)
        sys.stderr.flush()
    os._exit(code)


def install(grace: float = GRACE) -> None:
    """From now on SIGINT and SIGTERM raise KeyboardInterrupt in the main thread (once), and the
    process ends at the latest `grace` seconds after the first one (at once after a second one).
    SIGUSR1 prints where every thread is, to stderr. Call once, from the main thread of a command."""
    global _installed, _control
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    wake_r, wake_w = os.pipe()  # C signal handler -> keeper process
    told_r, told_w = os.pipe()  # keeper -> the thread here: "now" (grace over, or a second signal)
    control_r, control_w = os.pipe()  # here -> keeper: folders to remove if it has to kill
    os.set_blocking(wake_w, False)
    keeper = [sys.executable, "-I", "-S", "-c", _KEEPER, str(os.getpid()), str(grace)]
    subprocess.Popen([*keeper, str(wake_r), str(told_w), str(control_r)], pass_fds=(wake_r, told_w, control_r))
    for fd in (wake_r, told_w, control_r):
        os.close(fd)  # the keeper's ends (this process's ends are not inherited by others)
    _control = control_w
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    if hasattr(signal, "SIGUSR1"):
        faulthandler.register(signal.SIGUSR1, all_threads=True)
    threading.Thread(target=_watch, args=(told_r,), name="articleqa-stop-watchdog", daemon=True).start()
    _installed = True


def remove_on_abandon(path: str | os.PathLike) -> None:
    """Remove this folder if the process is ended by the watchdog (a server's upload folder)."""
    at_abandon(lambda: shutil.rmtree(path, ignore_errors=True))
    if _control is not None:
        with contextlib.suppress(OSError):
            os.write(_control, os.fsencode(path) + b"\n")


def _interrupt(signum, frame) -> None:
    # Once: a second signal is the watchdog's to act on (it ends the process at once), not a
    # second KeyboardInterrupt in the middle of the cleanup the first one started.
    global _interrupted
    if not _interrupted:
        _interrupted = True
        raise KeyboardInterrupt


def _watch(told: int) -> None:
    """End the process when the keeper says so (grace over, or a second signal)."""
    if os.read(told, 1):  # nothing: the keeper is gone, and this thread with it
        abandon("articleqa: stopped (the change in progress was abandoned; the index keeps its last complete state)")


# The keeper: a separate, tiny Python process (no site, no articleqa) that holds the read end of
# the wakeup fd. It ignores the signals itself (Ctrl+C reaches the whole process group).
_KEEPER = r"""
import os, select, shutil, signal, sys, time
for s in (signal.SIGINT, signal.SIGTERM):
    signal.signal(s, signal.SIG_IGN)
parent, grace = int(sys.argv[1]), float(sys.argv[2])
wake, told, control = (int(a) for a in sys.argv[3:6])
stops = {int(signal.SIGINT), int(signal.SIGTERM)}
folders, pending, first = [], b"", None
while True:
    left = None if first is None else first + grace - time.monotonic()
    if left is not None and left <= 0:
        break
    ready = select.select([wake, control], [], [], left)[0]
    if control in ready:
        data = os.read(control, 65536)
        if not data:
            sys.exit(0)  # the process ended by itself
        pending += data
        *lines, pending = pending.split(b"\n")
        folders += [os.fsdecode(line) for line in lines if line]
    if wake in ready:
        data = os.read(wake, 64)
        if not data:
            sys.exit(0)
        n = sum(b in stops for b in data)
        if n and first is None:
            first, n = time.monotonic(), n - 1
        if n:
            break  # a second Ctrl+C: now
os.write(told, b"!")  # the thread in the process ends it, with its own cleanup
deadline = time.monotonic() + 1.0
while time.monotonic() < deadline:
    if select.select([control], [], [], deadline - time.monotonic())[0] and not os.read(control, 65536):
        sys.exit(0)  # it did
for folder in folders:
    shutil.rmtree(folder, ignore_errors=True)
try:
    os.kill(parent, signal.SIGKILL)  # stuck where no Python thread can run
except ProcessLookupError:
    sys.exit(0)
os.write(1, b"articleqa: stopped (killed: it did not stop by itself; the index keeps its last complete state)\n")
"""
