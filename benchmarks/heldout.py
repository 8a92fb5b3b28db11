"""A held-out set in the "everyday" layout, scored once: articles/*.md indexed into a fresh
library, then questions.jsonl, followups.jsonl, nearmiss.jsonl and offtopic.jsonl asked
through the public API.

    python -m benchmarks heldout --folder DIR [--index-dir DIR] [--out FILE]

An answerable question counts as answered right when the answer shown contains one of its
`answers` (any one, case-insensitive) and cites its `article`; its top passage holds it when
the first hit is from that article and contains one. Near misses and off-topic questions
should be refused.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import percentile, write


def _rows(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _holds(text: str, answers) -> bool:
    """Whether `text` holds any one of `answers`, folded as `articleqa eval` folds them."""
    from articleqa.evaluate import _fold

    folded = _fold(text)
    return any(_fold(a) in folded for a in answers)


def _source_id(hit) -> str:
    return Path(hit.article.source).stem


def score(lib, folder: Path) -> dict:
    out: dict = {}
    times: list[float] = []
    by_kind: dict[str, list[bool]] = defaultdict(list)
    for name in ("questions", "followups"):
        rows = _rows(folder / f"{name}.jsonl")
        right = top = refused = 0
        for r in rows:
            start = time.perf_counter()
            answer = lib.ask(r["question"], history=r.get("history", []))
            times.append((time.perf_counter() - start) * 1000)
            cited = {_source_id(h) for h in answer.hits}
            ok = answer.found and _holds(answer.text, r["answers"]) and r["article"] in cited
            right += ok
            top += (
                bool(answer.hits)
                and _source_id(answer.hits[0]) == r["article"]
                and _holds(answer.hits[0].text, r["answers"])
            )
            refused += not answer.found
            if name == "questions":
                by_kind[r.get("kind", "?")].append(ok)
        if rows:
            n = len(rows)
            out[name] = {
                "n": n,
                "answer_shown_holds_it": round(right / n, 4),
                "top_passage_holds_it": round(top / n, 4),
                "refused": round(refused / n, 4),
            }
    out["by_kind"] = {k: {"n": len(v), "answer": round(sum(v) / len(v), 4)} for k, v in sorted(by_kind.items())}
    for name in ("nearmiss", "offtopic"):
        rows = _rows(folder / f"{name}.jsonl")
        if rows:
            refused = sum(not lib.ask(r["question"]).found for r in rows)
            out[name] = {"n": len(rows), "refused": round(refused / len(rows), 4)}
    out["ask_ms"] = {"p50": round(percentile(times, 50), 1), "p95": round(percentile(times, 95), 1)}
    return out


def run(folder: Path, index_dir: Path | None = None) -> dict:
    from articleqa.library import Library
    from articleqa.settings import Settings

    index_dir = index_dir or Path(tempfile.mkdtemp(prefix="heldout-")) / "index"
    lib = Library.at(index_dir, Settings())
    lib.sync([folder / "articles"])
    return {"folder": str(folder), **score(lib, folder)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", type=Path, required=True)
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--out")
    args = parser.parse_args(argv)
    write(run(args.folder, args.index_dir), args.out)
