"""Follow-up questions: whether one leans on the conversation, and what to search for it."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from articleqa.query.answer.words import stems
from articleqa.text.lexical import content_terms
from articleqa.text.sentences import words

_PRONOUNS = {
    "it", "its", "they", "them", "their", "theirs", "that", "this", "those", "these",
    "he", "she", "him", "her", "his", "hers", "one", "ones", "same", "else",
}  # fmt: skip
_OPENERS = (
    "and ",
    "but ",
    "or ",
    "also ",
    "so ",
    "what about",
    "how about",
    "then ",
    "and?",
    "why not",
    "ok ",
    "okay ",
)
_SUBJECTS = {"it", "they", "that", "this", "these", "those", "she", "he"}
_AUXILIARIES = {
    "is", "are", "was", "were", "do", "does", "did", "can", "could", "will", "would", "should",
    "has", "have", "had", "may", "might", "must",
}  # fmt: skip
_QUESTION_WORDS = _AUXILIARIES | {"what", "how", "why", "who", "whom", "whose", "when", "where", "which", "i", "my"}
# Openings and endings of elliptical questions ("for rosacea too?", "even if it's oily?").
_LEADING = {
    "for", "from", "with", "without", "before", "after", "during", "on", "in", "at", "by", "about", "compared",
    "versus", "vs", "than", "instead", "plus", "even", "besides", "between", "against", "like", "into", "over",
    "under", "through", "within", "beyond", "until", "since", "per", "via",
}  # fmt: skip
_INTERJECTION = re.compile(
    r"^((haha+|lol|hmm+|ok(ay)?|oh|ah|wait|well|yes|yeah|right|alright|sure|thanks|thank you|cool|great|got it|i see)"
    r"\b[\s,.!:;\u2013\u2014-]*)+",
    re.IGNORECASE,
)
_NAME = re.compile(r"\b[A-Z][a-z]+(\s+[A-Z][a-z]+)+\b")  # "Sophia Moradi": a name is a subject of its own
_POSSESSIVES = {"his", "her", "hers", "their", "theirs", "him", "them", "its"}
_ADVERBS = {"right", "just", "only", "even", "maybe", "also", "still", "mostly"}
_CONJUNCTIONS = {"so", "and", "but", "then", "wait", "ok", "okay", "well"}
_TRAILING = {"too", "then", "again", "instead", "either", "also", "though"}
# Words of a question that name no subject of their own ("how often?", "what changed?"); stemmed
# on first use (the stemmer and stop words load with bm25s, not at import: start-up time).
_GENERIC_WORDS = (
    "change changed work works help use used happen mean differ difference cost costs take make need say good better "
    "best result results effect effects thing things way time long price worth safe right kind type part much many "
    "often exactly really actually truly basically source sources"
)


def is_follow_up(question: str, common: Callable[[set[str]], set[str]] | None = None) -> bool:
    """Whether a question leans on the conversation rather than standing alone.

    A follow-up opens like one ("and for hair?"), asks about an unnamed subject ("is it safe?",
    "does that work on oily skin?"), or is a fragment ("how often?", "morning or night?", "for
    rosacea too?", "who describes them as packages?"). A question that names what the library is
    about (`common`: the terms most of its passages hold, such as "exosomes") stands alone, even
    with a pronoun or a "too" in it ("What do exosomes carry inside them?")."""
    original = _INTERJECTION.sub("", question.strip())  # "haha ok, and pineapple?" -> "and pineapple?"
    text = original.lower()
    tokens = [w.lower() for w in words(text)]
    if not tokens:
        return False
    if text.startswith(_OPENERS):
        return True
    # A clause that asks about a subject it does not name, none named before it in the question
    # either: "is it safe?", "..., so are they made by stem cells?", "besides hair, what do they do?"
    before = ""
    for clause in re.split(r"\s*[,;:\u2013\u2014-]\s+", text):
        lead = [w for w in words(clause)]
        while lead and lead[0] in _CONJUNCTIONS:
            lead = lead[1:]
        asked = " ".join(lead) + " "
        extraposed = re.match(r"^\w+ it ((\w+ ){1,3}(to|if|when|that|whether) |worth )", asked)  # "is it worth ..."
        named_before = before
        unnamed = len(lead) > 1 and lead[0] in _AUXILIARIES and lead[1] in _SUBJECTS and not extraposed
        if not unnamed:
            found = re.search(r"\b(what|how|why|where|when) \w+ (they|these|those|she|he)\b", asked)
            unnamed, named_before = bool(found), before + " " + asked[: found.start()] if found else before
        if unnamed and not (common is not None and named_before.strip() and common(content_terms(named_before))):
            return True
        before += " " + clause
    first = next((t for t in tokens if t not in _ADVERBS), tokens[0])  # "right after washing?"
    if first in _LEADING and len(tokens) <= 5:
        return True  # "for which skin types?"
    # Someone's or something's, with nothing named before it: "what's his analogy for exosomes?"
    owner = next((i for i, t in enumerate(tokens) if t in _POSSESSIVES), None)
    if owner is not None and not (common is not None and common(content_terms(" ".join(tokens[:owner])))):
        return True
    terms = content_terms(text) - stems(_GENERIC_WORDS)
    if common is not None and common(terms):
        return False
    elliptical = tokens[-1] in _TRAILING or text.rstrip(" ?!.").endswith("as well")
    vague = len(tokens) <= 2 and any(
        t in _QUESTION_WORDS or not content_terms(t) - stems(_GENERIC_WORDS) for t in tokens
    )
    if first in _LEADING or elliptical or not terms or vague:  # "how exactly", "what changed?"
        return True
    if tokens[0] not in _QUESTION_WORDS and len(tokens) <= 4 and not _NAME.search(original):
        return True  # a fragment without a question of its own: "RNA?", "storage requirements?"
    return any(t in _PRONOUNS for t in tokens)


def resolve(question: str, history: Sequence[str], common: Callable[[set[str]], set[str]] | None = None) -> str:
    """The text to search: the question alone, or joined to the previous one for a follow-up."""
    previous = [h.strip() for h in history if h and h.strip()]
    if not previous or not is_follow_up(question, common):
        return question.strip()
    return f"{previous[-1]} {question.strip()}"
