"""Questions run on one thread: parallel FAISS and BLAS calls stall on a busy machine.

A question's own work after encoding (a FAISS search, decoding a hundred passages' token codes,
a few small matrix products) is small. Split over threads, it waits for threads the machine
cannot run right away: a 20k-vector scan took 7 times longer, and decoding 330 token codes 300
times longer, while numpy's BLAS threads were still spinning from the previous product. Those
spinning threads also slow the model: on 2 cores, encoding the next question took 21 ms after a
token MaxSim on two BLAS threads, 12.8 ms after one on a single thread (10 ms alone). Builds keep
their threads: the FAISS setting belongs to the calling thread, and the BLAS limit is lifted on exit.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache


@lru_cache(maxsize=1)
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # finds the BLAS libraries once (about 20 µs a limit after that)


@contextmanager
def single_threaded() -> Iterator[None]:
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        with _blas().limit(limits=1, user_api="blas"):
            yield
    finally:
        faiss.omp_set_num_threads(before)
