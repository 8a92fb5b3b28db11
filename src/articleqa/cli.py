"""The `articleqa` command: a thin adapter over the library that parses, calls and prints."""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import textwrap
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path

from articleqa.errors import ArticleQAError, rebuild_command
from articleqa.settings import MODES, Settings

log = logging.getLogger("articleqa")

# Control characters (C0 but tab and newline, DEL, C1) and the bidirectional overrides: what a
# file name or a title could use to clear, recolour or retitle the terminal, or reorder a line.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_NEWLINE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def shown(text: object, *, lines: bool = False) -> str:
    """`text` safe to print on a terminal: control characters as visible escapes (\\x1b, \\n);
    newlines kept only where `lines` (a passage's text)."""
    pattern = _CONTROL if lines else _CONTROL_OR_NEWLINE
    return pattern.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


class _ShownFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return shown(super().format(record))


def _log_to_terminal() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_ShownFormatter("articleqa: %(levelname)s: %(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])


def run() -> int:
    """The `articleqa` program: Ctrl+C (or SIGTERM) ends any command within seconds."""
    from articleqa.runtime import stopping

    stopping.install()
    code = main()
    if stopping.interrupted():
        # Stopped by a signal, cleanly: exit without the interpreter's slow teardown (seconds of
        # module finalization on a busy machine would outlast the watchdog's grace).
        stopping.exit_now(code)
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _log_to_terminal()
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args) or 0
    except ArticleQAError as exc:
        print(f"articleqa: error: {shown(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("articleqa: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `articleqa search ... | head`: the reader left, nothing is wrong
        sys.stderr.close()
        return 0


def build_parser() -> argparse.ArgumentParser:
    from articleqa.__about__ import __version__

    parser = argparse.ArgumentParser(
        prog="articleqa",
        description="Ask questions of your articles; get back the passages that answer, cited.",
    )
    parser.add_argument("--version", action="version", version=f"articleqa {__version__}")
    sub = parser.add_subparsers(metavar="COMMAND")
    defaults = Settings()
    _parse_build(sub, defaults)
    _parse_add(sub, defaults)
    _parse_question(sub, "search", cmd_search, "ranked passages for a question", defaults)
    _parse_question(sub, "ask", cmd_ask, "the answer sentence and its cited passages, or 'not covered'", defaults)
    _parse_info(sub)
    _parse_remove(sub)
    _parse_serve(sub)
    _parse_eval(sub)
    return parser


_PRIVATE_URLS = "fetch links to loopback and private addresses too (refused by default)"


def _index_dir(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--index-dir",
        metavar="DIR",
        help="index folder (default: your library if you built one, else the built-in corpus)",
    )


def _store(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--store",
        metavar="URI",
        default=os.environ.get("ARTICLEQA_STORE") or None,
        help="search passage vectors on a Milvus server: milvus://HOST:PORT[/COLLECTION] "
        "(default: $ARTICLEQA_STORE, else where the library keeps them)",
    )


def _parse_build(sub, defaults: Settings) -> None:
    p = sub.add_parser("build", help="index articles (files or folders); only new or changed ones are embedded")
    p.add_argument(
        "paths", nargs="*", metavar="PATHS", help=".md/.txt/.html files or folders (default: built-in corpus)"
    )
    p.add_argument("--index-dir", metavar="DIR", help="where to write the index (default: your library)")
    p.add_argument("--rebuild", action="store_true", help="start from scratch (after a model or chunker change)")
    p.add_argument(
        "--prune",
        action="store_true",
        help="also remove articles that did not come from PATHS (uploads, other folders, the built-in corpus)",
    )
    p.add_argument("--model", help="sentence-transformers model name or path (default: bundled all-MiniLM-L6-v2)")
    _store(p)
    p.add_argument(
        "--ray",
        nargs="?",
        const="local",
        metavar="ADDRESS",
        help="embed on a Ray cluster (ADDRESS, e.g. ray://head:10001 or auto; alone: a local one)",
    )
    p.add_argument("--ray-actors", type=int, metavar="N", help="model copies on the cluster (default: one per CPU)")
    p.add_argument(
        "--max-passages",
        type=int,
        metavar="N",
        help=f"leave out a file that would make more than N passages (default {defaults.max_passages_per_file})",
    )
    p.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        help=f"leave out PDF, DOCX and EPUB files above MB (default {defaults.max_file_mb:g})",
    )
    _parse_seconds(p, defaults)
    p.set_defaults(func=cmd_build)


def _parse_add(sub, defaults: Settings) -> None:
    p = sub.add_parser("add", help="add files, folders or web links (https://...); they stay until removed")
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="files, folders or http(s) links")
    p.add_argument("--index-dir", metavar="DIR", help="the library to add to (default: your library)")
    p.add_argument("--allow-private-urls", action="store_true", help=_PRIVATE_URLS)
    p.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        help=f"leave out documents and pages above MB (default {defaults.max_file_mb:g})",
    )
    _parse_seconds(p, defaults)
    p.set_defaults(func=cmd_add)


def _parse_seconds(p, defaults: Settings) -> None:
    p.add_argument(
        "--parse-seconds",
        type=float,
        metavar="S",
        help=f"skip a file or page that takes longer than S to read (default {defaults.limits.parse_seconds:g})",
    )


def _with_read_limits(settings: Settings, args) -> Settings:
    if args.max_file_mb is not None:
        settings = replace(settings, max_file_mb=args.max_file_mb)
    if args.parse_seconds is not None:
        if not args.parse_seconds > 0:
            raise ArticleQAError(f"--parse-seconds must be more than 0, not {args.parse_seconds:g}")
        settings = replace(settings, limits=replace(settings.limits, parse_seconds=args.parse_seconds))
    return settings


def _parse_question(sub, name: str, func, helptext: str, defaults: Settings) -> None:
    p = sub.add_parser(name, help=helptext)
    p.add_argument("question")
    p.add_argument("-k", type=int, default=None, help=f"number of passages (default {defaults.k})")
    p.add_argument("--mode", choices=(*MODES, "lexical"), default=None, help="retrieval mode (default hybrid)")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    _index_dir(p)
    if name == "ask":
        p.add_argument(
            "--history",
            action="append",
            default=[],
            metavar="QUESTION",
            help="an earlier question of the conversation (repeatable, oldest first)",
        )
        p.add_argument(
            "--show-nearest",
            action="store_true",
            help="show the nearest passages even when the articles don't answer",
        )
    p.set_defaults(func=func)


def _parse_info(sub) -> None:
    p = sub.add_parser("info", help="articles, passages, model and size of an index")
    p.add_argument("--json", action="store_true", help="print JSON for machines")
    p.add_argument("--articles", action="store_true", help="list the articles too")
    p.add_argument("--verify", action="store_true", help="read every file and check it against its checksum")
    _index_dir(p)
    p.set_defaults(func=cmd_info)


def _parse_remove(sub) -> None:
    p = sub.add_parser("remove", help="remove articles from an index by id (see `info --articles`)")
    p.add_argument("ids", nargs="+", metavar="ID")
    _index_dir(p)
    p.set_defaults(func=cmd_remove)


def _parse_serve(sub) -> None:
    p = sub.add_parser("serve", help="the chat web UI (Gradio), on 127.0.0.1 unless told otherwise")
    p.add_argument("paths", nargs="*", metavar="PATHS", help="articles to serve (default: your library)")
    _index_dir(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0: any free port)")
    p.add_argument("--allow-private-urls", action="store_true", help=_PRIVATE_URLS)
    _store(p)
    p.set_defaults(func=cmd_serve)


def _parse_eval(sub) -> None:
    p = sub.add_parser("eval", help="retrieval quality on a question file (JSONL) or a BEIR folder")
    p.add_argument(
        "path", metavar="PATH", help="questions .jsonl, or a BEIR folder (corpus.jsonl, queries.jsonl, qrels/)"
    )
    p.add_argument("--mode", choices=(*MODES, "lexical"), default=None, help="retrieval mode (default hybrid)")
    p.add_argument("--all-modes", action="store_true", help="evaluate every mode")
    p.add_argument("--offtopic", metavar="FILE", help="off-topic questions (JSONL) that should abstain")
    p.add_argument("--cache-dir", metavar="DIR", help="where BEIR indexes are cached")
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N queries")
    p.add_argument("--json", action="store_true", help="end with the metrics as one JSON line")
    _index_dir(p)
    _store(p)
    p.set_defaults(func=cmd_eval)


# -- commands ----------------------------------------------------------------------------------


def _library(args):
    from articleqa.library import existing

    return existing(args.index_dir, store=getattr(args, "store", None))


def cmd_build(args) -> int:
    from articleqa import library

    settings = Settings(model=args.model) if args.model else Settings()
    if args.max_passages is not None:
        settings = replace(settings, max_passages_per_file=args.max_passages)
    settings = _with_read_limits(settings, args)
    folder = Path(args.index_dir) if args.index_dir else library.user_index_dir()
    embedder = None
    if args.ray:
        embedder = library.ray_embedder(settings.model, address=args.ray, actors=args.ray_actors)
    with progress_bar() as progress:
        if args.paths:
            lib = library.open(
                args.paths,
                index_dir=folder,
                settings=settings,
                rebuild=args.rebuild,
                prune=args.prune,
                store=args.store,
                embedder=embedder,
                progress=progress,
            )
            change = lib.last_change
        else:
            lib = library.Library.at(folder, settings.on_store(args.store), rebuild=args.rebuild, embedder=embedder)
            change = lib.sync_builtin(prune=args.prune, progress=progress)
    # Skipped files were already reported, one warning each, as they were read.
    info = lib.info()
    print(
        f"{folder}: {info.articles} articles, {info.chunks} passages "
        f"(added {len(change.added)}, replaced {len(change.replaced)}, removed {len(change.removed)}, "
        f"unchanged {len(change.unchanged)}; embedded {change.embedded} passages, {change.sentences} sentences)"
    )
    if change.kept:
        kept = ", ".join(change.kept[:5]) + (f" and {len(change.kept) - 5} more" if len(change.kept) > 5 else "")
        print(
            f"kept {len(change.kept)} article(s) that did not come from these paths ({shown(kept)}); "
            "`articleqa build --prune` would remove them"
        )
    return 0


def cmd_add(args) -> int:
    from articleqa import library

    folder = Path(args.index_dir) if args.index_dir else library.user_index_dir()
    if not args.index_dir:
        library.seed_user_index(folder)  # your library starts as the built-in one, as in the UI
    settings = _with_read_limits(Settings(allow_private_urls=args.allow_private_urls), args)
    lib = library.Library.at(folder, settings)
    with progress_bar() as progress:
        change = lib.add(*args.sources, progress=progress)
    for skipped in lib.skipped:
        print(f"skipped {shown(skipped.path)}: {shown(skipped.reason)}", file=sys.stderr)
    info = lib.info()
    print(
        f"{folder}: {info.articles} articles, {info.chunks} passages (added {len(change.added)}, "
        f"updated {len(change.replaced)}, unchanged {len(change.unchanged)}; embedded {change.embedded} passages)"
    )
    # Nothing came of what was asked: a script should hear it (2, as for any error).
    return 2 if lib.skipped and not (change.added or change.replaced or change.unchanged) else 0


@contextmanager
def progress_bar(file=None, *, show: bool | None = None):
    """One bar for a whole build on the terminal (tqdm; nothing when stderr is not a terminal):
    yields the progress(fraction, message) callback the library reports to."""
    from tqdm import tqdm

    bar = tqdm(
        total=1000,
        file=file or sys.stderr,
        disable=None if show is None else not show,
        bar_format="{desc:<60.60} {percentage:3.0f}%|{bar}| {elapsed}<{remaining}",
        leave=False,
    )

    def update(fraction: float, message: str) -> None:
        bar.set_description_str(shown(message), refresh=False)
        bar.update(max(0, min(1000, round(fraction * 1000)) - bar.n))
        if fraction >= 1.0:
            bar.refresh()  # the end is shown however fast it came

    try:
        yield update
    finally:
        bar.close()


def cmd_search(args) -> int:
    lib = _library(args)
    hits = lib.search(args.question, k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps([h.to_dict() for h in hits], ensure_ascii=False, indent=2))
        return 0
    if not hits:
        print("No passage matches.")
    for hit in hits:
        _print_hit(hit)
    return 0


def cmd_ask(args) -> int:
    lib = _library(args)
    answer = lib.ask(args.question, k=args.k, mode=args.mode, history=args.history)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if answer.query != answer.question:
        print(f"(searched as: {shown(answer.query)})")
    if not answer.found and answer.note and answer.hits:  # never mentioned: what they do say
        print(f"{shown(answer.reason)} {shown(answer.note)}\n")
        for hit in answer.hits:
            _print_hit(hit)
        return 0
    if not answer.found:
        print(f"Not covered by these articles. {shown(answer.reason)}")
        if not args.show_nearest:
            print("(use --show-nearest to see the closest passages anyway)")
            return 0
        print("\nNearest passages:")
    else:
        print(f"Answer: {shown(answer.text, lines=True)}\n")
        if answer.note:
            print(f"({shown(answer.note)})\n")
    for hit in answer.hits:
        _print_hit(hit)
    return 0


def cmd_info(args) -> int:
    if args.verify:
        from articleqa import library

        folder = Path(args.index_dir) if args.index_dir else _library(args).index_dir
        files, problems = library.verify(folder)
        for problem in problems:
            print(f"damaged: {shown(problem)}", file=sys.stderr)
        if problems:
            fix = rebuild_command(args.index_dir)
            print(f"articleqa: error: {len(problems)} of {files} files damaged: {shown(fix)}", file=sys.stderr)
            return 2
        print(f"verified {files} files: every one whole")
        if not args.json:
            return 0
    lib = _library(args)
    info = lib.info()
    if args.json:
        out = asdict(info)
        if args.articles:
            out["article_list"] = [a.to_dict() for a in lib.articles()]
        print(json.dumps(out, indent=2, ensure_ascii=False))
        return 0
    print(f"index:     {info.index_dir}{' (built-in, read-only)' if info.read_only else ''}")
    print(f"articles:  {info.articles}")
    print(f"passages:  {info.chunks}")
    print(f"model:     {info.model} ({info.dim} dimensions)")
    if info.questions:
        print(f"questions: {info.questions}")
    print(f"size:      {_size(info.size_bytes)}")
    deleted = f" ({info.deleted_passages} deleted passages awaiting a merge)" if info.deleted_passages else ""
    print(f"segments:  {info.segments}{deleted}")
    for engine, entry in sorted(info.dense.items()):
        kind = "exact" if engine == "flat" else "approximate"
        where = f" on {info.store}" if engine == "milvus" else f" in {entry['segments']} segment(s)"
        print(f"search:    {kind} ({engine}) over {entry['passages']} passages{where}")
    for codec, entry in sorted(info.tokens.items()):
        what = "compressed (pq)" if codec == "pq" else codec
        print(f"tokens:    {what}, {entry['bytes']} bytes a word piece, {entry['passages']} passages")
    if args.articles:
        counts = lib.passage_counts()
        for a in lib.articles():
            date = f", {shown(a.date)}" if a.date else ""
            print(f"  {shown(a.id)}  {shown(a.title[:70])}  ({counts.get(a.id, 0)} passages{date})")
    return 0


def cmd_remove(args) -> int:
    lib = _library(args)
    change = lib.remove(*args.ids)
    print(f"removed {len(change.removed)} article(s); {len(lib.index.articles)} left")
    return 0


def cmd_serve(args) -> int:
    from articleqa.runtime import stopping

    # Uploads land in a folder of this server's own (inside GRADIO_TEMP_DIR when that is set),
    # removed when it stops; Gradio reads the setting when it is imported, so it is set first.
    base = os.environ.get("GRADIO_TEMP_DIR") or None
    if base:
        os.makedirs(base, exist_ok=True)
    own = tempfile.mkdtemp(prefix="articleqa-uploads-", dir=base)
    os.environ["GRADIO_TEMP_DIR"] = own
    stopping.remove_on_abandon(own)
    try:
        from articleqa.ui.server import serve

        serve(
            paths=args.paths,
            index_dir=args.index_dir,
            host=args.host,
            port=args.port,
            store=args.store,
            allow_private_urls=args.allow_private_urls,
        )
    finally:
        shutil.rmtree(own, ignore_errors=True)
        if base:
            os.environ["GRADIO_TEMP_DIR"] = base
        else:
            os.environ.pop("GRADIO_TEMP_DIR", None)
    return 0


def cmd_eval(args) -> int:
    from articleqa.evaluate import run_cli

    return run_cli(args)


# -- printing ----------------------------------------------------------------------------------


def _print_hit(hit) -> None:
    from articleqa.text.sentences import HEADING

    width = min(100, shutil.get_terminal_size((100, 20)).columns) - 5
    bold = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    where = shown(" > ".join(hit.chunk.headings))
    print(f"{hit.rank}. {shown(hit.article.title)}" + (f"  [{where}]" if where else ""))
    meta = [
        hit.article.link,
        hit.page_label,
        hit.article.author or "",
        hit.article.date or "",
        f"score {hit.score:.3f}",
    ]
    print("   " + " · ".join(shown(m) for m in meta if m))
    text = shown(hit.text, lines=True)
    if bold and hit.highlight_start is not None:
        before, after = hit.text[: hit.highlight_start], hit.text[hit.highlight_end :]
        text = shown(before, lines=True) + "\x1b[1m" + shown(hit.highlight, lines=True) + "\x1b[0m"
        text += shown(after, lines=True)
    for para in text.split("\n"):
        heading = HEADING.match(para)
        if heading:  # a heading of the article, shown as one rather than as Markdown
            para = f"\x1b[1m{heading.group(2)}\x1b[0m" if bold else heading.group(2)
        if para.strip():
            print(textwrap.fill(para, width=width, initial_indent="   ", subsequent_indent="   "))
    print()


def _size(n: float) -> str:
    """Bytes as a person reads them: 148.4 KiB, 7.5 GiB."""
    if n < 1024:
        return f"{int(n)} bytes"
    for unit in ("KiB", "MiB"):
        n /= 1024
        if n < 1024:
            return f"{n:.1f} {unit}"
    return f"{n / 1024:.1f} GiB"
