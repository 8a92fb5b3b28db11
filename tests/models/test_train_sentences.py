"""The sentence reader's training data (models/train_sentences.py): pairs as the model reads them,
grouped by question, the answer's sentence kept when a long paragraph is cut to a window."""

from __future__ import annotations

import numpy as np

from articleqa.models import train_sentences as ts
from articleqa.models.train_reader import _tokenizer


def test_pairs_are_question_then_sentence_with_their_segment_ids(tmp_path):
    tok = _tokenizer()
    groups = ts._Groups()
    q = tok.encode("when did it open", add_special_tokens=False).ids
    groups.add(tok, q, ["It opened in 1885.", "It closed later."], 0)
    groups.save(tmp_path / "g.npz")
    data = ts.Groups(tmp_path / "g.npz")
    assert len(data) == 1 and data.sizes.tolist() == [2] and data.targets.tolist() == [0]
    ids, mask, types = data.batch([0])
    first = ids[0][mask[0] == 1].tolist()
    assert first[0] == 101 and first[len(q) + 1] == 102 and first[-1] == 102
    assert tok.decode(first[len(q) + 2 : -1]) == "it opened in 1885."
    assert types[0][: len(q) + 2].sum() == 0 and types[0][len(q) + 2 : len(first)].min() == 1


def test_a_long_paragraph_is_cut_to_a_window_that_keeps_the_answer(tmp_path):
    tok = _tokenizer()
    groups = ts._Groups()
    sentences = [f"Sentence number {i} is here." for i in range(30)]
    groups.add(tok, [2054], sentences, 25)
    groups.add(tok, [2054], sentences, -1)
    assert groups.sizes == [ts.MAX_SENTENCES, ts.MAX_SENTENCES]
    kept = groups.ids[groups.targets[0]]  # the first group's pairs come first
    assert "25" in tok.decode(kept.tolist())
    assert groups.targets[1] == -1


def test_steps_hold_whole_questions():
    data = ts.Groups.__new__(ts.Groups)
    data.sizes = np.array([5, 7, 3, 9, 4])
    steps = ts.plan(data, pairs_per_step=10, seed=1)
    assert sorted(g for s in steps for g in s) == [0, 1, 2, 3, 4]
