"""articleqa: ask questions of your articles; get back the passages that answer, cited."""

from .__about__ import __version__
from .errors import ArticleQAError
from .library import Library, open
from .schema import Answer, Article, Chunk, Hit
from .settings import Settings

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
