""" "Summarize the Apollo note": that article's own lead and section openings, each cited."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from articleqa.schema import Answer, Article, Chunk, Hit
from articleqa.text.lexical import content_terms
from articleqa.text.sentences import HEADING


def pick_article(
    target: str, articles: Sequence[Article], search: Callable[[str], Sequence[Hit]]
) -> tuple[Article | None, str, bool]:
    """The article `target` names: the title sharing most of its words, else the one whose
    passages best match it (the bool: named by its title). None, with what to say, when the
    target is empty and the library holds several articles."""
    if not articles:
        return None, "There are no articles to summarise yet: add some first.", False
    if not target:
        if len(articles) == 1:
            return articles[0], "", True
        titles = "; ".join(f"“{a.title}”" for a in articles[:8])
        more = f" and {len(articles) - 8} more" if len(articles) > 8 else ""
        return None, f"Say which article to summarise, for example by a word of its title: {titles}{more}.", False
    wanted = content_terms(target)
    best = max(articles, key=lambda a: len(wanted & content_terms(a.title)))
    if wanted and wanted & content_terms(best.title):
        return best, "", True
    hits = search(target)
    if hits:
        return hits[0].article, "", False
    return None, f"No article matches “{target}”.", False


def summary(
    question: str,
    article: Article,
    chunks: Sequence[Chunk],
    sentences_of: Callable[[Chunk], Sequence[tuple[int, int]]],
    *,
    most: int = 6,
    confidence: float = 0.9,
    history: Sequence[str] = (),
) -> Answer:
    """The article's lead (its first two sentences) and the first sentence of each later
    section, in order, at most `most` of them. Each passage they come from is a cited hit, the
    first of them highlighted in it."""
    lines: list[str] = []
    hits: list[Hit] = []
    previous: tuple[str, ...] | None = None
    for chunk in chunks:
        spans = [s for s in sentences_of(chunk) if chunk.text[s[0] : s[1]].strip()]
        openings = _openings(chunk, spans, lead=not lines, new_section=chunk.headings != previous)
        previous = chunk.headings
        for heading, (start, end) in openings[: most - len(lines)]:
            if not hits or hits[-1].chunk is not chunk:
                hits.append(
                    Hit(chunk, article, score=1.0, rank=len(hits) + 1, highlight_start=start, highlight_end=end)
                )
            said = " ".join(chunk.text[start:end].split())
            label = "" if not heading else f"{heading} " if heading[-1] in "?!.:" else f"{heading}: "
            lines.append(f"{label}{said} [{len(hits)}]")
        if len(lines) >= most:
            break
    return Answer(
        question=question,
        found=bool(lines),
        text="\n".join(lines),
        hits=tuple(hits),
        confidence=confidence if lines else 0.0,
        query=question,
        reason="" if lines else f"“{article.title}” has no text to summarise.",
        history=tuple(history),
        note=f"A summary of “{article.title}” in its own words: its opening and the start of each section.",
    )


def _openings(chunk: Chunk, spans, *, lead: bool, new_section: bool) -> list[tuple[str, tuple[int, int]]]:
    """The summary's sentences in one passage: the lead (two sentences) if it is the first, the
    first sentence of a section that starts with the passage, and the first after each heading
    line inside it; each with its section's heading ("" for the lead)."""
    if not spans:
        return []
    out: list[tuple[str, tuple[int, int]]] = []
    if lead:
        first = spans[:2]
        if len(first) == 2 and HEADING.match(chunk.text[first[0][1] : first[1][0]].strip()):
            first = first[:1]  # the lead stops at the first heading
        out.append(("", (first[0][0], first[-1][1])))
    elif new_section and chunk.headings:
        out.append((chunk.headings[-1], spans[0]))
    at = 0
    for line in chunk.text.splitlines(keepends=True):
        found = HEADING.match(line.strip())
        at += len(line)
        if found:
            after = next((s for s in spans if s[0] >= at), None)
            if after is not None and (not out or after[0] >= out[-1][1][1]):
                out.append((found.group(2).strip(), after))
    return out
