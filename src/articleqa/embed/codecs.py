"""Late interaction: a vector per content word piece of every passage, and MaxSim against a question.

A passage vector averages all its words, so "Are exosomes a fragile ingredient?" barely moves
toward the passage that says they are "delicate". Matching each question word piece with its
closest word piece in the passage (ColBERT's MaxSim) keeps that signal. The vectors are the
model's own contextual token outputs, taken from the same forward pass as the passage vector.

There are about 95 of them per passage, so they are stored compressed, as PLAID does: product
quantization (`pq`: 32 one-byte codes per word piece, with a codebook trained once per model;
docs/retrieval.md), or, for a model without a codebook yet, int8 with a scale per row
(`int8`: dim + 4 bytes). Either way a
segment holds `tokens.npy` (word pieces, code width) uint8 and `token_offsets.npy` (passages + 1,)
int64, passage i owning rows offsets[i]:offsets[i+1].
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np


class Int8Codec:
    """Symmetric int8 per row with its float32 scale in the row's first four bytes."""

    name = "int8"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.width = dim + 4

    def entry(self) -> dict:
        return {"codec": self.name}

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        peak = np.abs(vectors).max(axis=1) if len(vectors) else np.zeros(0, np.float32)
        scales = np.where(peak > 0, peak / 127.0, 1.0).astype(np.float32)
        codes = np.clip(np.rint(vectors / scales[:, None]), -127, 127).astype(np.int8)
        return np.hstack([scales.view(np.uint8).reshape(-1, 4), codes.view(np.uint8)])

    def decode(self, codes: np.ndarray) -> np.ndarray:
        codes = np.asarray(codes)
        scales = np.ascontiguousarray(codes[:, :4]).view(np.float32).reshape(-1)
        return np.ascontiguousarray(codes[:, 4:]).view(np.int8).astype(np.float32) * scales[:, None]

    def decode_scaled(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The vectors, scaled already (int8 keeps their length)."""
        return self.decode(codes), np.ones(len(codes), np.float32)


class PQCodec:
    """Product quantization: each word piece as `m` one-byte centroid ids (faiss.ProductQuantizer)."""

    name = "pq"

    def __init__(self, pq, file: str | None = None) -> None:
        import faiss

        self._pq = pq
        self.dim = int(pq.d)
        self.width = int(pq.code_size)
        self.file = file or f"codebook-{self.digest()}.faiss"
        # Encoding through a flat index assigns each sub-vector with one matrix product per
        # batch: five times faster than faiss's per-vector loop for sub-vectors this short.
        self._assign = faiss.IndexFlatL2(int(pq.dsub))
        centroids = faiss.vector_to_array(pq.centroids).reshape(int(pq.M), int(pq.ksub), int(pq.dsub))
        self._squares = (centroids**2).sum(axis=2).reshape(-1).astype(np.float32)
        self._offsets = (np.arange(int(pq.M)) * int(pq.ksub)).astype(np.int64)

    @classmethod
    def train(cls, vectors: np.ndarray, *, m: int = 32, bits: int = 8, seed: int = 1234) -> PQCodec:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        pq = faiss.ProductQuantizer(vectors.shape[1], m, bits)
        pq.cp.seed = seed
        pq.cp.niter = 20
        pq.verbose = False
        pq.train(vectors)
        return cls(pq)

    def digest(self) -> str:
        import faiss

        return hashlib.sha256(faiss.vector_to_array(self._pq.centroids).tobytes()).hexdigest()[:16]

    def entry(self) -> dict:
        return {"codec": self.name, "m": int(self._pq.M), "bits": int(self._pq.nbits), "codebook": self.file}

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        import faiss

        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dim)
        codes = np.zeros((len(vectors), self.width), np.uint8)
        if len(vectors):
            self._pq.assign_index = self._assign
            self._pq.compute_codes_with_assign_index(faiss.swig_ptr(vectors), faiss.swig_ptr(codes), len(vectors))
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        vectors, inverse = self.decode_scaled(codes)
        return vectors * inverse[:, None]

    def decode_scaled(self, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reconstructions and the inverse of their lengths. A reconstruction is shorter than the
        unit vector it stands for, which would shrink every cosine (and move the abstention's
        thresholds): scores are divided by these lengths. The sub-vectors are orthogonal, so a
        length is the sum of its centroids' squared lengths, read from a table."""
        codes = np.ascontiguousarray(codes, dtype=np.uint8)
        if not len(codes):
            return np.zeros((0, self.dim), np.float32), np.zeros(0, np.float32)
        from articleqa.runtime.threads import single_threaded

        with single_threaded():
            vectors = self._pq.decode(codes)
        if self._pq.nbits == 8:  # one byte per sub-vector: the table applies
            squares = self._squares[self._offsets + codes].sum(axis=1)
        else:
            squares = np.einsum("ij,ij->i", vectors, vectors)
        return vectors, (1.0 / np.sqrt(np.maximum(squares, 1e-24))).astype(np.float32)

    def save(self, path: Path) -> None:
        import faiss

        faiss.write_ProductQuantizer(self._pq, str(path))

    @classmethod
    def load(cls, path: Path) -> PQCodec:
        import faiss

        return cls(faiss.read_ProductQuantizer(str(path)), file=Path(path).name)

    def save_as(self, folder: Path) -> Path:
        """Write the codebook into `folder` under its own name (atomically); returns the path."""
        path = Path(folder) / self.file
        if not path.exists():
            tmp = Path(folder) / f".tmp-{self.file}"
            self.save(tmp)
            tmp.replace(path)
        return path


Codec = Int8Codec | PQCodec
# A table of at most this many word pieces keeps them decoded in memory (16,384 x 384 float32): a
# small library's question then skips decoding its candidates. Larger tables decode only the
# candidates they are asked about.
DECODED_UP_TO = 16_384


def ranges(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The concatenation of range(start, start + count) for each pair, without a Python loop."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if not total:
        return np.zeros(0, np.int64)
    ends = np.cumsum(counts)
    return np.arange(total, dtype=np.int64) + np.repeat(np.asarray(starts, dtype=np.int64) - (ends - counts), counts)


def offsets_of(counts) -> np.ndarray:
    """Passage i owns rows offsets[i]:offsets[i+1]."""
    return np.concatenate([[0], np.cumsum(counts, dtype=np.int64)]).astype(np.int64)


@dataclass(frozen=True)
class TokenTable:
    """One segment's token codes, row-aligned with its passages."""

    codes: np.ndarray  # (word pieces, codec.width) uint8
    offsets: np.ndarray  # (passages + 1,) int64
    codec: Codec

    @classmethod
    def encode(cls, per_passage: Sequence[np.ndarray], codec: Codec) -> TokenTable:
        """Compress each passage's unit token vectors."""
        counts = [len(m) for m in per_passage]
        stacked = np.vstack(per_passage) if per_passage else np.zeros((0, codec.dim), np.float32)
        codes = codec.encode(stacked) if len(stacked) else np.zeros((0, codec.width), np.uint8)
        return cls(codes, offsets_of(counts), codec)

    @classmethod
    def concat(cls, parts: Sequence[TokenTable], codec: Codec) -> TokenTable:
        if not parts:
            return cls(np.zeros((0, codec.width), np.uint8), np.zeros(1, np.int64), codec)
        return cls(
            np.concatenate([np.asarray(p.codes) for p in parts]),
            offsets_of(np.concatenate([np.diff(p.offsets) for p in parts])),
            codec,
        )

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def counts(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, dtype=np.int64)
        return self.offsets[rows + 1] - self.offsets[rows]

    def token_rows(self, rows: np.ndarray) -> np.ndarray:
        """The code rows of passages `rows`, passage after passage."""
        rows = np.asarray(rows, dtype=np.int64)
        return ranges(self.offsets[rows], self.counts(rows))

    def take(self, rows: np.ndarray) -> TokenTable:
        """The passages `rows` (in that order), as a table of their own."""
        rows = np.asarray(rows, dtype=np.int64)
        return TokenTable(np.asarray(self.codes[self.token_rows(rows)]), offsets_of(self.counts(rows)), self.codec)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The decoded token vectors of passages `rows`, passage after passage."""
        return self.codec.decode(np.asarray(self.codes[self.token_rows(rows)]))

    def _cosines(self, query_tokens: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(tokens of `rows`, question tokens) cosines. The product is taken as (tokens x dim) by
        (dim x question tokens): OpenBLAS runs that shape much faster than its transpose, whose
        dozen-row left side it handles poorly (docs/benchmarks.md)."""
        query = np.asarray(query_tokens, dtype=np.float32).T
        if len(self.codes) <= DECODED_UP_TO:
            vectors, inverse = self._decoded
            picked = self.token_rows(rows)
            if 2 * len(picked) >= len(vectors):  # most of the table: score it all, copy nothing
                return ((vectors @ query) * inverse[:, None])[picked]
            return (vectors[picked] @ query) * inverse[picked, None]
        vectors, inverse = self.codec.decode_scaled(np.asarray(self.codes[self.token_rows(rows)]))
        return (vectors @ query) * inverse[:, None]

    @cached_property
    def _decoded(self) -> tuple[np.ndarray, np.ndarray]:
        """A small table's every token vector, decoded once (see DECODED_UP_TO)."""
        return self.codec.decode_scaled(np.asarray(self.codes))

    def maxsim(self, query_tokens: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """For each passage: the mean over question tokens of the best cosine in the passage."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros(len(rows), dtype=np.float32)
        has_tokens = self.counts(rows) > 0
        present = rows[has_tokens]
        if not len(present) or not len(query_tokens):
            return out
        sims = self._cosines(query_tokens, present)
        # reduceat needs non-empty segments: passages without tokens were left out above.
        best = np.maximum.reduceat(sims, offsets_of(self.counts(present))[:-1], axis=0)
        out[has_tokens] = best.mean(axis=1)
        return out

    def best_match(self, query_tokens: np.ndarray, rows: Sequence[int]) -> np.ndarray:
        """For each question token, its best cosine among all tokens of the passages `rows`."""
        rows = np.asarray(rows, dtype=np.int64)
        if not len(rows) or not self.counts(rows).sum() or not len(query_tokens):
            return np.zeros(len(query_tokens), dtype=np.float32)
        return self._cosines(query_tokens, rows).max(axis=0)

    @classmethod
    def checked(cls, codes, offsets: np.ndarray, passages: int, codec: Codec) -> TokenTable:
        """A table read back from a segment (`codes` may be read by row on demand), checked to
        belong to a segment of `passages` passages and to `codec` (ValueError if not)."""
        if len(offsets) != passages + 1 or offsets[-1] != len(codes):
            raise ValueError(f"token vectors for {len(offsets) - 1} passages, the segment has {passages}")
        if codes.ndim != 2 or codes.shape[1] != codec.width:
            raise ValueError(f"token codes of shape {codes.shape}, expected width {codec.width}")
        return cls(codes, offsets, codec)


CODEBOOKS = Path(__file__).resolve().parents[1] / "codebooks"
# Codebooks shipped for models, trained once on text outside our evaluation sets (docs/retrieval.md).
SHIPPED = {"sentence-transformers/all-MiniLM-L6-v2": "all-MiniLM-L6-v2-pq32x8.faiss"}


@lru_cache(maxsize=4)
def default_codec(model: str) -> PQCodec | None:
    """The codebook shipped for this model, if there is one."""
    import faiss

    name = SHIPPED.get(model)
    if name is None or not (CODEBOOKS / name).exists():
        return None
    return PQCodec(faiss.read_ProductQuantizer(str(CODEBOOKS / name)))
