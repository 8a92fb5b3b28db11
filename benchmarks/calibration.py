"""Confidence that means something: every question of the sets we tune on, asked with the raw
signals kept (no confidence curve, no bar), the answer it would show marked right or wrong; then
a logistic curve of the closest sentence's similarity and the reader's margin fitted to them,
its reliability (ten bins, expected calibration error) and, for each bar, what abstains.

    python -m benchmarks calibration [--rhine DIR] [--out docs/calibration.json]

Sets: the built-in and blind questions and follow-ups (answerable), their off-topic sets, and
the Rhine set's answerable and unanswerable questions when --rhine names its index (see
docs/evaluation.md). The held-out everyday set is not read here.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np

from benchmarks.common import write

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"
RHINE = Path(__file__).resolve().parents[1].parent / "shared" / "benchmarks" / "squad-rhine"


def collect(lib, path: Path, name: str, answerable: bool) -> list[dict]:
    """One row per question: the signals and whether the answer it would show is right."""
    from articleqa.evaluate import _fold, load_questions

    rows = []
    for q in load_questions(path):
        answer = lib.ask(q.question, history=q.history)
        shown = answer.text if answer.found else (answer.hits[0].highlight if answer.hits else "")
        right = answerable and bool(shown) and any(_fold(a) in _fold(shown) for a in q.answers)
        top = answer.hits[0] if answer.hits else None
        rows.append(
            {
                "set": name,
                "answerable": answerable,
                "found": answer.found,
                "right": right,
                "sentence": answer.confidence,
                "margin": None if top is None or top.reader_margin is None else top.reader_margin,
            }
        )
    return rows


def features(rows: list[dict]) -> np.ndarray:
    from articleqa.query.answer.reader import clipped

    return np.array([[1.0, r["sentence"], float(clipped(r["margin"] or 0.0))] for r in rows])


def fit(rows: list[dict], steps: int = 4000, rate: float = 0.5, l2: float = 1e-3) -> tuple[float, float, float]:
    """Logistic regression by gradient descent: P(right) from (1, similarity, margin)."""
    x, y = features(rows), np.array([float(r["right"]) for r in rows])
    w = np.zeros(3)
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        w -= rate * (x.T @ (p - y) / len(y) + l2 * w)
    return tuple(round(float(v), 4) for v in w)


def predict(curve, rows: list[dict]) -> np.ndarray:
    return np.minimum(0.99, 1 / (1 + np.exp(-features(rows) @ np.asarray(curve))))


def reliability(p: np.ndarray, right: np.ndarray, bins: int = 10) -> tuple[list[dict], float]:
    """Per bin of predicted confidence: how many, the mean prediction, how often right; and the
    expected calibration error (the bins' |right - predicted| weighted by their size)."""
    out, error = [], 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (p >= lo) & ((p < hi) if b < bins - 1 else (p <= hi))
        if inside.any():
            mean, rate = float(p[inside].mean()), float(right[inside].mean())
            out.append({"bin": f"{lo:.1f}-{hi:.1f}", "n": int(inside.sum()), "predicted": mean, "right": rate})
            error += inside.sum() / len(p) * abs(rate - mean)
    return out, float(error)


def bars(p: np.ndarray, rows: list[dict]) -> list[dict]:
    """For each bar: answerable questions abstaining, unanswerable ones answered, answers right."""
    answerable = np.array([r["answerable"] for r in rows])
    right = np.array([r["right"] for r in rows])
    found = np.array([r["found"] for r in rows])  # the rule's own decision, before any bar
    out = []
    for bar in np.arange(0.0, 0.71, 0.05):
        shown = found & (p >= bar)
        out.append(
            {
                "bar": round(float(bar), 2),
                "answerable_abstaining": float((~shown & answerable).sum() / max(answerable.sum(), 1)),
                "unanswerable_answered": float((shown & ~answerable).sum() / max((~answerable).sum(), 1)),
                "answer_right": float((shown & right).sum() / max(answerable.sum(), 1)),
            }
        )
    return out


def run(rhine: Path | None) -> dict:
    import articleqa.library as library

    def raw(lib):  # the signals themselves: no curve, no bar
        answer = dataclasses.replace(lib.settings.answer, confidence_curve=None, least_confidence=0.0)
        lib.settings = dataclasses.replace(lib.settings, answer=answer)
        lib.abstention = type(lib.abstention).of(answer)
        return lib

    builtin = raw(library.open())
    rows = []
    for name, answerable in [
        ("questions", True),
        ("blind-questions", True),
        ("followups", True),
        ("offtopic", False),
        ("blind-offtopic", False),
    ]:
        rows += collect(builtin, DATA / f"{name}.jsonl", name, answerable)
    if rhine is not None:
        lib = raw(library.existing(rhine))
        rows += collect(lib, RHINE / "questions.jsonl", "rhine", True)
        rows += collect(lib, RHINE / "unanswerable.jsonl", "rhine-unanswerable", False)
    # With a reader, the curve is fitted where it read the top passage; without one, on the
    # similarity alone (the margin's weight stays 0).
    read = [r for r in rows if r["margin"] is not None] or rows
    curve = fit(read)
    p = predict(curve, rows)
    right = np.array([r["right"] for r in rows], dtype=float)
    table, error = reliability(p, right)
    # The same curve's error on questions it was not fitted on: five folds, each predicted by a
    # curve fitted on the other four.
    held = np.zeros(len(rows))
    folds = np.arange(len(rows)) % 5
    for f in range(5):
        train = [r for r, g in zip(rows, folds) if g != f]
        inside = [r for r, g in zip(rows, folds) if g == f]
        held[folds == f] = predict(fit([r for r in train if r["margin"] is not None] or train), inside)
    _, held_error = reliability(held, right)
    raw_table, raw_error = reliability(np.array([r["sentence"] for r in rows]), right)
    return {
        "questions": len(rows),
        "by_set": {s: sum(r["set"] == s for r in rows) for s in dict.fromkeys(r["set"] for r in rows)},
        "curve": curve,
        "reliability": table,
        "ece": round(error, 4),
        "ece_cross_validated": round(held_error, 4),
        "reliability_raw_similarity": raw_table,
        "ece_raw_similarity": round(raw_error, 4),
        "bars": bars(p, rows),
        "log_loss": round(
            float(-np.mean(right * np.log(np.maximum(p, 1e-6)) + (1 - right) * np.log(np.maximum(1 - p, 1e-6)))), 4
        ),
        "brier": round(float(np.mean((p - right) ** 2)), 4),
        "wrong_at_099": int(((p >= 0.99) & (right == 0)).sum()),
        "note": "curve = (bias, similarity weight, margin weight); p = sigmoid(curve . (1, sim, margin))",
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rhine", type=Path, help="an index of the built-in corpus plus the Rhine articles")
    parser.add_argument("--out", default="docs/calibration.json")
    args = parser.parse_args(argv)
    write(run(args.rhine), args.out)
