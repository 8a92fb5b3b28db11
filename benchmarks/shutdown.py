"""How long Ctrl+C takes to stop `articleqa serve`, `build` and `add`, in every phase of their work,
with two busy processes hogging the CPUs beside them; and whether the index stayed whole.

    python -m benchmarks shutdown --out docs/shutdown.json [--hogs 2] [--only serve:embedding]

Each case starts the command on a copy of a small library, waits until the phase it names is
observably under way (the progress the command shows, a connection reaching a slow server,
the port opening), sends SIGINT, and times the exit. The index is then opened and must hold
either what it held before or that plus the whole change. Needs SciFact beside the checkout
(for the synthetic library whose merge the "merging" cases interrupt).
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ARTICLEQA = [sys.executable, "-m", "articleqa"]
PHASES = ("starting", "loading the model", "parsing", "fetching", "embedding", "merging")


# -- inputs ---------------------------------------------------------------------------------------


def write_pdf(path: Path, pages: int) -> None:
    """A text PDF of `pages` pages (small type, a few lines each), written by hand: no library."""
    objects = ["<< /Type /Catalog /Pages 2 0 R >>", None, "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    kids = []
    for n in range(pages):
        lines = " ".join(
            f"BT /F1 6 Tf 40 {780 - 8 * i} Td (Page {n} line {i}: otters hold hands while they sleep.) Tj ET"
            for i in range(40)
        )
        objects.append(f"<< /Length {len(lines)} >>\nstream\n{lines}\nendstream")
        content = len(objects)
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents {content} 0 R "
            "/Resources << /Font << /F1 3 0 R >> >> >>"
        )
        kids.append(f"{len(objects)} 0 R")
    objects[1] = f"<< /Type /Pages /Kids [{' '.join(kids)}] /Count {pages} >>"
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    path.write_bytes(bytes(out))


def write_text(path: Path, paragraphs: int) -> None:
    facts = (f"Otter fact {i}. Otters hold hands when they sleep in rivers, {i} of them." for i in range(paragraphs))
    path.write_text("\n\n".join(facts))


class SlowServer:
    """A loopback HTTP server that sends its answer one byte a second: a fetch stays busy."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/slow-page"
        self.reached = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        self.reached.set()
        try:
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>":
                conn.sendall(bytes([byte]))
                time.sleep(1.0)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


# -- libraries ------------------------------------------------------------------------------------


def base_library(work: Path) -> Path:
    """A library of one short article, built with the real model (the ONNX copy written once)."""
    notes = work / "notes"
    notes.mkdir(parents=True)
    (notes / "tea.md").write_text("# Green tea\n\nGreen tea is steamed or pan-fired soon after picking.\n")
    folder = work / "base"
    subprocess.run([*ARTICLEQA, "build", str(notes), "--index-dir", str(folder)], check=True, env=_env(work / "home"))
    return folder


def merge_library(work: Path, base: Path, segments: int = 7, passages: int = 600) -> Path:
    """The base library plus `segments` segments of about `passages` passages each (synthetic
    vectors, the real model's name): one more of that size makes the writer merge them all."""
    from articleqa import Library, Settings
    from articleqa.settings import DEFAULT_MODEL, StorageSettings
    from benchmarks.synthetic import FastEmbedder, synthetic_articles

    class Stand(FastEmbedder):
        name = DEFAULT_MODEL

    folder = work / "merge"
    shutil.copytree(base, folder)
    settings = Settings(model=DEFAULT_MODEL, storage=StorageSettings(flush_passages=10**9))
    lib = Library.at(folder, settings, embedder=Stand())
    articles = list(synthetic_articles(segments * passages))
    per = max(1, len(articles) // segments)
    for i in range(segments):
        lib.add(*articles[i * per : (i + 1) * per])
    return folder


# -- one case -------------------------------------------------------------------------------------


class Command:
    """A command running with stdout piped and stderr on a terminal (so progress bars show),
    its output collected as it comes."""

    def __init__(self, args: list[str], env: dict) -> None:
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # tqdm needs a width
        self.started = time.monotonic()
        self.proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=slave, text=False)
        os.close(slave)
        self.master = master
        self.out = b""
        self.err = b""

    def pump(self, seconds: float = 0.05) -> None:
        ready, _, _ = select.select([self.master, self.proc.stdout], [], [], seconds)
        for fd in ready:
            try:
                data = os.read(fd if isinstance(fd, int) else fd.fileno(), 65536)
            except OSError:
                data = b""
            if fd is self.master:
                self.err += data
            else:
                self.out += data

    def wait_for(self, condition, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if self.proc.poll() is not None:
                raise RuntimeError(f"the command ended before {what}: {self.text()[-800:]}")
            if time.monotonic() > deadline:
                self.proc.kill()  # never left running behind a failed case
                raise RuntimeError(f"no sign of {what} within {timeout:.0f} s: {self.text()[-800:]}")
            self.pump()

    def seen(self, pattern: str) -> bool:
        return re.search(pattern, self.text()) is not None

    def text(self) -> str:
        return (self.out + b"\n" + self.err).decode("utf-8", "replace")

    def interrupt(self) -> float:
        """SIGINT, then the seconds until the process is gone (killed after 60)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        while self.proc.poll() is None and time.monotonic() - start < 60:
            self.pump(0.01)
        seconds = time.monotonic() - start
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGUSR1)  # where its threads are, for the record
            time.sleep(1)
            self.proc.kill()
            self.proc.wait()
        for _ in range(20):
            self.pump(0.01)
        os.close(self.master)
        return seconds


def _env(home: Path, **extra: str) -> dict:
    env = {**os.environ, "ARTICLEQA_HOME": str(home), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    env.pop("TERM", None)
    return {**env, **extra}


def _port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


def _articles(folder: Path) -> set[str] | str:
    from articleqa.index.snapshot import Index

    try:
        return set(Index.load(folder).articles)
    except Exception as exc:  # the point is that there is none
        return f"{type(exc).__name__}: {exc}"


def run_case(command: str, phase: str, work: Path, libraries: dict[str, Path], shared_home: Path) -> dict:
    case = work / f"{command}-{phase.replace(' ', '-')}"
    case.mkdir()
    folder = case / "index"
    shutil.copytree(libraries["merge" if phase == "merging" else "base"], folder)
    before = _articles(folder)
    home = case / "home" if phase == "loading the model" else shared_home  # no ONNX copy yet: it is written
    inputs = case / "inputs"
    inputs.mkdir()
    slow = None
    if phase == "parsing":
        source = inputs / "huge.pdf"
        write_pdf(source, 3000)
    elif phase == "merging":
        source = inputs / "otters.txt"
        write_text(source, 3800)  # about 610 passages: the eighth segment of its size
    elif phase == "fetching":
        slow = SlowServer()
        source = slow.url
    else:
        source = inputs / "otters.txt"
        write_text(source, 3000)
    uploads = case / "gradio"
    env = _env(home, GRADIO_TEMP_DIR=str(uploads))
    try:
        if command == "serve":
            seconds, out = _serve_case(phase, folder, source, env, slow)
        else:
            seconds, out = _cli_case(command, phase, folder, source, env, slow)
    finally:
        if slow is not None:
            slow.close()
    after = _articles(folder)
    whole = isinstance(after, set) and isinstance(before, set) and (after == before or after > before)
    return {
        "command": command,
        "phase": phase,
        "seconds": round(seconds, 2),
        "index_whole": whole,
        "articles_before": len(before) if isinstance(before, set) else before,
        "articles_after": len(after) if isinstance(after, set) else after,
        "uploads_left": sum(1 for _ in uploads.rglob("*") if _.is_file()) if uploads.exists() else 0,
        "last_words": out.strip().splitlines()[-3:],
    }


def _cli_case(command: str, phase: str, folder: Path, source, env: dict, slow) -> tuple[float, str]:
    args = [*ARTICLEQA, command]
    if command == "build":
        args += [str(Path(source).parent) if not isinstance(source, str) else str(source), "--index-dir", str(folder)]
    else:
        args += [str(source), "--index-dir", str(folder), "--allow-private-urls"]
    cmd = Command(args, env)
    if phase == "starting":
        time.sleep(0.3)
    elif phase == "loading the model":
        home = Path(env["ARTICLEQA_HOME"])
        cmd.wait_for(lambda: any(home.rglob("*")), 120, "the ONNX copy being written")
        time.sleep(1.0)
    elif phase == "parsing":
        time.sleep(4.0)  # imports and the index open take about 1 s; parsing 3,000 pages far longer
    elif phase == "fetching":
        cmd.wait_for(slow.reached.is_set, 60, "the link being fetched")
        time.sleep(1.0)
    elif phase == "embedding":
        cmd.wait_for(lambda: cmd.seen("embedding (passages|sentences)"), 120, "texts being embedded")
        time.sleep(1.0)
    elif phase == "merging":
        cmd.wait_for(lambda: cmd.seen("merging"), 900, "a merge")
    seconds = cmd.interrupt()
    return seconds, cmd.text()


def _serve_case(phase: str, folder: Path, source, env: dict, slow) -> tuple[float, str]:
    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    args = [*ARTICLEQA, "serve", "--index-dir", str(folder), "--port", str(port), "--allow-private-urls"]
    cmd = Command(args, env)
    if phase == "starting":
        time.sleep(0.3)
        return cmd.interrupt(), cmd.text()
    if phase == "loading the model":
        cmd.wait_for(lambda: _port_open(port), 120, "the server listening")
        home = Path(env["ARTICLEQA_HOME"])
        cmd.wait_for(lambda: any(home.rglob("*")), 120, "the ONNX copy being written")
        time.sleep(1.0)
        return cmd.interrupt(), cmd.text()
    cmd.wait_for(lambda: cmd.seen(r"at http://127\.0\.0\.1:\d+/"), 120, "the server ready")
    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
    if phase == "fetching":
        job = client.submit(source, api_name="/add_link")
        cmd.wait_for(slow.reached.is_set, 60, "the link being fetched")
        time.sleep(1.0)
    else:
        job = client.submit([handle_file(str(source))], api_name="/upload")
        wanted = {"parsing": "reading", "embedding": "embedding passages", "merging": "merging"}[phase]
        cmd.wait_for(lambda: wanted in _progress(job), 900, f"'{wanted}' in the upload's progress")
        if phase != "merging":
            time.sleep(1.0)
    seconds = cmd.interrupt()
    return seconds, cmd.text()


def _progress(job) -> str:
    status = job.status()
    return " ".join(str(getattr(p, "desc", "") or "") for p in (status.progress_data or []))


# -- the run --------------------------------------------------------------------------------------


def hogs(n: int) -> list[subprocess.Popen]:
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


CASES = (
    [("serve", phase) for phase in PHASES]
    + [("build", p) for p in PHASES if p != "fetching"]
    + [("add", p) for p in PHASES]
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--hogs", type=int, default=2, help="busy processes beside the command (default 2)")
    parser.add_argument("--only", action="append", help="COMMAND:PHASE, repeatable")
    args = parser.parse_args(argv)
    cases = [c for c in CASES if not args.only or f"{c[0]}:{c[1]}" in args.only]
    results = []
    with tempfile.TemporaryDirectory(prefix="articleqa-shutdown-") as tmp:
        work = Path(tmp)
        home = work / "home"
        base = base_library(work)
        libraries = {"base": base}
        if any(phase == "merging" for _, phase in cases):
            libraries["merge"] = merge_library(work, base)
        busy = hogs(args.hogs)
        try:
            for command, phase in cases:
                result = run_case(command, phase, work, libraries, home)
                results.append(result)
                print(json.dumps(result, ensure_ascii=False), flush=True)
        finally:
            for p in busy:
                p.kill()
    report = {
        "machine": f"{os.cpu_count()} cores",
        "hogs": args.hogs,
        "when": time.strftime("%Y-%m-%d"),
        "results": results,
        "slowest_s": max(r["seconds"] for r in results),
        "all_whole": all(r["index_whole"] for r in results),
    }
    if args.out:
        args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"slowest {report['slowest_s']} s; every index whole: {report['all_whole']}")
    return 0 if report["all_whole"] and report["slowest_s"] <= 5 else 1


if __name__ == "__main__":
    sys.exit(main())
