"""A question's retrieval runs on one FAISS thread and one BLAS thread, and gives them back."""

from __future__ import annotations

import inspect
import subprocess
import sys

from articleqa.runtime.threads import single_threaded


def test_single_threaded_limits_faiss_and_blas_and_restores_them():
    # In a process of its own: OpenBLAS ignores a limit set from a thread other than the first
    # that ever set one, and earlier tests in this process may have set one from a server thread.
    body = inspect.getsource(_limits_and_restores)
    script = f"{body}\n_limits_and_restores()\nprint('ok')"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def _limits_and_restores():
    import faiss
    import numpy as np
    from threadpoolctl import threadpool_info

    from articleqa.runtime.threads import single_threaded

    def blas_threads() -> list[int]:
        return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS is loaded
    faiss.omp_set_num_threads(2)
    before = blas_threads()
    with single_threaded():
        assert faiss.omp_get_max_threads() == 1
        assert blas_threads() and all(n == 1 for n in blas_threads()), blas_threads()
        with single_threaded():  # nested calls (an engine inside a search) keep the limit
            assert faiss.omp_get_max_threads() == 1
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == 2
    assert blas_threads() == before


class RecordingController:
    """Stands in for threadpoolctl's controller: records when the limit is set and lifted. (OpenBLAS
    itself may ignore a limit set or lifted from a thread other than the first that set one, so
    what is checked here is articleqa's counting, not OpenBLAS's.)"""

    def __init__(self):
        self.events: list[str] = []

    def limit(self, **kwargs):
        self.events.append("set")
        controller = self

        class Limit:
            def restore_original_limits(self):
                controller.events.append("lifted")

        return Limit()


def test_threads_inside_at_once_keep_the_limit_until_the_last_leaves(monkeypatch):
    import threading

    from articleqa.runtime import threads

    recorder = RecordingController()
    monkeypatch.setattr(threads, "_blas", lambda: recorder)
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen, waits = [], []
    # Each step waits for the other thread's (generous deadlines: a busy machine may not run a
    # thread for seconds); a wait that ran out is recorded, so it fails here and not as a puzzle.

    def first():
        with single_threaded():
            first_in.set()
            waits.append(("second in", second_in.wait(60)))
        first_out.set()

    def second():
        waits.append(("first in", first_in.wait(60)))
        with single_threaded():
            second_in.set()
            waits.append(("first out", first_out.wait(60)))
            seen.append(list(recorder.events))  # the first thread has left

    workers = [threading.Thread(target=first), threading.Thread(target=second)]
    for t in workers:
        t.start()
    for t in workers:
        t.join(120)
    assert not any(t.is_alive() for t in workers) and all(ok for _, ok in waits), waits
    assert seen == [["set"]]  # set once, still held for the thread inside
    assert recorder.events == ["set", "lifted"] and threads._inside == 0
