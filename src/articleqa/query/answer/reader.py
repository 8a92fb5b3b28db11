"""The readers: models trained here that read the question and a passage together. What they find
(a Reading), the seam they share (PassageReader), the one the package ships (shipped), and the
span reader (models/train_reader.py), which scores every span of the passage as its answer, and
"no answer here"; the sentence reader is in sentence_reader.py.

It runs through ONNX Runtime (int8 weights, shipped in models/reader/), never torch.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from articleqa.errors import ModelUnavailable

READER_DIR = Path(__file__).resolve().parents[2] / "models" / "reader"
MARGIN_CLIP = 8.0  # a margin is a difference of logits; past this it says nothing more


def clipped(margin):
    """A margin (a number or an array) within ±MARGIN_CLIP, as every use of it weighs it."""
    return np.clip(margin, -MARGIN_CLIP, MARGIN_CLIP)


LONGEST_SPAN = 30  # word pieces: an answer is a phrase or a clause, not a paragraph


@dataclass(frozen=True)
class Reading:
    """What the reader found in one passage: its best span (character offsets into the passage
    text) and that span's score, against the score of "no answer here"."""

    score: float
    null: float
    start: int
    end: int
    # A sentence reader's margin for each sentence of the passage, in order (empty for a span reader).
    sentences: tuple[float, ...] = ()

    @property
    def margin(self) -> float:
        """How much better the best span is than no answer: above 0, the reader found one."""
        return self.score - self.null


class PassageReader(Protocol):
    """Reads a question with passages: one Reading per passage. `leads` (per passage, optional):
    text read before it, such as its article's title and heading path; `sentences` (per passage,
    optional): its sentence spans, which a sentence reader scores one by one."""

    def read(
        self,
        question: str,
        passages: Sequence[str],
        leads: Sequence[str] = (),
        sentences: Sequence[Sequence[tuple[int, int]]] = (),
    ) -> list[Reading]: ...


class OnnxReader:
    """A trained reader's folder (model.onnx, tokenizer.json, meta.json naming its `kind`) and its
    ONNX Runtime session, loaded on first use. Subclasses name their kind and how they read."""

    kind = ""
    script = ""  # the script that trains this kind, named when there is no model

    def __init__(self, folder: Path = READER_DIR, *, threads: int | None = None) -> None:
        meta_path = folder / "meta.json"
        if not meta_path.exists():
            raise ModelUnavailable(f"no reader model in {folder}: train one with {self.script}")
        self.folder = folder
        self.meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if self.meta.get("kind") != self.kind:
            raise ModelUnavailable(f"the model in {folder} is a {self.meta.get('kind')}, not a {self.kind}")
        self.question_max = int(self.meta["question_max"])
        self._threads = threads or min(2, os.cpu_count() or 1)
        self._session = None
        self._tokenizer = None
        self._lock = threading.Lock()

    def _load(self):
        if self._session is None:
            with self._lock:
                if self._session is None:
                    import onnxruntime as ort
                    from tokenizers import Tokenizer

                    tokenizer = Tokenizer.from_file(str(self.folder / "tokenizer.json"))
                    tokenizer.no_truncation()
                    tokenizer.no_padding()
                    options = ort.SessionOptions()
                    options.intra_op_num_threads = self._threads
                    options.inter_op_num_threads = 1
                    options.log_severity_level = 3
                    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
                    path = str(self.folder / "model.onnx")
                    self._session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
                    self._tokenizer = tokenizer
        return self._session, self._tokenizer


class SpanReader(OnnxReader):
    """The trained span reader."""

    kind = "span reader"
    script = "models/train_reader.py"

    def __init__(self, folder: Path = READER_DIR, *, threads: int | None = None) -> None:
        super().__init__(folder, threads=threads)
        self.seq_max = int(self.meta["seq_max"])

    def read(
        self,
        question: str,
        passages: Sequence[str],
        leads: Sequence[str] = (),
        sentences: Sequence[Sequence[tuple[int, int]]] = (),
    ) -> list[Reading]:
        """One Reading per passage; the answer is looked for in the passage only, not its lead. A
        passage longer than the model reads at once is read in overlapping windows; its reading
        is the window's that is surest of an answer."""
        if not passages:
            return []
        session, tokenizer = self._load()
        q = tokenizer.encode(question, add_special_tokens=False).ids[: self.question_max]
        rows, where = [], []
        for i, text in enumerate(passages):
            lead = leads[i] if i < len(leads) and leads[i] else ""
            lead_ids = tokenizer.encode(lead + ":", add_special_tokens=False).ids[:16] if lead else []
            enc = tokenizer.encode(text, add_special_tokens=False)
            room = self.seq_max - len(q) - 3 - len(lead_ids)
            first = len(q) + 2 + len(lead_ids)
            for at in windows(len(enc.ids), room):
                ids = enc.ids[at : at + room]
                rows.append([101, *q, 102, *lead_ids, *ids, 102])
                where.append((i, first, first + len(ids), enc.offsets[at : at + room], len(q) + 2))
        width = max(len(r) for r in rows)
        input_ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros_like(input_ids)
        types = np.zeros_like(input_ids)
        for i, (r, (_, _, _, _, second)) in enumerate(zip(rows, where)):
            input_ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
            types[i, second : len(r)] = 1
        starts, ends = session.run(None, {"input_ids": input_ids, "attention_mask": mask, "token_type_ids": types})
        out: list[Reading | None] = [None] * len(passages)
        for row, (i, lo, hi, offsets, _) in enumerate(where):
            null = float(starts[row, 0] + ends[row, 0])
            if hi <= lo:
                found = Reading(-1e4, null, 0, 0)
            else:
                score, a, b = best_span(starts[row], ends[row], lo, hi)
                found = Reading(score, null, offsets[a - lo][0], offsets[b - lo][1])
            if out[i] is None or found.margin > out[i].margin:
                out[i] = found
        return out


def windows(pieces: int, room: int, overlap: int = 48) -> list[int]:
    """Where each window of at most `room` word pieces starts, so that windows overlapping by
    `overlap` cover all `pieces`."""
    if pieces <= room or room <= overlap:
        return [0]
    count = -(-(pieces - room) // (room - overlap)) + 1  # as few as cover them, spread evenly
    return [round(k * (pieces - room) / (count - 1)) for k in range(count)]


def best_span(start: np.ndarray, end: np.ndarray, lo: int, hi: int, longest: int = LONGEST_SPAN):
    """The best (score, i, j) with lo <= i <= j < hi and j - i < `longest`, by start[i] + end[j]."""
    s, e = start[lo:hi], end[lo:hi]
    n = len(s)
    # Every pair at once: n is at most a few hundred word pieces.
    scores = s[:, None] + e[None, :]
    i, j = np.indices((n, n))
    scores = np.where((j >= i) & (j - i < longest), scores, -np.inf)
    flat = int(np.argmax(scores))
    a, b = divmod(flat, n)
    return float(scores[a, b]), a + lo, b + lo
