"""The readers (query/answer/reader.py, sentence_reader.py, readers.py): what they read, what
they give back, and how the answer uses it. A fake ONNX session stands in for the model in the
plumbing tests; the shipped model, where there is one, is checked on a plain question."""

from __future__ import annotations

import json

import numpy as np
import pytest

from articleqa.errors import ModelUnavailable
from articleqa.query.answer.highlight import highlight
from articleqa.query.answer.reader import PassageReader, SpanReader
from articleqa.query.answer.readers import load, shipped
from articleqa.query.answer.sentence_reader import SentenceReader
from articleqa.schema import Article, Chunk, Hit
from articleqa.settings import AnswerSettings


class _ScoresYears:
    """A stand-in session: a pair scores 3 when its sentence part holds a digit's word piece,
    else -1; it records what it was given."""

    def __init__(self, tokenizer) -> None:
        self.digits = {i for t, i in tokenizer.get_vocab().items() if t.strip("#").isdigit()}
        self.fed: list[dict] = []

    def run(self, _outputs, feed):
        self.fed.append(feed)
        ids, types = feed["input_ids"], feed["token_type_ids"]
        out = [
            3.0 if any(int(t) in self.digits for t, s in zip(row, seg) if s == 1) else -1.0
            for row, seg in zip(ids, types)
        ]
        return [np.array(out, np.float32)]


def make_hit(text: str) -> Hit:
    article = Article(id="cats", title="Cats", text=text, source="cats.md")
    return Hit(
        chunk=Chunk(article_id="cats", ordinal=0, start=0, end=len(text), text=text), article=article, score=1.0, rank=1
    )


@pytest.fixture
def sentence_reader(tmp_path):
    from tokenizers import Tokenizer

    from articleqa.embed.model import bundled_model_path

    (tmp_path / "meta.json").write_text(json.dumps({"kind": "sentence reader", "pair_max": 40, "question_max": 8}))
    reader = SentenceReader(tmp_path)
    tokenizer = Tokenizer.from_file(str(bundled_model_path() / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    session = _ScoresYears(tokenizer)
    reader._session, reader._tokenizer = session, tokenizer
    return reader, session


def test_a_sentence_reader_reads_each_sentence_with_the_question_and_finds_the_best(sentence_reader):
    reader, session = sentence_reader
    text = "Bicycles changed. The safety bicycle came out in 1885. It had a chain."
    spans = [(0, 17), (18, 54), (55, 70)]
    (reading,) = reader.read("when did the safety bicycle come out", [text], ["A history"], [spans])
    assert text[reading.start : reading.end] == "The safety bicycle came out in 1885."
    assert reading.margin == 3.0 and reading.sentences == (-1.0, 3.0, -1.0)
    feed = session.fed[0]
    assert feed["input_ids"].shape[0] == 3  # one pair a sentence, one batch
    row, types = feed["input_ids"][1], feed["token_type_ids"][1]
    assert row[0] == 101 and row[(types == 0).sum() - 1] == 102  # [CLS] question [SEP] sentence [SEP]
    assert row.shape[0] <= 40


def test_a_passage_without_sentence_spans_is_read_whole_and_nothing_is_read_for_nothing(sentence_reader):
    reader, session = sentence_reader
    (reading,) = reader.read("when", ["No years here at all"])
    assert (reading.start, reading.end, reading.sentences) == (0, 20, (-1.0,))
    assert reader.read("when", []) == [] and len(session.fed) == 1


def test_the_sentence_readers_margins_move_the_highlight():
    hit = make_hit("Cats like milk. Cats came to Europe in 1885 with traders.")
    spans = [(0, 15), (16, 57)]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    question = np.array([1.0, 0.0], np.float32)
    weights = AnswerSettings(pair_margin=0.0, reader_pair_margin=0.0)
    (plain,) = highlight([hit], "cats", question, [(spans, vectors)], weights=weights)
    assert plain.highlight == "Cats like milk."
    (read,) = highlight(
        [hit], "cats", question, [(spans, vectors)], weights=weights, reader_margins=[np.array([-4.0, 6.0])]
    )
    assert read.highlight == "Cats came to Europe in 1885 with traders."


def test_the_reader_folder_names_its_kind(tmp_path):
    with pytest.raises(ModelUnavailable, match="no reader model"):
        load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "oracle"}))
    with pytest.raises(ModelUnavailable, match="'oracle'"):
        load(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"kind": "sentence reader", "pair_max": 80, "question_max": 24}))
    assert isinstance(load(tmp_path), SentenceReader)
    with pytest.raises(ModelUnavailable, match="not a span reader"):
        SpanReader(tmp_path)


@pytest.mark.skipif(shipped() is None, reason="no reader shipped in this checkout")
def test_the_shipped_reader_keeps_the_contract_and_finds_a_plain_answer():
    reader: PassageReader = shipped()
    text = "The museum has a garden. It opened to the public in 1923. Tickets are sold at the gate."
    spans = [(0, 24), (25, 57), (58, 87)]
    readings = reader.read("When did the museum open?", [text, "Apples are red."], ["Museum", "Fruit"], [spans, []])
    assert len(readings) == 2
    assert text[readings[0].start : readings[0].end] == "It opened to the public in 1923."
    assert readings[0].margin > 0 > readings[1].margin


def test_a_long_question_keeps_its_opening_and_its_newest_words(sentence_reader):
    reader, session = sentence_reader
    glued = "How long until I see results from an exosome serum on my dry skin in the winter months? and for hair?"
    reader.read(glued, ["Hair grows."])
    row, types = session.fed[0]["input_ids"][0], session.fed[0]["token_type_ids"][0]
    question = reader._tokenizer.decode(row[1 : (types == 0).sum() - 1].tolist())
    assert question.startswith("how long") and question.endswith("and for hair?")
    assert (types == 0).sum() - 2 == reader.question_max


def test_a_follow_up_is_read_as_its_own_question_or_before_the_one_it_continues():
    from articleqa.query.answer.pipeline import _to_read

    glued = "How do I apply an exosome serum? how long until results?"
    assert _to_read("how long until results?", glued) == "how long until results?"
    assert _to_read("and for hair?", "What are exosomes? and for hair?") == "and for hair? What are exosomes?"
    assert _to_read("What are exosomes?", "What are exosomes?") == "What are exosomes?"
