"""The small public surface: what `import articleqa` promises."""

from __future__ import annotations

import dataclasses

import articleqa
from conftest import ARTICLES

EXPECTED = {"Answer", "Article", "ArticleQAError", "Chunk", "Hit", "Library", "Settings", "__version__", "open"}


def test_all_is_sorted_and_exact():
    assert articleqa.__all__ == sorted(articleqa.__all__)
    assert set(articleqa.__all__) == EXPECTED
    for name in articleqa.__all__:
        assert hasattr(articleqa, name), name


def test_public_types():
    assert callable(articleqa.open)
    for cls in (articleqa.Hit, articleqa.Answer, articleqa.Article, articleqa.Chunk):
        assert dataclasses.is_dataclass(cls)
    assert issubclass(articleqa.errors.BadQuestion, articleqa.ArticleQAError)
    assert isinstance(articleqa.__version__, str) and articleqa.__version__[0].isdigit()


def test_results_read_naturally(tmp_path, fake_embedder):
    lib = articleqa.open(
        [ARTICLES / "green-tea.md", ARTICLES / "bicycle-chain.txt"],
        index_dir=tmp_path / "idx",
        settings=articleqa.Settings(model=fake_embedder.name),
        embedder=fake_embedder,
    )
    hit = lib.search("green tea water temperature", k=1)[0]
    assert isinstance(hit, articleqa.Hit)
    assert isinstance(hit.text, str) and "tea" in hit.text.lower()
    assert isinstance(hit.score, float)
    assert hit.article.title == "Brewing Green Tea Without Bitterness"
    assert hit.article.link == "https://example.org/green-tea"
    assert hit.rank == 1
    answer = lib.ask("green tea water temperature")
    assert isinstance(answer, articleqa.Answer) and isinstance(answer.found, bool)
