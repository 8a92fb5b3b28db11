"""The exceptions articleqa raises; each message says what to do next."""

from __future__ import annotations


class ArticleQAError(Exception):
    """Base class: anything the user can fix. The CLI prints the message, no traceback."""


class NoArticles(ArticleQAError):
    """Nothing usable was found to index."""


class UnusableFile(ArticleQAError):
    """A file that cannot become an article (empty, binary, unsupported, unreadable)."""


class IndexMissing(ArticleQAError):
    """There is no index where one was expected."""


class IndexMismatch(ArticleQAError):
    """The index on disk was built with another model, chunker or format."""


class IndexCorrupt(ArticleQAError):
    """The index folder is incomplete or unreadable."""


class IndexBusy(ArticleQAError):
    """Another process is writing to the same index and did not finish in time."""


class ReadOnlyIndex(ArticleQAError):
    """A change was asked of an index that must not be written (the built-in one)."""


class BadQuestion(ArticleQAError):
    """The question cannot be searched (empty, too long, no words)."""


class UnknownArticle(ArticleQAError):
    """An article id that is not in the index."""


class ModelUnavailable(ArticleQAError):
    """The embedding model could not be loaded."""


class Stopped(ArticleQAError):
    """The server is stopping: the change in progress was left out, the index as it was."""


def rebuild_command(folder=None) -> str:
    """The fix for an index that cannot be read as it is: the command that rebuilds it."""
    where = f" --index-dir {folder}" if folder is not None else ""
    return f"rebuild it with `articleqa build --rebuild{where}`"


class DiskFull(ArticleQAError):
    """No space left where the index is written; nothing was lost."""
