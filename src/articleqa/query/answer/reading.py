"""The reader's findings applied to the passages found: the read ones re-ranked by how surely
they hold the answer, and in each the answer's words and the one to three sentences around them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from articleqa.query.answer.reader import Reading, clipped
from articleqa.schema import Hit


def lead(hit: Hit) -> str:
    """What the reader reads before a passage: its article's title and heading path."""
    return " > ".join(part for part in (hit.article.title, *hit.chunk.headings) if part)


def rerank(hits: Sequence[Hit], readings: Sequence[Reading], weight: float) -> list[Hit]:
    """The read hits (the first len(readings)) ordered by their fused score plus `weight` times the
    reader's margin, then the others in their order; ranks renumbered."""
    read = [  # a sentence reader's best sentence is no span: the highlight weighs its margins
        replace(h, reader_margin=round(r.margin, 4))
        if r.sentences
        else replace(h, reader_margin=round(r.margin, 4), span_start=r.start, span_end=r.end)
        for h, r in zip(hits, readings)
    ]
    order = sorted(
        range(len(read)),
        key=lambda i: -(read[i].score + weight * float(clipped(readings[i].margin))),
    )
    ranked = [read[i] for i in order] + list(hits[len(read) :])
    return [replace(h, rank=i) for i, h in enumerate(ranked, start=1)]


def answer_sentences(hit: Hit, spans: Sequence[tuple[int, int]], most: int = 3) -> tuple[int, int] | None:
    """The sentences of `hit` (spans relative to its text) that hold the reader's span: the one it
    lies in, or the adjacent ones it crosses (at most `most`; a list item or table row is a
    sentence too). None when the passage was not read."""
    if hit.span_start is None or hit.span_end is None or hit.span_end <= hit.span_start:
        return None
    inside = [i for i, (a, b) in enumerate(spans) if a < hit.span_end and b > hit.span_start]
    if not inside:  # in the title or a heading line, not in a sentence: that line
        text = hit.text
        start = text.rfind("\n", 0, hit.span_start) + 1
        end = text.find("\n", hit.span_end)
        return start, len(text) if end < 0 else end
    first, last = inside[0], min(inside[-1], inside[0] + most - 1)
    return spans[first][0], spans[last][1]
