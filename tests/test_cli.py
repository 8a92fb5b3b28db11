"""The `articleqa` command, run as a user would: `python -m articleqa ...` in a subprocess.

Each call that embeds loads the real model (~6 s), so the calls are few and share one index.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from conftest import ARTICLES, BAD

pytestmark = pytest.mark.slow


def run_cli(*args: str, home) -> subprocess.CompletedProcess:
    env = {**os.environ, "ARTICLEQA_HOME": str(home), "NO_COLOR": "1"}
    env.pop("ARTICLEQA_MODEL", None)
    return subprocess.run(
        [sys.executable, "-m", "articleqa", *map(str, args)], env=env, capture_output=True, text=True, timeout=180
    )


def assert_user_error(result: subprocess.CompletedProcess, *phrases: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("articleqa: error:")]
    assert len(errors) == 1, result.stderr
    for phrase in phrases:
        assert phrase in errors[0], errors[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    return tmp_path_factory.mktemp("cli-home")


@pytest.fixture(scope="module")
def built(home, tmp_path_factory):
    """`articleqa build` over two small articles, once for the module."""
    index_dir = tmp_path_factory.mktemp("cli") / "idx"
    result = run_cli(
        "build", ARTICLES / "green-tea.md", ARTICLES / "bicycle-chain.txt", "--index-dir", index_dir, home=home
    )
    return index_dir, result


def test_help_lists_the_commands(home):
    result = run_cli("--help", home=home)
    assert result.returncode == 0
    for command in ("build", "search", "ask", "info", "serve", "eval"):
        assert command in result.stdout


def test_build_reports_what_it_indexed(built):
    index_dir, result = built
    assert result.returncode == 0, result.stderr
    assert "2 articles" in result.stdout and "added 2" in result.stdout
    assert (index_dir / "manifest.json").exists()
    assert "Traceback" not in result.stderr


def test_search_json(built, home):
    index_dir, _ = built
    result = run_cli(
        "search",
        "what water temperature keeps green tea from turning bitter",
        "--index-dir",
        index_dir,
        "-k",
        "2",
        "--json",
        home=home,
    )
    assert result.returncode == 0, result.stderr
    hits = json.loads(result.stdout)
    assert 1 <= len(hits) <= 2
    assert [h["rank"] for h in hits] == list(range(1, len(hits) + 1))
    best = hits[0]
    assert best["article"]["title"] == "Brewing Green Tea Without Bitterness"
    assert isinstance(best["score"], float)
    assert "75 degrees" in best["text"]


def test_info_shows_counts(built, home):
    index_dir, _ = built
    result = run_cli("info", "--index-dir", index_dir, home=home)
    assert result.returncode == 0, result.stderr
    assert "articles:  2" in result.stdout
    assert "passages:  2" in result.stdout
    assert "all-MiniLM-L6-v2" in result.stdout
    assert re.search(r"^size: +\d+\.\d (KiB|MiB)$", result.stdout, re.M)  # read by a person, not in bytes


def test_search_of_a_missing_index_is_a_clean_error(home, tmp_path):
    result = run_cli("search", "green tea", "--index-dir", tmp_path / "nowhere", home=home)
    assert_user_error(result, "no index", "articleqa build")


def test_build_of_only_bad_files_is_a_clean_error(built, home):
    index_dir, _ = built
    result = run_cli("build", BAD, "--index-dir", index_dir, home=home)
    assert_user_error(result, "no usable articles")
    assert "report.pdf" in result.stderr


def test_empty_question_is_a_clean_error(built, home):
    index_dir, _ = built
    result = run_cli("ask", "  ", "--index-dir", index_dir, home=home)
    assert_user_error(result, "question is empty")


def test_info_shows_how_it_searches(built, home):
    index_dir, _ = built
    result = run_cli("info", "--index-dir", index_dir, home=home)
    assert "segments:  1" in result.stdout
    assert "search:    exact (flat) over 2 passages in 1 segment(s)" in result.stdout
    assert "tokens:    int8, 388 bytes a word piece, 2 passages" in result.stdout


def test_a_build_keeps_what_it_did_not_add_unless_told_to_prune(home, tmp_path):
    # The user's library starts as a copy of the built-in one (as `articleqa serve` makes it).
    result = run_cli("build", home=home)
    assert result.returncode == 0, result.stderr
    result = run_cli("build", ARTICLES / "green-tea.md", home=home)
    assert result.returncode == 0, result.stderr
    assert "5 articles" in result.stdout and "added 1" in result.stdout and "removed 0" in result.stdout
    assert "kept 4 article(s) that did not come from these paths" in result.stdout
    assert "articleqa build --prune" in result.stdout
    result = run_cli("build", ARTICLES / "green-tea.md", "--prune", home=home)
    assert result.returncode == 0, result.stderr
    assert "1 articles" in result.stdout and "removed 4" in result.stdout


def test_a_library_on_a_store_is_built_searched_and_described(home, tmp_path):
    """--store on milvus-lite: build, then search and info read the store from the manifest."""
    index_dir, store = tmp_path / "idx", f"milvus://{tmp_path / 'vectors.db'}"
    result = run_cli("build", ARTICLES / "green-tea.md", "--index-dir", index_dir, "--store", store, home=home)
    assert result.returncode == 0, result.stderr
    info = run_cli("info", "--index-dir", index_dir, home=home)
    assert info.returncode == 0 and f"(milvus) over 1 passages on {store}" in info.stdout, info.stdout
    found = run_cli("search", "green tea water temperature", "--index-dir", index_dir, "--json", home=home)
    assert found.returncode == 0, found.stderr
    assert json.loads(found.stdout)[0]["article"]["title"] == "Brewing Green Tea Without Bitterness"
    other = run_cli("build", ARTICLES / "green-tea.md", "--index-dir", index_dir, "--store", "milvus://h:1", home=home)
    assert_user_error(other, "keeps its vectors in milvus://", "rebuild")
    unusable = [("redis://h:1", "unknown store 'redis://h:1'"), ("milvus://127.0.0.1:9", "cannot reach Milvus")]
    for store, says in unusable:
        bad = run_cli("build", ARTICLES / "green-tea.md", "--index-dir", tmp_path / "x", "--store", store, home=home)
        assert_user_error(bad, says)


def test_a_build_shows_one_progress_bar_on_a_terminal(tmp_path, fake_settings, fake_embedder):
    import io

    from articleqa import Library
    from articleqa.cli import progress_bar

    shown = io.StringIO()
    lib = Library.at(tmp_path / "idx", fake_settings, embedder=fake_embedder)
    with progress_bar(shown, show=True) as progress:
        lib.sync([ARTICLES], progress=progress)
    out = shown.getvalue()
    assert "embedded 4 passages" in out and "100%" in out
    quiet = io.StringIO()  # not a terminal: no bar (logs and pipes stay clean)
    with progress_bar(quiet) as progress:
        progress(0.5, "embedding")
    assert quiet.getvalue() == ""


def test_control_characters_in_names_and_titles_are_printed_escaped(home, tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    (folder / "evil\n\x1b]0;pwned\x07\x1b[31m.md").write_text(
        '---\ntitle: "Clear \\e[2J the screen"\n---\n\nThe kettle boils water in about three minutes.\n',
        encoding="utf-8",
    )
    (folder / "broken\x1b[2J.pdf").write_bytes(b"not a pdf at all")
    index_dir = tmp_path / "idx"
    results = [
        run_cli("build", folder, "--index-dir", index_dir, home=home),
        run_cli("search", "kettle", "--index-dir", index_dir, home=home),
        run_cli("info", "--articles", "--index-dir", index_dir, home=home),
    ]
    for result in results:
        printed = result.stdout + result.stderr
        assert "\x1b" not in printed and "\x07" not in printed, printed
    assert "skipped" in results[0].stderr and "broken\\x1b[2J.pdf" in results[0].stderr
    assert "Clear \\x1b[2J the screen" in results[1].stdout
    assert "\\x1b]0;pwned\\x07" in results[1].stdout  # the file name, in the passage's source
    assert "Clear \\x1b[2J the screen" in results[2].stdout
