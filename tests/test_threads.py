"""A question's retrieval runs on one FAISS thread and one BLAS thread, and gives them back."""

from __future__ import annotations

import faiss
import numpy as np
from threadpoolctl import threadpool_info

from articleqa.threads import single_threaded


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_single_threaded_limits_faiss_and_blas_and_restores_them():
    np.ones((4, 4)) @ np.ones((4, 4))  # BLAS is loaded
    faiss.omp_set_num_threads(2)
    before = blas_threads()
    with single_threaded():
        assert faiss.omp_get_max_threads() == 1
        assert blas_threads() and all(n == 1 for n in blas_threads())
        with single_threaded():  # nested calls (an engine inside a search) keep the limit
            assert faiss.omp_get_max_threads() == 1
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == 2
    assert blas_threads() == before


# Run in a fresh interpreter: once the main thread has set OpenBLAS's thread count, OpenBLAS ignores
# the setting from other threads, so the scenario must start where no thread has set it yet (as in
# a server, whose questions run on request threads).
AT_ONCE = """
import threading
import faiss  # both BLAS libraries loaded before the first count
import numpy as np
from threadpoolctl import threadpool_info
from articleqa.threads import single_threaded

def blas():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]

np.ones((4, 4)) @ np.ones((4, 4))
before = blas()
first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
seen = []

def first():
    with single_threaded():
        first_in.set()
        second_in.wait(5)
    first_out.set()

def second():
    first_in.wait(5)
    with single_threaded():
        second_in.set()
        first_out.wait(5)
        seen.append(blas())

threads = [threading.Thread(target=first), threading.Thread(target=second)]
for t in threads:
    t.start()
for t in threads:
    t.join(10)
print(seen, before, blas())
assert seen and all(n == 1 for n in seen[0]), seen
assert blas() == before
"""


def test_threads_inside_at_once_keep_the_limit_until_the_last_leaves():
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", AT_ONCE], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
