"""Embedding on a Ray cluster: `articleqa build --ray [ADDRESS] PATHS`.

The build is the same (build.py reads, cuts and commits a segment every `flush_passages`
passages, so a crash loses at most one group and a rerun embeds only what no segment holds);
what changes is where the model runs. Each group's passage and sentence texts become a Ray
Dataset, and `map_batches` sends them through a pool of actors, each holding one copy of the
model. Actors return passage vectors with their token vectors already compressed by the
library's codec, so no float token vectors cross the network. Cutting articles into passages
needs only the tokenizer and stays in the driver.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from articleqa.embed.codecs import Int8Codec, PQCodec, TokenTable, offsets_of
from articleqa.embed.model import SentenceEmbedder
from articleqa.errors import ArticleQAError

BATCH = 64  # texts per actor call: large enough to keep the model busy, small enough to balance


def _codec_spec(codec) -> tuple:
    """A picklable description of a codec (a faiss quantizer is not picklable)."""
    if isinstance(codec, PQCodec):
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "codebook.faiss"
            codec.save(path)
            return ("pq", path.read_bytes())
    return ("int8", codec.dim)


def _codec_from(spec: tuple):
    if spec[0] == "int8":
        return Int8Codec(spec[1])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "codebook.faiss"
        path.write_bytes(spec[1])
        return PQCodec.load(path)


class _Encoder:
    """A Ray actor: one model, fed batches of texts."""

    def __init__(self, model: str, codec_spec: tuple, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.embedder = SentenceEmbedder(model)
        self.codec = _codec_from(codec_spec)

    def __call__(self, batch: dict) -> dict:
        """Passages (`tokens` true) get their vector and token codes; sentences their vector."""
        texts = [str(t) for t in batch["text"]]
        passage = np.asarray(batch["tokens"], bool)
        vectors = np.zeros((len(texts), self.embedder.dim), np.float32)
        counts = np.zeros(len(texts), np.int64)
        codes = np.full(len(texts), b"", dtype=object)
        if passage.any():
            rows = np.nonzero(passage)[0]
            v, tokens = self.embedder.encode_tokens([texts[r] for r in rows], progress=False)
            vectors[rows] = v
            for r, t in zip(rows, tokens):
                c = self.codec.encode(t)
                counts[r], codes[r] = len(c), c.tobytes()
        if (~passage).any():
            rows = np.nonzero(~passage)[0]
            vectors[rows] = self.embedder.encode([texts[r] for r in rows], progress=False)
        return {"i": batch["i"], "vector": vectors, "count": counts, "codes": codes}


class RayEmbedder:
    """The embedder seam (base.GroupEmbedder) with the model running on Ray actors: builds send
    whole groups; questions and word lookups run on the driver."""

    word_pieces = True

    def __init__(self, model: str, *, address: str | None = None, actors: int | None = None) -> None:
        try:
            import ray
        except ImportError as exc:
            raise ArticleQAError("a Ray build needs Ray: pip install 'articleqa[ray]'") from exc
        if not ray.is_initialized():
            if address and address != "local":
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:  # a cluster of this machine alone, reachable on loopback only
                ray.init(_node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
        self._ray = ray
        self._local = SentenceEmbedder(model)  # the tokenizer cuts passages here; the model stays idle
        self.name, self.dim, self.max_tokens = self._local.name, self._local.dim, self._local.max_tokens
        cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        self.actors = max(1, actors or cpus)
        self.threads = max(1, cpus // self.actors)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._local.count_tokens(texts)

    def _map(self, texts: Sequence[str], tokens: np.ndarray, codec) -> dict:
        """Every text through the actor pool once (one pool per call: a call is a whole group)."""
        rows = [{"i": i, "text": t, "tokens": bool(k)} for i, (t, k) in enumerate(zip(texts, tokens))]
        out = self._ray.data.from_items(rows).map_batches(
            _Encoder,
            fn_constructor_args=(self.name, _codec_spec(codec), self.threads),
            batch_size=BATCH,
            batch_format="numpy",
            concurrency=self.actors,
            num_cpus=self.threads,
        )
        columns: dict[str, list] = {}
        for batch in out.iter_batches(batch_size=None, batch_format="numpy"):
            for key, value in batch.items():
                columns.setdefault(key, []).append(value)
        merged = {key: np.concatenate(parts) for key, parts in columns.items()}
        order = np.argsort(merged["i"], kind="stable")  # batches come back in any order
        return {key: value[order] for key, value in merged.items()}

    def encode_group(
        self, passages: Sequence[str], sentences: Sequence[str], codec
    ) -> tuple[np.ndarray, TokenTable, np.ndarray]:
        """A group's passage vectors, their token table in `codec`, and its sentence vectors."""
        texts = [*passages, *sentences]
        if not texts:
            empty = np.zeros((0, self.dim), np.float32)
            return empty, TokenTable.concat([], codec), empty
        kinds = np.r_[np.ones(len(passages), bool), np.zeros(len(sentences), bool)]
        got = self._map(texts, kinds, codec)
        n = len(passages)
        codes = np.frombuffer(b"".join(got["codes"][:n]), np.uint8).reshape(-1, codec.width)
        table = TokenTable(codes, offsets_of(got["count"][:n]), codec)
        vectors = np.ascontiguousarray(got["vector"], dtype=np.float32)
        return vectors[:n], table, vectors[n:]

    def encode(self, texts: Sequence[str], **kwargs) -> np.ndarray:
        """Vectors of a few texts (a question): on the driver."""
        return self._local.encode(texts, **kwargs)

    def encode_query(self, text: str):
        """A question: on the driver."""
        return self._local.encode_query(text)

    def encode_tokens(self, texts: Sequence[str], **kwargs):
        """Float token vectors (only for a model that has no codebook yet): on the driver."""
        return self._local.encode_tokens(texts, **kwargs)

    def content_words(self, text: str) -> list[str]:
        return self._local.content_words(text)

    def content_offsets(self, text: str) -> list[tuple[int, int]]:
        return self._local.content_offsets(text)

    def describe_queries(self) -> str:
        return self._local.describe_queries()

    def done_building(self) -> None:
        self._local.done_building()
