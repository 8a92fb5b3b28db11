"""A deterministic stand-in for the embedder seam (articleqa.embed.base.Embedder), for tests of the plumbing."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

import numpy as np

from articleqa.embed.base import WithoutWordPieces

_WORD = re.compile(r"\w+")


class FakeEmbedder(WithoutWordPieces):
    """Hashed bag of words: texts sharing words get nearby unit vectors. Counts its work."""

    name = "fake-hash-embedder"

    def __init__(self, dim: int = 64, max_tokens: int = 256) -> None:
        self.dim = dim
        self.max_tokens = max_tokens
        self.encode_calls = 0
        self.texts_encoded = 0
        self.encoded: list[str] = []

    def reset(self) -> None:
        self.encode_calls = 0
        self.texts_encoded = 0
        self.encoded = []

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return [len(text.split()) for text in texts]

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        texts = list(texts)
        self.encode_calls += 1
        self.texts_encoded += len(texts)
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in _WORD.findall(text.lower()):
                slot, sign = self._slot(word)
                out[row, slot] += sign
            if not out[row].any():
                out[row, 0] = 1.0
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def encode_tokens(
        self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Text vectors, and one hashed unit vector per word as its "token vectors"."""
        vectors = self.encode(texts, batch_size=batch_size, progress=progress)
        tokens = []
        for text in texts:
            words = _WORD.findall(text.lower()) or ["empty"]
            rows = np.zeros((len(words), self.dim), dtype=np.float32)
            for i, word in enumerate(words):
                slot, sign = self._slot(word)
                rows[i, slot] = sign
            tokens.append(rows)
        return vectors, tokens

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        vectors, tokens = self.encode_tokens([text], progress=False)
        return vectors[0], tokens[0]

    def _slot(self, word: str) -> tuple[int, float]:
        digest = hashlib.md5(word.encode("utf-8")).digest()
        return int.from_bytes(digest[:4], "little") % self.dim, 1.0 if digest[4] % 2 else -1.0
