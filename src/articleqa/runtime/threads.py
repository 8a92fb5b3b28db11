"""Questions run on one thread each: parallel FAISS and BLAS calls stall on a busy machine.

A question's own work after encoding (a FAISS search, decoding a hundred passages' token codes,
a few small matrix products) is small. Split over threads, it waits for threads the machine
cannot run right away, and BLAS threads left spinning slow the next question's model too
(measured in docs/benchmarks.md, "Threads"). Builds keep their threads: the FAISS setting
belongs to the calling thread, and the BLAS limit is lifted on exit.

The BLAS limit is one setting for the whole process, while several questions (a server's
requests) run at once: it is counted, set by the first thread that enters and lifted by the
last that leaves, so no thread lifts it under another. (OpenBLAS may still ignore a limit set or
lifted from a thread other than the first that ever set one; the limit is a help, not a promise.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

_lock = threading.Lock()
_inside = 0
_blas_limit = None  # the threadpoolctl limit held while any thread is inside


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once (about 20 µs a limit after that)


@contextmanager
def single_threaded() -> Iterator[None]:
    import faiss

    global _inside, _blas_limit
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    with _lock:
        if _inside == 0:
            _blas_limit = _blas().limit(limits=1, user_api="blas")
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0:
                _blas_limit.restore_original_limits()
                _blas_limit = None
        faiss.omp_set_num_threads(before)
