"""Questions run on one thread: parallel FAISS calls stall on a busy machine.

A question's FAISS work (a search, decoding a hundred passages' token codes) is small. Split over
OpenMP threads, it waits for threads the machine cannot run right away, for example while
numpy's BLAS threads are still spinning from the previous matrix product: a 20k-vector scan took
7 times longer, and decoding 330 token codes 300 times longer (docs/benchmarks.md). Builds keep
their threads: the setting belongs to the calling thread.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def single_threaded() -> Iterator[None]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)
