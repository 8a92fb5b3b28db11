"""Evaluation: our metrics agree with ranx, question files and BEIR folders load, BEIR indexes cache."""

from __future__ import annotations

import json
import random
import subprocess
import sys

import pytest

from articleqa.errors import ArticleQAError
from articleqa.evaluate import (
    Question,
    beir_library,
    is_relevant,
    load_beir,
    load_questions,
    mrr_at,
    ndcg_at,
    recall_at,
)
from articleqa.schema import Article, Chunk, Hit
from articleqa.settings import Settings


def synthetic(seed: int):
    """Graded qrels and a scored run over 40 queries, some with no relevant document retrieved."""
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(60)]
    qrels, run = {}, {}
    for q in range(40):
        qid = f"q{q}"
        qrels[qid] = {d: rng.choice([1, 1, 2]) for d in rng.sample(docs, rng.randint(1, 4))}
        ranked = rng.sample(docs, 30)
        run[qid] = {d: float(30 - i) for i, d in enumerate(ranked)}
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_ranx(seed):
    ranx = pytest.importorskip("ranx")
    qrels, run = synthetic(seed)
    theirs = ranx.evaluate(ranx.Qrels(qrels), ranx.Run(run), ["ndcg@10", "mrr@10", "recall@100", "recall@5"])
    assert ndcg_at(run, qrels, 10) == pytest.approx(theirs["ndcg@10"], abs=1e-6)
    assert mrr_at(run, qrels, 10) == pytest.approx(theirs["mrr@10"], abs=1e-6)
    assert recall_at(run, qrels, 100) == pytest.approx(theirs["recall@100"], abs=1e-6)
    assert recall_at(run, qrels, 5) == pytest.approx(theirs["recall@5"], abs=1e-6)


def test_perfect_and_empty_runs():
    qrels = {"q": {"a": 2, "b": 1}}
    assert ndcg_at({"q": {"a": 2.0, "b": 1.0}}, qrels, 10) == pytest.approx(1.0)
    assert ndcg_at({}, qrels, 10) == 0.0
    assert recall_at({"q": {"b": 1.0}}, qrels, 100) == 0.5


def _hit(text: str, article_id: str = "a") -> Hit:
    article = Article(id=article_id, title="T", text=text, source="s")
    return Hit(chunk=Chunk(article_id, 0, 0, len(text), text), article=article, score=1.0, rank=1)


def test_answer_phrases_match_across_quote_styles_and_spacing():
    q = Question(id="1", question="?", answers=("it’s the cargo",))
    assert is_relevant(_hit("What matters most: It's  the\ncargo, he says."), q)
    assert not is_relevant(_hit("the cargo ship"), q)
    by_article = Question(id="2", question="?", articles=("b",))
    assert is_relevant(_hit("anything", "b"), by_article) and not is_relevant(_hit("anything", "a"), by_article)


def test_bad_question_file_names_the_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "ok?", "answers": ["x"]}\n{"answers": ["no question"]}\n')
    with pytest.raises(ArticleQAError, match="q.jsonl:2"):
        load_questions(path)


def write_beir(folder, n_docs=6):
    (folder / "qrels").mkdir(parents=True)
    topics = ["volcanoes erupt lava", "bees make honey", "rivers carve canyons", "stars fuse hydrogen",
              "owls hunt at night", "glaciers move slowly"]  # fmt: skip
    with open(folder / "corpus.jsonl", "w") as fh:
        for i in range(n_docs):
            row = {"_id": f"d{i}", "title": f"Doc {i}", "text": f"{topics[i]}. More about {topics[i]}."}
            fh.write(json.dumps(row) + "\n")
    with open(folder / "queries.jsonl", "w") as fh:
        fh.write(json.dumps({"_id": "q1", "text": "how do bees make honey"}) + "\n")
        fh.write(json.dumps({"_id": "q2", "text": "unjudged query"}) + "\n")
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")


def test_beir_folder_loads_and_only_judged_queries_count(tmp_path):
    write_beir(tmp_path / "mini")
    articles, queries, qrels = load_beir(tmp_path / "mini")
    assert [a.id for a in articles] == [f"d{i}" for i in range(6)]
    assert queries == {"q1": "how do bees make honey"}
    assert qrels == {"q1": {"d1": 1}}
    with pytest.raises(ArticleQAError, match="not a BEIR folder"):
        load_beir(tmp_path)


def test_beir_index_is_cached_so_a_second_run_embeds_nothing(tmp_path, fake_embedder, monkeypatch):
    import articleqa.library as library

    monkeypatch.setattr(library, "SentenceEmbedder", lambda name: fake_embedder)
    write_beir(tmp_path / "mini")
    settings = Settings(model="fake-hash-embedder")
    lib, _, _ = beir_library(tmp_path / "mini", cache_dir=tmp_path / "cache", settings=settings, progress=False)
    assert len(lib.index.articles) == 6 and fake_embedder.texts_encoded > 0
    fake_embedder.reset()
    again, _, _ = beir_library(tmp_path / "mini", cache_dir=tmp_path / "cache", settings=settings, progress=False)
    assert fake_embedder.texts_encoded == 0
    assert len(again.index.all_chunks()) == len(lib.index.all_chunks())


@pytest.mark.slow
def test_eval_command_ends_with_metrics_as_json(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(
        json.dumps({"question": "What did Dr. Khalifian compare a stem cell to?", "answers": ["delivery truck"]}) + "\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "articleqa", "eval", str(questions), "--json"],
        capture_output=True, text=True, env={**__import__("os").environ, "ARTICLEQA_HOME": str(tmp_path)},
        timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    metrics = json.loads(out.stdout.strip().splitlines()[-1])
    assert metrics["hit@1"] == 1.0 and metrics["questions"] == 1
