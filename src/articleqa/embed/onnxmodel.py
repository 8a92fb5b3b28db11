"""The embedding model as an ONNX Runtime session: questions encoded without importing torch.

A sentence-transformers model is exported once (torch and onnx are needed then, and only then)
into a folder of plain files: `model.onnx`, `tokenizer.json` and `meta.json`. The export is
checked against the torch model before it is kept; after that a process that only answers
questions loads ONNX Runtime and the tokenizer (a few hundred milliseconds), not torch (seconds).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np

from articleqa.errors import ModelUnavailable
from articleqa.runtime.malloc import give_back
from articleqa.runtime.stopping import checkpoint

log = logging.getLogger("articleqa")

FORMAT = 1
# The export is kept only if every probe text's vectors match torch's this closely.
MIN_COSINE = 0.9999
# Probe texts for that check: a question, a sentence with odd characters, one past the model's
# token limit (truncation must agree), and one that is all stop words.
_PROBES = (
    "What are exosomes and why are they used in skincare?",
    "Cafés in Zürich — 3½ “quoted” words, emoji 🙂 and the URL https://example.org/a?b=c.",
    " ".join(["Long passages are truncated at the model's token limit, in the same place."] * 40),
    "it is what it was",
)


def cache_dir(home: Path, model: str, fingerprint: str) -> Path:
    """The folder that holds (or will hold) the export of `model` as it is on disk now."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model).strip("-")[:80] or "model"
    return home / "models" / f"{slug}-{fingerprint}"


def fingerprint(location: Path | None) -> str:
    """Changes when the model's weights change: sizes and times of the weight files. A hub name
    without a local folder gets a fixed one (its snapshot is what sentence-transformers cached)."""
    if location is None or not location.is_dir():
        return "hub"
    parts = []
    for f in sorted(location.rglob("*")):
        if f.suffix in {".safetensors", ".bin", ".json"} and f.is_file():
            st = f.stat()
            parts.append(f"{f.relative_to(location)}:{st.st_size}:{int(st.st_mtime)}")
    import hashlib

    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:12]


class OnnxEncoder:
    """Texts -> unit vectors and unit content token vectors, as SentenceEmbedder.encode_tokens gives, and
    word-piece counts; questions one at a time, builds in length-sorted batches."""

    def __init__(self, folder: Path, *, threads: int | None = None) -> None:
        from tokenizers import Tokenizer

        meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
        if meta.get("format") != FORMAT:
            raise ModelUnavailable(f"{folder} holds an export of another format; delete it to export again")
        self.folder = folder
        self.dim = int(meta["dim"])
        self.max_tokens = int(meta["max_tokens"])
        self.inputs = tuple(meta["inputs"])
        self._skip = np.array(meta["skip_ids"], dtype=np.int64)
        self._special = np.array(meta["special_ids"], dtype=np.int64)
        self._tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._counter = None
        self._batch_session = None  # made on the first batch (builds only), on every core
        # Two threads for a question (faster on 2 idle cores). They do not spin while waiting for
        # work: spinning takes the cores from a server's other requests (docs/benchmarks.md).
        threads = threads or min(2, os.cpu_count() or 1)
        self._session = _session(folder / "model.onnx", threads, arena=False, spin=False)

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Word pieces per text, without special tokens and without the model's truncation."""
        if self._counter is None:
            from tokenizers import Tokenizer

            counter = Tokenizer.from_str(self._tokenizer.to_str())
            counter.no_truncation()
            self._counter = counter
        return [len(e.ids) for e in self._counter.encode_batch(list(texts), add_special_tokens=False)]

    def _content(self, text: str):
        """The encoding of `text` and which of its word pieces are content (`content_tokens`' rows)."""
        encoding = self._tokenizer.encode(text)
        ids = np.array(encoding.ids, dtype=np.int64)
        content = ~np.isin(ids, self._skip)
        if not content.any():
            content = ~np.isin(ids, self._special)
        return encoding, content

    def content_offsets(self, text: str) -> list[tuple[int, int]]:
        """Where in `text` each content word piece lies, in the order of its token vectors."""
        encoding, content = self._content(text)
        return [tuple(o) for o, keep in zip(encoding.offsets, content, strict=True) if keep]

    def content_words(self, text: str) -> list[str]:
        """For each content word piece of `text` as the model reads it (the rows `content_tokens`
        keeps, in order), the whole word it is part of."""
        encoding, content = self._content(text)
        return content_words(text, encoding.offsets, encoding.word_ids, content)

    def encode_tokens(self, texts: list[str]) -> tuple[np.ndarray, list[np.ndarray]]:
        vectors, tokens = [], []
        for text in texts:  # one at a time: no padding, so every position is a real token
            enc = self._tokenizer.encode(text)
            ids = np.array([enc.ids], dtype=np.int64)
            matrix, sentence = self._session.run(["token_embeddings", "sentence_embedding"], self._feed(ids, [enc]))
            tokens.append(content_tokens(ids[0], matrix[0], self._skip, self._special))
            vectors.append(sentence[0])
        vectors = np.vstack(vectors).astype(np.float32)
        return np.ascontiguousarray(vectors / unit_norms(vectors)), tokens

    def encode_batches(self, texts: list[str], *, batch_size: int = 16, tokens: bool = True, progress=None):
        """Many texts on every core, batched by length (little padding): unit vectors, and content
        token vectors when `tokens` (else None). `progress(done)` is called after each batch."""
        if self._batch_session is None:
            self._batch_session = _session(self.folder / "model.onnx", os.cpu_count() or 1, arena=True)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        vectors = np.zeros((len(texts), self.dim), np.float32)
        token_lists: list = [None] * len(texts)
        outputs = ["token_embeddings", "sentence_embedding"] if tokens else ["sentence_embedding"]
        for b in range(0, len(order), batch_size):
            checkpoint()  # a batch takes well under a second: a stopping server waits no longer
            rows = order[b : b + batch_size]
            batch = [encodings[i] for i in rows]
            ids = np.zeros((len(rows), max(len(e.ids) for e in batch)), np.int64)
            for r, e in enumerate(batch):
                ids[r, : len(e.ids)] = e.ids
            result = self._batch_session.run(outputs, self._feed(ids, batch))
            vectors[rows] = result[-1]
            if tokens:
                for r, (i, e) in enumerate(zip(rows, batch, strict=True)):
                    n = len(e.ids)
                    token_lists[i] = content_tokens(ids[r, :n], result[0][r, :n], self._skip, self._special)
            if progress is not None:
                progress(len(rows))
        vectors /= unit_norms(vectors)
        return vectors, (token_lists if tokens else None)

    def release_batches(self) -> None:
        """Drop the build session and its memory arena (a server keeps only the question one)."""
        if self._batch_session is not None:
            self._batch_session = None
            give_back()

    def _feed(self, ids: np.ndarray, encodings) -> dict:
        """The model's inputs for a batch padded to `ids`' width: padding is masked out."""
        mask, types = np.zeros_like(ids), np.zeros_like(ids)
        for r, e in enumerate(encodings):
            mask[r, : len(e.ids)] = 1
            types[r, : len(e.type_ids)] = e.type_ids
        feed = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self.inputs:
            feed["token_type_ids"] = types
        return feed


def _session(path: Path, threads: int, *, arena: bool, spin: bool = True):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if not arena:
        # Without the arena a question's few kilobytes of activations are plain allocations: much
        # less stays resident, for a little more time per question (docs/benchmarks.md).
        options.enable_cpu_mem_arena = False
        options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def content_tokens(ids: np.ndarray, matrix: np.ndarray, skip: np.ndarray, special: np.ndarray) -> np.ndarray:
    """The unit vectors of a text's content word pieces (stop words, punctuation and special
    tokens left out; a text of stop words only keeps its words)."""
    content = ~np.isin(ids, skip)
    if not content.any():
        content = ~np.isin(ids, special)
    picked = matrix[content].astype(np.float32)
    return np.ascontiguousarray(picked / unit_norms(picked))


def content_words(text: str, offsets, word_ids, content) -> list[str]:
    """For each content word piece (`content` marks them among all pieces, with their `offsets`
    in `text` and the number of the word each belongs to), the whole word it is part of."""
    spans: dict[int, tuple[int, int]] = {}
    for word, (start, end) in zip(word_ids, offsets, strict=True):
        if word is not None:
            a, b = spans.get(word, (start, end))
            spans[word] = (min(a, start), max(b, end))
    return [text[slice(*spans[w])] if w is not None else "" for w, keep in zip(word_ids, content, strict=True) if keep]


def unit_norms(matrix: np.ndarray) -> np.ndarray:
    """Each row's length (never zero): dividing by it makes unit rows."""
    return np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def export(model, folder: Path, *, skip_ids: np.ndarray, reference) -> None:
    """Write `model` (a loaded SentenceTransformer) to `folder` as ONNX, after checking that it
    gives what `reference(texts) -> (vectors, token lists)` gives. Raises ModelUnavailable with
    the reason when the model cannot be exported or does not match; nothing is left behind."""
    try:
        import onnx  # noqa: F401 - torch.onnx needs it; say so plainly if it is missing
        import torch  # noqa: F401
    except ImportError as exc:
        raise ModelUnavailable(f"exporting to ONNX needs the onnx package ({exc})") from exc

    tokenizer = model.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise ModelUnavailable("the model has no fast (Rust) tokenizer to run without transformers")
    names = [n for n in ("input_ids", "token_type_ids", "attention_mask") if n in tokenizer.model_input_names]
    if names[:1] != ["input_ids"] or "attention_mask" not in names:
        raise ModelUnavailable(f"unexpected model inputs {tokenizer.model_input_names}")
    max_tokens = int(model.max_seq_length or 256)
    folder.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        _trace(model, names, work / "plain.onnx")
        rust = backend.__class__.from_str(backend.to_str())
        rust.no_padding()
        rust.enable_truncation(max_tokens)
        rust.save(str(work / "tokenizer.json"))
        meta = {
            "format": FORMAT,
            "dim": int(model.get_embedding_dimension()),
            "max_tokens": max_tokens,
            "inputs": names,
            "skip_ids": [int(i) for i in skip_ids],
            "special_ids": sorted(set(tokenizer.all_special_ids)),
        }
        _keep_the_checked_graph(model, work, meta, reference)
        try:
            os.replace(work, folder)  # whole or not at all; another process may have won the race
        except OSError:
            if not (folder / "meta.json").exists():
                raise
    except ModelUnavailable:
        raise
    except Exception as exc:  # torch.onnx raises many types for a model it cannot trace
        raise ModelUnavailable(f"ONNX export failed ({exc.__class__.__name__}: {exc})") from exc
    finally:
        if work.exists():
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def _trace(model, names: list[str], path: Path) -> None:
    """The whole sentence-transformers pipeline, from word-piece ids to both outputs, as ONNX."""
    import torch

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors):
            out = self.model(dict(zip(names, tensors, strict=True)))
            return out["token_embeddings"], out["sentence_embedding"]

    sample = model.tokenizer(["a question to trace the graph with"], return_tensors="pt")
    args = tuple(sample[n].to(model.device) for n in names)
    dynamic = {n: {0: "batch", 1: "tokens"} for n in names}
    dynamic.update(token_embeddings={0: "batch", 1: "tokens"}, sentence_embedding={0: "batch"})
    # Eager attention traces to plain operators that ONNX Runtime's transformer optimizer can
    # fuse (the default SDPA attention traces to a pattern it does not recognize); the model is
    # given back as it was. The tracer warns about every Python branch it freezes; the check
    # after the export is the real test.
    auto = getattr(model[0], "auto_model", None)
    attention = getattr(getattr(auto, "config", None), "_attn_implementation", None)
    switch = attention not in (None, "eager") and hasattr(auto, "set_attn_implementation")
    try:
        if switch:
            auto.set_attn_implementation("eager")
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                Whole().eval(),
                args,
                str(path),
                input_names=names,
                output_names=["token_embeddings", "sentence_embedding"],
                dynamic_axes=dynamic,
                opset_version=17,
                dynamo=False,
            )
    finally:
        if switch:
            auto.set_attn_implementation(attention)


def _keep_the_checked_graph(model, work: Path, meta: dict, reference) -> None:
    """The fused graph (faster, docs/benchmarks.md) if it matches torch, else the plain one; the
    worst cosine of the check goes into meta.json. ModelUnavailable when neither matches."""
    auto = getattr(model[0], "auto_model", None)
    config = getattr(auto, "config", None)
    shape = (getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0))
    fused = _fuse(work / "plain.onnx", work / "model.onnx", *shape)
    for graph in ("fused", "plain") if fused else ("plain",):
        if graph == "plain":
            os.replace(work / "plain.onnx", work / "model.onnx")
        meta["graph"] = graph
        (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
        try:
            worst = _check(OnnxEncoder(work), reference)
            break
        except ModelUnavailable:
            if graph == "plain":
                raise
    (work / "plain.onnx").unlink(missing_ok=True)
    meta["checked_cosine"] = worst
    (work / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")


def _fuse(source: Path, target: Path, heads: int, hidden: int) -> bool:
    """Write `source` with attention, layer norms and GELU fused by ONNX Runtime's transformer
    optimizer; False where it does not apply to this model."""
    try:
        from onnxruntime.transformers import optimizer

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimizer.optimize_model(
                str(source), model_type="bert", num_heads=heads, hidden_size=hidden, opt_level=1
            )
        log.info("ONNX graph fused: %s", fused.get_fused_operator_statistics())
        fused.save_model_to_file(str(target))
        return True
    except Exception as exc:  # the optimizer raises many types for graphs it does not know
        log.info("ONNX graph left unfused (%s: %s)", exc.__class__.__name__, exc)
        return False


def _check(encoder: OnnxEncoder, reference) -> float:
    """The smallest cosine between ONNX and torch over the probes' vectors and token vectors."""
    texts = list(_PROBES)
    want_vectors, want_tokens = reference(texts)
    got_vectors, got_tokens = encoder.encode_tokens(texts)
    worst = float(np.min(np.sum(want_vectors * got_vectors, axis=1)))
    for want, got in zip(want_tokens, got_tokens, strict=True):
        if want.shape != got.shape:
            raise ModelUnavailable(f"ONNX tokenization differs from the model's ({got.shape} vs {want.shape})")
        worst = min(worst, float(np.min(np.sum(want * got, axis=1))))
    if worst < MIN_COSINE:
        raise ModelUnavailable(f"ONNX vectors differ from torch's (cosine {worst:.6f} < {MIN_COSINE})")
    return worst
