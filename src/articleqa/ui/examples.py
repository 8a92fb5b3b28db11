"""Example questions a first-time visitor can click, taken from the articles' own headings."""

from __future__ import annotations

import itertools

from articleqa.library import Library
from articleqa.ui.render import EMPHASIS


def example_questions(lib: Library, n: int = 4) -> list[str]:
    """Questions a first-time user can click, varied: the articles' own question headings ("How to
    ..." ones read as questions), taken from each article in turn, leaving out any that asks what
    an earlier pick asks ("What Are Exosomes, Really?" after "What in the World Are Exosomes?")."""
    from articleqa.text.lexical import content_terms

    per_article: dict[str, list[str]] = {}
    for chunk in itertools.islice(lib.index.iter_chunks(), 5000):  # enough to find a few
        for heading in chunk.headings:
            question = (
                heading if heading.endswith("?") else f"{heading}?" if heading.lower().startswith("how to ") else ""
            )
            if question and 3 <= len(question.split()) <= 12 and question not in per_article.get(chunk.article_id, []):
                per_article.setdefault(chunk.article_id, []).append(question)
    filler = content_terms(" ".join(EMPHASIS) + " " + _FILLER)
    picked: list[tuple[str, set[str]]] = []
    queues = [list(questions) for questions in per_article.values()]
    while len(picked) < n and any(queues):
        for queue in queues:
            while queue:
                question = queue.pop(0)
                terms = content_terms(question) - filler
                if all(len(terms & t) < 0.6 * len(terms | t) for _, t in picked) and (terms or not picked):
                    picked.append((question, terms))
                    break
            if len(picked) == n:
                break
    return [q for q, _ in picked] or [f"What does “{a.title}” say?" for a in lib.articles()[:n]]


# Besides emphasis, words that make a question sound different without asking anything different.
_FILLER = "world thing things everything need know"
