"""Late interaction: a vector per content word piece of every passage, and MaxSim against a question.

A passage vector averages all its words, so "Are exosomes a fragile ingredient?" barely moves
toward the passage that says they are "delicate". Matching each question word piece with its
closest word piece in the passage (ColBERT's MaxSim) keeps that signal. The vectors are the
model's own contextual token outputs, taken from the same forward pass as the passage vector.

Stored as int8 with one scale per token (a quarter of float32; rankings are unchanged within
measurement, docs/retrieval.md): `tokens.npy` (n, dim) int8, `token_scales.npy` (n,) float32,
`token_offsets.npy` (passages + 1,) int64, passage i owning rows offsets[i]:offsets[i+1].
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

TOKENS = "tokens.npy"
SCALES = "token_scales.npy"
OFFSETS = "token_offsets.npy"
FILES = (TOKENS, SCALES, OFFSETS)


def quantize(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 per row: row ≈ codes * scale."""
    vectors = np.asarray(vectors, dtype=np.float32)
    peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, dtype=np.float32)
    scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
    codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
    return codes, scales


@dataclass(frozen=True)
class TokenVectors:
    """Every passage's token vectors, row-aligned with the chunk table."""

    codes: np.ndarray  # (n_tokens, dim) int8
    scales: np.ndarray  # (n_tokens,) float32
    offsets: np.ndarray  # (n_passages + 1,) int64

    @classmethod
    def empty(cls, dim: int, passages: int = 0) -> TokenVectors:
        """No token vectors (for `passages` passages, which then score 0 on this signal)."""
        return cls(np.zeros((0, dim), np.int8), np.zeros(0, np.float32), np.zeros(passages + 1, np.int64))

    @classmethod
    def from_passages(cls, per_passage: Sequence[np.ndarray], dim: int) -> TokenVectors:
        if not per_passage:
            return cls.empty(dim)
        codes, scales = quantize(np.vstack(per_passage))
        return cls(codes, scales, _offsets([len(m) for m in per_passage]))

    @classmethod
    def concat(cls, parts: Sequence[TokenVectors], dim: int) -> TokenVectors:
        """The passages of each part, one part after the other."""
        if not parts:
            return cls.empty(dim)
        return cls(
            np.concatenate([p.codes for p in parts]),
            np.concatenate([p.scales for p in parts]),
            _offsets(np.concatenate([np.diff(p.offsets) for p in parts])),
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def with_rows(self, keep: np.ndarray, added: TokenVectors) -> TokenVectors:
        """The passages `keep` (in that order), then those of `added`."""
        keep = np.asarray(keep, dtype=np.int64)
        take = self._token_rows(keep)
        return TokenVectors(
            np.concatenate([np.asarray(self.codes[take]), added.codes]),
            np.concatenate([np.asarray(self.scales[take]), added.scales]),
            _offsets(np.concatenate([self._counts(keep), np.diff(added.offsets)])),
        )

    def maxsim(self, query_tokens: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """For each passage row: the mean over question tokens of the best cosine in the passage."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        has_tokens = self._counts(rows) > 0
        present = rows[has_tokens]
        if not len(present) or not len(query_tokens):
            return out
        sims = self._similarities(query_tokens, present)
        # reduceat needs non-empty segments: passages without tokens were left out above.
        best = np.maximum.reduceat(sims, _offsets(self._counts(present))[:-1], axis=1)
        out[has_tokens] = best.mean(axis=0)
        return out

    def best_match(self, query_tokens: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """For each question token, its best cosine among all tokens of the passages `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        if not self._counts(rows).sum() or not len(query_tokens):
            return np.zeros(len(query_tokens), dtype=np.float32)
        return self._similarities(query_tokens, rows).max(axis=1)

    def _counts(self, rows: np.ndarray) -> np.ndarray:
        return self.offsets[rows + 1] - self.offsets[rows]

    def _token_rows(self, rows: np.ndarray) -> np.ndarray:
        """The token rows of passages `rows`, passage after passage."""
        parts = [np.arange(self.offsets[r], self.offsets[r + 1]) for r in rows]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)

    def _similarities(self, query_tokens: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(question tokens, tokens of `rows`) cosines, dequantizing only the rows read."""
        take = self._token_rows(rows)
        return (query_tokens @ np.asarray(self.codes[take], dtype=np.float32).T) * self.scales[take]

    def save(self, folder: Path) -> list[str]:
        np.save(folder / TOKENS, self.codes, allow_pickle=False)
        np.save(folder / SCALES, self.scales, allow_pickle=False)
        np.save(folder / OFFSETS, self.offsets, allow_pickle=False)
        return list(FILES)

    @classmethod
    def load(cls, folder: Path, passages: int, dim: int) -> TokenVectors:
        """Mapped, not read: a large library's token vectors are paged in only where asked."""
        codes = np.load(folder / TOKENS, mmap_mode="r", allow_pickle=False)
        scales = np.load(folder / SCALES, allow_pickle=False)
        offsets = np.load(folder / OFFSETS, allow_pickle=False)
        if len(offsets) != passages + 1 or offsets[-1] != len(codes) or len(scales) != len(codes):
            raise ValueError(f"token vectors for {len(offsets) - 1} passages, the index has {passages}")
        if codes.ndim != 2 or codes.shape[1] != dim:
            raise ValueError(f"token vectors of shape {codes.shape}, expected width {dim}")
        return cls(codes, scales, offsets)


def _offsets(counts) -> np.ndarray:
    """Passage i owns rows offsets[i]:offsets[i+1]."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)
