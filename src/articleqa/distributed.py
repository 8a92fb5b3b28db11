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

from .embedding import Embedder
from .errors import ArticleQAError
from .tokens import Int8Codec, PQCodec, TokenTable, offsets_of

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

    def __init__(self, model: str, codec_spec: tuple | None, threads: int) -> None:
        import torch

        torch.set_num_threads(max(1, threads))
        self.embedder = Embedder(model)
        self.codec = _codec_from(codec_spec) if codec_spec is not None else None

    def __call__(self, batch: dict) -> dict:
        texts = [str(t) for t in batch["text"]]
        if self.codec is None:  # sentences: their vectors only
            return {"i": batch["i"], "vector": self.embedder.encode(texts, progress=False)}
        vectors, tokens = self.embedder.encode_tokens(texts, progress=False)
        codes = [self.codec.encode(t) for t in tokens]
        return {
            "i": batch["i"],
            "vector": vectors,
            "count": np.array([len(c) for c in codes], np.int64),
            "codes": np.array([c.tobytes() for c in codes], dtype=object),
        }


class RayEmbedder:
    """The Embedder interface build.encode needs, with the model running on Ray actors."""

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
        self._local = Embedder(model)  # the tokenizer cuts passages here; the model stays idle
        self.name, self.dim, self.max_tokens = self._local.name, self._local.dim, self._local.max_tokens
        cpus = int(ray.cluster_resources().get("CPU", os.cpu_count() or 1))
        self.actors = max(1, actors or cpus)
        self.threads = max(1, cpus // self.actors)

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        return self._local.count_tokens(texts)

    def _map(self, texts: Sequence[str], codec_spec: tuple | None) -> dict:
        if not texts:
            return {}
        data = self._ray.data.from_items([{"i": i, "text": t} for i, t in enumerate(texts)])
        out = data.map_batches(
            _Encoder,
            fn_constructor_args=(self.name, codec_spec, self.threads),
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

    def encode(self, texts: Sequence[str], **_) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), np.float32)
        return np.ascontiguousarray(np.vstack(self._map(texts, None)["vector"]), dtype=np.float32)

    def encode_coded(self, texts: Sequence[str], codec) -> tuple[np.ndarray, TokenTable]:
        """Passage vectors and a token table in `codec`, texts in order."""
        if not texts:
            return np.zeros((0, self.dim), np.float32), TokenTable.concat([], codec)
        got = self._map(texts, _codec_spec(codec))
        codes = np.frombuffer(b"".join(got["codes"]), np.uint8).reshape(-1, codec.width)
        table = TokenTable(codes, offsets_of(got["count"]), codec)
        return np.ascontiguousarray(np.vstack(got["vector"]), dtype=np.float32), table

    def encode_tokens(self, texts: Sequence[str], **kwargs):
        """Float token vectors (only for a model that has no codebook yet): on the driver."""
        return self._local.encode_tokens(texts, **kwargs)
