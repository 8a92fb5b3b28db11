"""Questions through the ONNX copy of the model: the same vectors as torch, and no torch at all."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from articleqa.embed.model import SentenceEmbedder, _export_dir

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What are exosomes?",
    "Are exosomes safe for sensitive skin?",
    "and for hair?",
    "How often should I oil a bicycle chain, and with which oil?",
    "Wer hat den Artikel über Retinol geschrieben?",
    "it is what it is",
    "   spaces   and\ttabs\n",
    "Why do kites dive in gusty wind? " * 60,  # past the model's 256 word pieces: both cut alike
    "x" * 3000,  # one unknown word piece, so no content tokens at all, on both sides
    "Ünïcödé, emoji 🙂, numbers 3.14 and 1,000,000 — “quotes” (brackets) [1]",
]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A torch SentenceEmbedder whose first question wrote the ONNX copy into a home of its own."""
    home = tmp_path_factory.mktemp("onnx-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ARTICLEQA_HOME", str(home))
        torch_side = SentenceEmbedder(onnx=False)
        onnx_side = SentenceEmbedder()
        assert onnx_side.query_backend == "torch" and "until the first question" in onnx_side.describe_queries()
        onnx_side.encode_query("write the copy")
    assert onnx_side.query_backend == "onnx", onnx_side.onnx_note
    return home, torch_side, onnx_side


@pytest.fixture
def home(exported, monkeypatch):
    monkeypatch.setenv("ARTICLEQA_HOME", str(exported[0]))
    return exported[0]


def test_onnx_vectors_and_token_vectors_equal_torchs(exported, home):
    _, torch_side, onnx_side = exported
    meta = json.loads((_export_dir(onnx_side.name) / "meta.json").read_text())
    assert meta["checked_cosine"] >= 0.9999
    for question in QUESTIONS:
        want_vector, want_tokens = torch_side.encode_query(question)
        got_vector, got_tokens = onnx_side.encode_query(question)
        assert float(want_vector @ got_vector) >= 0.9999, question
        assert got_tokens.shape == want_tokens.shape, question
        assert np.all(np.sum(want_tokens * got_tokens, axis=1) >= 0.9999), question
    assert (onnx_side.dim, onnx_side.max_tokens) == (torch_side.dim, torch_side.max_tokens)


def test_a_new_process_answers_without_importing_torch(home):
    script = (
        "import sys\n"
        "from articleqa.cli import main\n"
        "rc = main(['ask', 'Are exosomes safe?', '--json'])\n"
        "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH', rc)\n"
    )
    env = {**os.environ, "ARTICLEQA_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("NO-TORCH 0"), out.stdout[-500:] + out.stderr[-2000:]
    assert json.loads(out.stdout[: out.stdout.rindex("NO-TORCH")])["hits"]


def test_info_says_how_questions_are_encoded(home, capsys, monkeypatch):
    from articleqa import cli

    assert cli.main(["info"]) == 0
    assert "questions: ONNX Runtime (" in capsys.readouterr().out
    monkeypatch.setenv("ARTICLEQA_BACKEND", "torch")
    assert cli.main(["info"]) == 0
    assert "questions: torch: turned off (ARTICLEQA_BACKEND=torch)" in capsys.readouterr().out


def test_a_damaged_copy_is_written_again(exported, home):
    _, torch_side, onnx_side = exported
    folder = _export_dir(onnx_side.name)
    (folder / "model.onnx").write_bytes(b"not a model")
    fresh = SentenceEmbedder()  # the damaged copy is dropped; the next question writes a good one
    assert fresh.query_backend == "torch" and not folder.exists()
    vector, _ = fresh.encode_query("What are exosomes?")
    assert fresh.query_backend == "onnx" and (folder / "meta.json").exists()
    assert float(vector @ torch_side.encode_query("What are exosomes?")[0]) >= 0.9999


def test_batched_build_encoding_and_token_counts_equal_torchs(exported, home):
    # Batches mix lengths, so padding is masked: every text must come out as if alone.
    _, torch_side, onnx_side = exported
    texts = QUESTIONS * 3
    assert onnx_side.count_tokens(texts) == torch_side.count_tokens(texts)
    want_vectors, want_tokens = torch_side.encode_tokens(texts, batch_size=5)
    got_vectors, got_tokens = onnx_side.encode_tokens(texts, batch_size=5)
    assert np.all(np.sum(want_vectors * got_vectors, axis=1) >= 0.9999)
    for want, got in zip(want_tokens, got_tokens, strict=True):
        assert want.shape == got.shape and np.all(np.sum(want * got, axis=1) >= 0.9999)
    assert np.all(np.sum(onnx_side.encode(texts, batch_size=7) * want_vectors, axis=1) >= 0.9999)
