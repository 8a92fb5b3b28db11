"""Word lists and patterns more than one answer rule reads."""

from __future__ import annotations

import functools
import re

from articleqa.text.lexical import content_terms

# A question about what a word means ("What does Obersee mean?", "the translation of Oude Maas").
MEANING = re.compile(
    r"\bwhat (does|do|did)\b.*\b(mean|stand for)\W*$|\b(meaning|translation) of\b"
    r"|\bhow (do you|to|would you) translate\b|\btranslat\w* (of|into)\b",
    re.I,
)

# Words that frame a question about a word rather than name its subject ("What does Obersee
# mean?", "the translation of Oude Maas"): a passage that gives the meaning seldom repeats them,
# so in such a question (`MEANING`) they do not count against how much of it the passages hold.
FRAME_WORDS = "mean means meaning meant translation translate translated translates stand stands called"


@functools.cache
def stems(words: str) -> frozenset[str]:
    """A word list's stemmed content terms, computed once per list."""
    return frozenset(content_terms(words))
