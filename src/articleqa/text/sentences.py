"""Text primitives shared by ingestion, chunking and highlighting: words and sentence spans."""

from __future__ import annotations

import re
import unicodedata

from sentencex import segment

# A Markdown heading line: its #s (the level) and its text, a closing run of #s left out
# ("## Setup ##" -> "Setup"; "# C#" keeps its "#", which no space separates).
HEADING = re.compile(r"^(#{1,6})\s+(.+?)(?:\s+#+)?\s*$")
_WORD = re.compile(r"\w+", re.UNICODE)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)


def normalize(text: str) -> str:
    """NFC, Unix newlines, no trailing spaces, at most one blank line in a row."""
    text = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    text = text.replace("\u00a0", " ").replace("\u200b", "")
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def words(text: str) -> list[str]:
    return _WORD.findall(text)


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence (start, end) offsets into `text`, trimmed of spaces.

    A line break always ends a sentence (list items, headings). Fragments with no letters,
    such as a list number, are joined to the sentence that follows.
    """
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    pos = start
    for line in text[start:end].split("\n"):
        line_start = pos
        pos += len(line) + 1
        if not line.strip():
            continue
        cursor = 0
        pending: int | None = None
        for sentence in segment("en", line):
            piece = sentence.strip()
            if not piece:
                continue
            offset = line.find(piece, cursor)
            if offset < 0:  # segmenter changed the text; fall back to the whole rest
                offset = cursor
                piece = line[cursor:].strip()
            cursor = offset + len(piece)
            s = line_start + offset if pending is None else pending
            if not _LETTER.search(piece) and len(piece) < 6:
                pending = s
                continue
            pending = None
            spans.append((s, line_start + cursor))
            if cursor >= len(line.rstrip()):
                break
        if pending is not None:
            spans.append((pending, line_start + len(line.rstrip())))
    return spans
