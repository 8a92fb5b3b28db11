"""The embedder seam: what building an index and answering a question ask of a model.

Three implementations: the bundled sentence-transformers model (model.py, run through its ONNX
copy), the same model on Ray actors (ray.py), and stand-ins for tests and benchmarks. Each passes
the contract test (tests/embed/test_contract.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from articleqa.embed.codecs import Codec, TokenTable


@runtime_checkable
class Embedder(Protocol):
    """Text -> unit vectors, and per text the unit vectors of its content word pieces."""

    name: str  # recorded in the manifest: an index is searched with the model that built it
    dim: int
    max_tokens: int  # the model's window, in word pieces
    # Whether content_words/content_offsets name the rows of the token vectors (a stand-in
    # without word pieces says False and returns no words).
    word_pieces: bool

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, as the model's tokenizer counts them (no special tokens)."""
        ...

    def encode(self, texts: Sequence[str], *, batch_size: int = 16, progress: bool | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        ...

    def encode_tokens(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit text vectors, and for each text the unit vectors of its content word pieces."""
        ...

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One question: its unit vector and its content token vectors (one forward pass)."""
        ...

    def content_words(self, text: str) -> list[str]:
        """The whole word each content token vector of `text` belongs to, in order."""
        ...

    def content_offsets(self, text: str) -> list[tuple[int, int]]:
        """Where in `text` each content token vector's word piece lies, in order."""
        ...

    def describe_queries(self) -> str:
        """How questions are encoded, for `articleqa info` (never loads a model to find out)."""
        ...

    def done_building(self) -> None:
        """A build is over: memory kept for its batches can go."""
        ...


@runtime_checkable
class GroupEmbedder(Embedder, Protocol):
    """An embedder that takes a whole group of a build at once (Ray): its token vectors come back
    already compressed, so they never travel as floats."""

    def encode_group(
        self, passages: Sequence[str], sentences: Sequence[str], codec: Codec
    ) -> tuple[np.ndarray, TokenTable, np.ndarray]:
        """The passages' vectors, their token table in `codec`, and the sentences' vectors."""
        ...


class WithoutWordPieces:
    """The part of the seam a stand-in without a tokenizer (tests, benchmarks) gives: no words
    behind its token vectors, nothing to describe or release."""

    word_pieces = False
    name = "stand-in"

    def content_words(self, text: str) -> list[str]:
        return []

    def content_offsets(self, text: str) -> list[tuple[int, int]]:
        return []

    def describe_queries(self) -> str:
        return f"{self.name} (a stand-in, no model)"

    def done_building(self) -> None:
        pass
