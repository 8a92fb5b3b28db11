"""Stopping promptly: checkpoints raise inside stop_points, and the watchdog ends a stuck process."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from articleqa.errors import Stopped
from articleqa.runtime import stopping
from waiting import Output


def test_a_checkpoint_raises_only_inside_stop_points():
    stopping.checkpoint()  # nothing to stop: a no-op

    def check():
        raise Stopped("cancelled: tea.md was not added")

    with stopping.stop_points(check), pytest.raises(Stopped, match="tea.md"):
        stopping.checkpoint()
    stopping.checkpoint()  # the check went with its block


def test_checks_belong_to_their_thread():
    import threading

    seen = []
    with stopping.stop_points(lambda: seen.append("main")):
        other = threading.Thread(target=stopping.checkpoint)
        other.start()
        other.join()
        stopping.checkpoint()
    assert seen == ["main"]  # the other thread's checkpoint did not call this thread's check


# A process that will not stop by itself: it swallows every KeyboardInterrupt and carries on.
# With "gil", its main thread sits in a C call that keeps the GIL: no Python thread can run.
STUCK = textwrap.dedent(
    """
    import ctypes, sys, time
    from pathlib import Path
    from articleqa.runtime import stopping
    stopping.install(grace=float(sys.argv[1]))
    folder = Path(sys.argv[2])
    folder.mkdir()
    stopping.remove_on_abandon(folder)
    ready = False
    while True:
        try:  # "ready" inside the try: a signal right after it is caught too
            if not ready:
                ready = True
                print("ready", flush=True)
            if sys.argv[3] == "gil":
                ctypes.PyDLL(None).sleep(60)
            time.sleep(60)
        except KeyboardInterrupt:
            print("interrupted, carrying on", flush=True)
    """
)


def _stuck(spawn, tmp_path, grace: float, how: str = "python") -> tuple[subprocess.Popen, Output]:
    proc = spawn(
        [sys.executable, "-c", STUCK, str(grace), str(tmp_path / "uploads"), how],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    out = Output(proc.stdout)
    out.line(lambda line: line.strip() == "ready", 60, "the process to be ready")
    return proc, out


def _ended(proc: subprocess.Popen, out: Output, within: float = 30) -> str:
    """Its output once it has ended (within `within` s) and its output pipe closed (the keeper's too)."""
    proc.wait(within)
    assert out.closed.wait(within), out.tail()
    return out.text


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_the_watchdog_ends_a_process_that_does_not_stop(tmp_path, spawn, sig):
    proc, out = _stuck(spawn, tmp_path, grace=1.0)
    start = time.monotonic()
    proc.send_signal(sig)
    text = _ended(proc, out)
    took = time.monotonic() - start
    assert proc.returncode == 130, text
    assert "interrupted, carrying on" in text  # the main thread heard it first, as KeyboardInterrupt
    assert "articleqa: stopped (the change in progress was abandoned" in text
    assert not (tmp_path / "uploads").exists()
    assert took >= 1.0  # it had its grace


def test_a_process_stuck_in_c_code_that_keeps_the_gil_is_killed(tmp_path, spawn):
    proc, out = _stuck(spawn, tmp_path, grace=1.0, how="gil")
    proc.send_signal(signal.SIGINT)
    text = _ended(proc, out)  # the C call alone would take 60 s
    assert proc.returncode == -signal.SIGKILL, text
    assert "articleqa: stopped (killed" in text
    assert not (tmp_path / "uploads").exists()


def test_a_second_ctrl_c_ends_it_at_once(tmp_path, spawn):
    proc, out = _stuck(spawn, tmp_path, grace=120.0)
    proc.send_signal(signal.SIGINT)
    out.line(lambda line: "interrupted, carrying on" in line, 60, "the first Ctrl+C to be heard")
    proc.send_signal(signal.SIGINT)
    text = _ended(proc, out)  # far less than the 120 s grace
    assert proc.returncode == 130, text
    assert "articleqa: stopped" in text


def test_sigusr1_prints_where_every_thread_is(tmp_path, spawn):
    proc, out = _stuck(spawn, tmp_path, grace=1.0)
    proc.send_signal(signal.SIGUSR1)
    out.line(lambda line: "most recent call first" in line, 60, "a dump of the threads")
    proc.send_signal(signal.SIGTERM)
    text = _ended(proc, out)
    assert 'File "<string>"' in text  # the main thread, in the loop above


def test_a_process_that_ends_by_itself_takes_its_keeper_with_it(tmp_path):
    script = "import time\nfrom articleqa.runtime import stopping\nstopping.install()\nprint('done', flush=True)\n"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout == "done\n", proc.stderr
    # run() returned, so every holder of its output pipes is gone: the keeper too
