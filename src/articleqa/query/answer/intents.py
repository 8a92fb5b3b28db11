"""What kind of reply a question asks for: an article summarised, more on the last subject, a
yes or no, or a fact; and what to say when the articles never name what it asks about."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from articleqa.schema import Hit
from articleqa.text.lexical import content_terms

_SUMMARY = re.compile(
    r"^\W*(please\s+|can you\s+|could you\s+)?"
    r"(summari[sz]e|sum (it |this |that |them )?up|recap|tl;?dr\b|give me (a|the) (summary|gist|overview|tl;?dr) of"
    r"|(a |the )?(summary|gist|overview|"
    r"tl;?dr|main points|key points|key takeaways) (of|from|for))\b\s*(?P<target>.*?)\W*$",
    re.IGNORECASE,
)
_ARTICLE_WORDS = re.compile(
    r"\b(the|this|that|a|an|article|articles|note|notes|post|blog|page|piece|guide|story|report|document|doc|"
    r"file|text|essay|paper|one|about|on|called|titled|named|please|for me)\b",
    re.IGNORECASE,
)
_MORE = re.compile(
    r"^\W*((ok(ay)?|and|so|yes|please|cool|great|thanks)[,!.]?\s+)*"
    r"((can you |could you |please )?(tell|show|give) me more|more( please| info| information| details)?|go on|"
    r"continue|keep going|elaborate|what else|anything else|say more|more on (that|this|it)|"
    r"tell me more about (that|this|it)|and\?)\W*(please)?\W*$",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"^\W*(is|are|was|were|do|does|did|can|could|should|will|would|has|have|had|may|might|must|isn't|aren't|"
    r"doesn't|don't|won't|can't)\b",
    re.IGNORECASE,
)
# A sentence that states something as possible, early or unproven rather than settled.
_HEDGE = re.compile(
    r"\b(may|might|could|potential(ly)?|possibl[ey]|early|preliminary|emerging|limited (research|evidence|data|"
    r"studies)|not yet|unclear|unknown|more (research|studies|evidence)|further (research|studies)|little "
    r"(research|evidence)|few studies|anecdotal|in theory|theoretical(ly)?|promis(e|es|ing)|suggests?|"
    r"believed|thought to|appears? to|seems? to)\b",
    re.IGNORECASE,
)
_NEGATION = re.compile(
    r"\b(not|no|never|none|cannot|without|lacks?|unproven|unsafe|avoid)\b|n't\b",
    re.IGNORECASE,
)


def summary_target(question: str) -> str | None:
    """What "Summarize the Apollo note" asks to summarise ("Apollo"), "" for "sum it up", or
    None when the question asks for something else."""
    found = _SUMMARY.match(question.strip())
    if found is None:
        return None
    return re.sub(r"\s+", " ", _ARTICLE_WORDS.sub(" ", found.group("target"))).strip(" ,.:;?!'\"“”")


def asks_for_more(question: str) -> bool:
    """ "tell me more", "go on", "what else?": the next passages on the subject just asked about."""
    return bool(_MORE.match(question.strip()))


def is_yes_no(question: str) -> bool:
    return bool(_YES_NO.match(question.strip()))


def yes_no_note(hits: Sequence[Hit], close: float = 0.1) -> str:
    """For a yes-or-no question: whether the articles only hint at the answer, or differ on it.

    The answer leads with the sentence that settles it (hits[0]'s highlight); a sentence that
    states the thing as possible or early research only hints. When another article's best
    sentence scores within `close` of it and one of the two denies what the other states, the
    articles differ, and the note names both."""
    if not hits or not hits[0].highlight:
        return ""
    lead = hits[0]
    said = lead.highlight
    for other in hits[1:4]:
        if other.article.id == lead.article.id or not other.highlight:
            continue
        near = (other.highlight_score or 0.0) >= (lead.highlight_score or 0.0) - close
        if near and bool(_NEGATION.search(other.highlight)) != bool(_NEGATION.search(said)):
            return (
                f"The articles differ: “{lead.article.title}” says “{_clip(said)}”; "
                f"“{other.article.title}” says “{_clip(other.highlight)}”"
            )
    if _HEDGE.search(said):
        return "The articles only hint at this: the passage says it may be so, not that it is settled."
    return ""


def unmentioned(
    query: str,
    words_of: Callable[[str], list[str]] | None,
    matches,
    known: Callable[[set[str]], set[str]],
    near: Callable[[str], bool],
    floor: float,
) -> list[str]:
    """The question's names and rare terms that no article holds ("retinol", "Botox").

    A word counts when the articles never use it, the model splits it into several word pieces
    (a word it knows whole is common English, and the articles may say it otherwise), the best
    match of one of its pieces in the best passages (`matches`, each content piece's best
    cosine) stays under `floor`, and it is no typo of a word the articles hold ("exosmes").
    Empty when nothing else of the question is known either: then the articles simply don't
    cover it (compose says so)."""
    if words_of is None or matches is None:
        return []
    words = words_of(query)
    if len(words) != len(matches):
        return []
    pieces: dict[str, list[float]] = {}
    for word, match in zip(words, matches):
        pieces.setdefault(word, []).append(float(match))
    missing = []
    for word, found in pieces.items():
        terms = content_terms(word)
        if len(found) < 2 or len(word) < 4 or min(found) >= floor or not terms or known(terms):
            continue
        if _WORD_FORM.search(word):  # "purified", "reoccupying": a verb or an adjective, said otherwise
            continue
        if not any(near(t) for t in terms | {word.lower()}):
            missing.append(word)
    if not missing:
        return []
    rest = content_terms(query) - set().union(*(content_terms(w) for w in missing))
    return missing if known(rest) else []


# Endings of verbs, adverbs and adjectives: such a word the articles lack is more often put in
# other words there ("purified" for "isolated by filtration") than a subject they never touch.
_WORD_FORM = re.compile(
    r"(ed|ing|ly|i[sz]e|i[sz]es|able|ible|ness|ment|ments|ful|less|ous|ive|ative|ical|ally)$", re.IGNORECASE
)


def _clip(text: str, size: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1].rsplit(" ", 1)[0] + "…"
