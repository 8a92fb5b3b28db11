"""Giving freed memory back to the system.

glibc keeps the heap pages a long-running process freed (after a build's batches, after a burst
of questions on many threads) for its own reuse, so the resident size only grows. Trimming the
heap returns them (docs/reliability.md, "Load", says how much).
"""

from __future__ import annotations

# mallopt's parameter numbers: the size from which a block gets a mapping of its own, and the
# most arenas (separate heaps for threads) glibc makes.
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def _glibc():
    """The C library when it is glibc, else None (then these calls do nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") and hasattr(libc, "mallopt") else None
    except (OSError, AttributeError):
        return None


def give_back() -> None:
    """Return freed heap pages to the system (glibc); elsewhere nothing happens."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def large_blocks_apart(threshold: int = 1 << 20) -> None:
    """Give every block of `threshold` bytes or more a mapping of its own, returned to the system
    when freed (glibc; elsewhere nothing happens). By default glibc raises that bar up to 32 MB
    once such a block is freed, after which a model's weights and a batch's activations land in
    the heap among small long-lived objects and stay resident (docs/reliability.md, "Load")."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_MMAP_THRESHOLD, int(threshold))


def share_arenas(count: int = 2) -> None:
    """Let all threads share at most `count` malloc arenas (glibc; elsewhere nothing happens). By
    default glibc gives threads up to 8 per core, and a server's worker threads each leave their
    arena's fragments resident: under 50 clients asking while articles are uploaded, three
    interleaved pairs of runs left 477-512 MiB after the run with 2 arenas against 488-521 with 16
    (9 to 38 less in each pair), with as many answers (docs/reliability.md). Call it before
    threads have made more than 8 arenas: glibc then fixes its cap for good."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(_M_ARENA_MAX, int(count))
