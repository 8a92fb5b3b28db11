"""The Answer: found or not, its text and the reason, judged from the evidence."""

from __future__ import annotations

import re
from collections.abc import Sequence

from articleqa.query.answer.evidence import Abstention, Evidence
from articleqa.schema import Answer, Hit

# Questions that ask for a judgement, and the words a sentence that passes one uses.
_JUDGEMENT = re.compile(
    r"\b(the (best|worst|top|safest|most effective)(?! (way|ways|time|method|approach|order|moment|place|step))"
    r"|recommend|should i (buy|get|try|choose)"
    r"|worth (it|the money|buying)|(is|are) ([\w-]+ ){1,3}(safe|dangerous|harmful))\b",
    re.IGNORECASE,
)
_VERDICT = re.compile(
    r"\b(best|worst|better|top|safe|safer|safest|safety|unsafe|risks?|dangerous|harmful|side effects?"
    r"|recommend\w*|effective|worth|choose|prefer\w*|ideal|superior|avoid|damag\w*|harm\w*|toxic\w*"
    r"|hazard\w*|irritat\w*|injur\w*|deadly|lethal|poison\w*|gentle|approved)\b",
    re.IGNORECASE,
)


def compose(
    question: str,
    query: str,
    hits: Sequence[Hit],
    *,
    evidence: Evidence,
    rule: Abstention,
    history: Sequence[str] = (),
    note: str = "",
) -> Answer:
    """Build the Answer: found or not, the short answer text and a one-line reason."""
    found = bool(hits) and rule.decide(evidence)
    confidence = rule.confidence(evidence)
    judged = _JUDGEMENT.search(question)
    if found and judged and not _VERDICT.search(hits[0].highlight or hits[0].text):
        # "What is the best moisturizer?" answered by "Allow the serum to absorb before moisturizer"
        # is a confident miss: the passage is near the subject but passes no judgement on it.
        asked = judged.group(0).lower()
        said = (
            "whether it is safe"
            if re.search(r"safe|dangerous|harmful", asked)
            else "which one is best"
            if re.search(r"best|worst|top|most effective", asked)
            else "which one to choose"
        )
        text, found = "", False
        reason = f"The articles don't settle this: the closest passage does not say {said} (nearest passages below)."
    elif found:
        text = hits[0].highlight or hits[0].text
        reason = ""
    elif not hits:
        text, reason = "", "There are no articles to search yet: add some first."
    elif evidence.sentence >= rule.sentence:
        text = ""
        reason = (
            "The articles don't cover this: a word of the question matches nothing in the best passages "
            f"(its closest match {evidence.weakest_word:.2f}; best sentence similarity {evidence.sentence:.2f})."
        )
    else:
        text = ""
        reason = (
            "The articles don't cover this: no sentence in them comes close to the question "
            f"(best similarity {evidence.sentence:.2f}; {evidence.coverage:.0%} of its key terms in the best passages)."
        )
    return Answer(
        question=question,
        found=found,
        text=text,
        hits=tuple(hits),
        confidence=confidence,
        query=query,
        reason=reason,
        history=tuple(history),
        note=note,
    )
