"""Which words of the question a passage says in other words ("fragile" ~ "delicate"), for
explaining why a passage was chosen; answering does not spend the time."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from articleqa.embed.base import Embedder
from articleqa.embed.onnxmodel import unit_norms
from articleqa.index.snapshot import Index
from articleqa.schema import Hit
from articleqa.text.chunking import embed_text
from articleqa.text.lexical import content_terms


def similar_words(
    index: Index, embedder: Embedder, question: str, question_tokens: np.ndarray, hits: Sequence[Hit], *, cosine: float
) -> list[list[tuple[str, str]]]:
    """For each hit, up to three (question word, passage word) pairs where a word piece of the
    question finds its closest piece of the passage (contextual token vectors, at least `cosine`)
    in a different word."""
    asked = embedder.content_words(question) if hits else []
    if not asked or len(asked) != len(question_tokens):
        return [[] for _ in hits]
    out = []
    for hit in hits:
        vectors = index.token_vectors(hit.chunk.key)
        said = embedder.content_words(embed_text(hit.article, hit.chunk))
        pairs: list[tuple[str, str]] = []
        if said and len(said) == len(vectors):
            cosines = question_tokens @ (vectors / unit_norms(vectors)).T
            literal = content_terms(hit.article.title + " " + hit.text)
            for i, word in enumerate(asked):
                j = int(np.argmax(cosines[i]))
                theirs = said[j]
                mine = content_terms(word)
                if cosines[i, j] < cosine or not mine or mine <= literal or mine & content_terms(theirs):
                    continue
                if all(w.lower() != word.lower() for w, _ in pairs) and theirs.isalpha():
                    pairs.append((word, theirs))
        out.append(pairs[:3])
    return out
