"""The sentence reader: a model trained here (models/train_sentences.py) that reads the question
with one sentence of a passage at a time and scores it against "none of them", a bar it learned.
The passage's reading is its best sentence; every sentence's margin goes to the highlight.

It runs through ONNX Runtime (int8 weights, shipped in models/reader/), never torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from articleqa.query.answer.reader import READER_DIR, OnnxReader, Reading


class SentenceReader(OnnxReader):
    """The trained sentence reader."""

    kind = "sentence reader"
    script = "models/train_sentences.py"

    def __init__(self, folder: Path = READER_DIR, *, threads: int | None = None) -> None:
        super().__init__(folder, threads=threads)
        self.pair_max = int(self.meta["pair_max"])

    def margins(self, question: str, sentences: Sequence[str]) -> np.ndarray:
        """Each sentence's score as the answer to `question`, above "none of them" (above 0: it
        answers). The pairs are read as the model was trained: [CLS] question [SEP] sentence [SEP]."""
        if not sentences:
            return np.zeros(0, np.float32)
        session, tokenizer = self._load()
        q = tokenizer.encode(question, add_special_tokens=False).ids
        if len(q) > self.question_max:  # its opening ("how long") and its newest words (a follow-up's)
            head = self.question_max // 4
            q = q[:head] + q[len(q) - self.question_max + head :]
        room = self.pair_max - len(q) - 3
        rows = [
            [101, *q, 102, *e.ids[:room], 102]
            for e in tokenizer.encode_batch(list(sentences), add_special_tokens=False)
        ]
        width = max(len(r) for r in rows)
        ids = np.zeros((len(rows), width), np.int64)
        mask = np.zeros_like(ids)
        types = np.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = r
            mask[i, : len(r)] = 1
            types[i, len(q) + 2 : len(r)] = 1
        (out,) = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": types})
        return out.reshape(-1).astype(np.float32)

    def read(
        self,
        question: str,
        passages: Sequence[str],
        leads: Sequence[str] = (),
        sentences: Sequence[Sequence[tuple[int, int]]] = (),
    ) -> list[Reading]:
        """One Reading per passage: its best sentence (offsets into the passage) and that sentence's
        margin, with every sentence's margin. `sentences` gives each passage's sentence spans; a
        passage without them is read as one sentence. `leads` are not read: the model was trained
        on sentences alone."""
        if not passages:
            return []
        where: list[tuple[int, int, int]] = []
        texts: list[str] = []
        for i, text in enumerate(passages):
            spans = list(sentences[i]) if i < len(sentences) and sentences[i] else [(0, len(text))]
            for a, b in spans:
                where.append((i, a, b))
                texts.append(text[a:b])
        scores = self.margins(question, texts)
        out: list[Reading] = []
        for i in range(len(passages)):
            mine = [(float(s), a, b) for (p, a, b), s in zip(where, scores) if p == i]
            best = max(mine, key=lambda m: m[0])
            out.append(Reading(best[0], 0.0, best[1], best[2], tuple(round(m[0], 4) for m in mine)))
        return out
