"""Per-stage timings of the query path, collected only while a benchmark asks for them."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

_active: ContextVar[dict[str, float] | None] = ContextVar("articleqa_timings", default=None)


@contextmanager
def stage(name: str) -> Iterator[None]:
    """Add the time spent inside to `name`, if someone is recording; otherwise nearly free."""
    record = _active.get()
    if record is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        record[name] = record.get(name, 0.0) + time.perf_counter() - start


@contextmanager
def recording() -> Iterator[dict[str, float]]:
    """Collect stage timings (seconds) of everything run inside."""
    record: dict[str, float] = {}
    token = _active.set(record)
    try:
        yield record
    finally:
        _active.reset(token)
