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
