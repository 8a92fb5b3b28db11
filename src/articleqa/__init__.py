"""articleqa: ask questions of your articles; get back the passages that answer, cited."""

from __future__ import annotations

from typing import TYPE_CHECKING

from articleqa.__about__ import __version__
from articleqa.errors import ArticleQAError
from articleqa.schema import Answer, Article, Chunk, Hit
from articleqa.settings import Settings

if TYPE_CHECKING:
    from articleqa.library import Library, open

__all__ = [
    "Answer",
    "Article",
    "ArticleQAError",
    "Chunk",
    "Hit",
    "Library",
    "Settings",
    "__version__",
    "open",
]


def __getattr__(name: str):
    # The library (numpy, FAISS) loads on first use, so the command line starts at once and
    # Ctrl+C is in our hands from its first moment.
    if name in ("Library", "open"):
        from articleqa import library

        return getattr(library, name)
    raise AttributeError(f"module 'articleqa' has no attribute {name!r}")
