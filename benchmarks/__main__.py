"""`python -m benchmarks NAME ...` from the repository root: every benchmark behind one command.

latency    ask/search latency per mode and stage, cold start, build throughput, quality,
           against plain BM25 and dense (built-in corpus, and a BEIR folder with --beir)
peers      against LangChain's FAISS store and txtai, whose packages live in --python's env
browser    from Enter to the answer on screen, in Chromium
load       `articleqa serve` under many askers, an uploader and an abusive client
scale      storage costs on synthetic libraries of 10k to 1M passages
milvus     the Milvus engine against the local one (a server at --store)
shutdown   seconds from Ctrl+C to exit, in every phase of serve, build and add
fusion     how far re-weighting the fused signals can go (an experiment)
calibration  the confidence curve and the abstention bar, fitted on the sets tuned on
heldout    a held-out set (articles, questions, follow-ups, near misses, off-topic), scored once
hostile    bombs, slow links, runaway files: the time and memory each costs an add
"""

from __future__ import annotations

import argparse
import sys


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="name", required=True, metavar="NAME")

    def questions(q: argparse.ArgumentParser, help: str) -> None:
        q.add_argument("--questions", metavar="FILE", action="append", help=help)

    q = sub.add_parser("latency", help="latency, build throughput, memory; against plain BM25 and dense")
    q.add_argument("--beir", metavar="DIR", help="a BEIR folder to include (e.g. scifact)")
    q.add_argument("--queries", type=int, default=200, help="queries per mode")
    q.add_argument("--cache-dir", metavar="DIR", help="where BEIR indexes are kept")
    questions(q, "question files (.jsonl) for quality and latency (default: article titles, no quality)")
    q.add_argument("--offtopic", metavar="FILE", help="off-topic questions (.jsonl) that should abstain")
    q.add_argument("--out", metavar="FILE")

    q = sub.add_parser("peers", help="against LangChain FAISS and txtai")
    q.add_argument("--python", required=True, metavar="PYTHON", help="an interpreter whose env has the peers")
    q.add_argument("--articles", metavar="PATH", action="append", help="what all systems index (default: built-in)")
    questions(q, "question files (.jsonl) to score every system by (repeatable)")
    q.add_argument("--rounds", type=int, default=2, help="builds per system, in turns")
    q.add_argument("--out", metavar="FILE")

    q = sub.add_parser("browser", help="from Enter to the answer on screen, in Chromium")
    q.add_argument("--index-dir", metavar="DIR", help="the library to serve (default: built-in)")
    questions(q, "question files (.jsonl) to ask (default: the UI's example questions)")
    q.add_argument("--queries", type=int, default=72)
    q.add_argument("--out", metavar="FILE")

    q = sub.add_parser("load", help="the server under load and abuse")
    q.add_argument("--clients", type=int, default=50)
    q.add_argument("--seconds", type=float, default=30.0)
    questions(q, "question files (.jsonl) the askers ask")
    q.add_argument("--out", metavar="FILE")

    q = sub.add_parser("scale", help="storage costs on synthetic libraries")
    q.add_argument("--sizes", required=True, metavar="N,N,...", help="passage counts (e.g. 10000,100000,1000000)")
    q.add_argument("--queries", type=int, default=200)
    q.add_argument("--cache-dir", metavar="DIR", help="where the libraries are kept (resumed on a rerun)")
    q.add_argument("--out", metavar="FILE")

    sub.add_parser("milvus", help="the Milvus engine against the local one", add_help=False)
    sub.add_parser("shutdown", help="seconds from Ctrl+C to exit", add_help=False)
    sub.add_parser("fusion", help="how far re-weighting the fused signals goes", add_help=False)
    sub.add_parser("calibration", help="the confidence curve and the abstention bar", add_help=False)
    sub.add_parser("heldout", help="a held-out set in the everyday layout", add_help=False)
    sub.add_parser("hostile", help="what each hostile input costs an add", add_help=False)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own_options = ("milvus", "shutdown", "fusion", "calibration", "heldout", "hostile")
    if argv and argv[0] in own_options:  # these parse their own options
        from importlib import import_module

        module = import_module(f"benchmarks.{'fusion_ceiling' if argv[0] == 'fusion' else argv[0]}")
        return module.main(argv[1:]) or 0
    args = parser().parse_args(argv)
    from importlib import import_module

    from articleqa.errors import ArticleQAError

    try:
        return import_module(f"benchmarks.{args.name}").main(args)
    except ArticleQAError as exc:
        print(f"benchmarks {args.name}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
