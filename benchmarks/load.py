"""`python -m benchmarks load`: `articleqa serve` under load, on loopback.

A fresh server (its own ARTICLEQA_HOME, the built-in library) gets, at the same time: `clients`
threads asking questions through the HTTP API one after another, one uploading articles, and one
abusing the API with oversized and wrongly typed inputs. Reported: errors and latency for the
normal clients, how fast the abusive requests were refused, and the server's memory before,
at its peak and after 35 quiet seconds (the server gives freed memory back every 30).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import api_call


def _rss_mib(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


def run(
    questions: list[str], *, clients: int = 50, seconds: float = 30.0, quiet: float = 35.0, upload: bool = True
) -> dict:
    # The server's home (a copy of the model's ONNX export, 90 MB and more, the index, the
    # uploads and Gradio's own temporary files) goes when the run ends, however it ends.
    with tempfile.TemporaryDirectory(prefix="articleqa-load-", ignore_cleanup_errors=True) as home:
        return _run(home, questions, clients=clients, seconds=seconds, quiet=quiet, upload=upload)


ABUSES = [
    ("5M-character history", ["Why?", 5, "hybrid", ["x" * 5_000_000]]),
    ("100k-turn history", ["and then?", 5, "hybrid", ["What are exosomes?"] * 100_000]),
    ("1 MB question", ["why " * 250_000, 5, "hybrid", []]),
    ("history=123", ["Why?", 5, "hybrid", 123]),
    ("k=10**9", ["Why?", 10**9, "hybrid", []]),
]


def _run(home: str, questions: list[str], *, clients: int, seconds: float, quiet: float, upload: bool) -> dict:
    import httpx

    server, base = _start_server(home)
    try:
        with httpx.Client(timeout=120) as http:
            api_call(http, base, "ask", [questions[0], 5, "hybrid", []])  # warm
        load = _Load(base, home, server.pid, questions, clients, time.monotonic() + seconds)
        threads = [threading.Thread(target=load.asker, args=(n,)) for n in range(clients)]
        threads += [threading.Thread(target=load.abuser), threading.Thread(target=load.watch)]
        threads += [threading.Thread(target=load.uploader)] if upload else []
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(quiet)
        after = _rss_mib(server.pid)
    finally:
        server.terminate()
        try:
            server.wait(60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return {"clients": clients, "seconds": seconds, **load.summary(after)}


def _start_server(home: str) -> tuple[subprocess.Popen, str]:
    """`articleqa serve` on any free port, in a home of its own: the process and its address."""
    from articleqa.settings import data_home

    if (data_home() / "models").is_dir():  # the ONNX copy of the model, as on a machine in use
        shutil.copytree(data_home() / "models", Path(home) / "models")
    env = {
        **os.environ,
        "ARTICLEQA_HOME": home,
        "GRADIO_ANALYTICS_ENABLED": "False",
        "GRADIO_TEMP_DIR": str(Path(home) / "gradio"),
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "articleqa", "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    for line in server.stdout:  # "articleqa: 4 articles at http://127.0.0.1:PORT/ (Ctrl+C to stop)"
        found = re.search(r"at (http://\S+)/ ", line)
        if found:
            threading.Thread(target=server.stdout.read, daemon=True).start()  # never let the pipe fill
            return server, found.group(1)
    server.wait()
    raise RuntimeError(f"articleqa serve ended before listening (exit {server.returncode})")


class _Load:
    """Clients of one run and what they saw."""

    def __init__(self, base: str, home: str, pid: int, questions: list[str], clients: int, stop: float) -> None:
        self.base, self.home, self.pid = base, home, pid
        self.questions, self.clients, self.stop = questions, clients, stop
        self.baseline = _rss_mib(pid)
        self.peak = self.baseline
        self.normal: list[float] = []
        self.errors: list[str] = []
        self.abusive: list[tuple[str, float, bool]] = []
        self.uploads: list[tuple[float, bool]] = []

    def asker(self, n: int) -> None:
        import httpx

        with httpx.Client(timeout=120) as http:
            i = n
            while time.monotonic() < self.stop:
                q = self.questions[i % len(self.questions)]
                i += self.clients
                start = time.perf_counter()
                try:
                    ok, msg = api_call(http, self.base, "ask", [q, 5, "hybrid", []])
                except httpx.HTTPError as exc:
                    ok, msg = False, str(exc)
                self.normal.append(time.perf_counter() - start)
                if not ok:
                    self.errors.append(msg[:200])

    def abuser(self) -> None:
        import httpx

        with httpx.Client(timeout=120) as http:
            i = 0
            while time.monotonic() < self.stop:
                name, data = ABUSES[i % len(ABUSES)]
                i += 1
                start = time.perf_counter()
                try:
                    ok, _ = api_call(http, self.base, "ask", data)
                except httpx.HTTPError:
                    ok = False
                self.abusive.append((name, time.perf_counter() - start, ok))

    def uploader(self) -> None:
        from gradio_client import Client, handle_file

        folder = Path(self.home) / "to-upload"
        folder.mkdir()
        client = Client(self.base + "/", verbose=False)
        n = 0
        while time.monotonic() < self.stop:
            n += 1
            path = folder / f"load-{n}.md"
            path.write_text(f"# Load test {n}\n\n" + " ".join(f"Otter fact {i} of upload {n}." for i in range(300)))
            start = time.perf_counter()
            try:
                client.predict([handle_file(str(path))], api_name="/upload")
                self.uploads.append((time.perf_counter() - start, True))
            except Exception:  # noqa: BLE001 - counted, reported
                self.uploads.append((time.perf_counter() - start, False))

    def watch(self) -> None:
        while time.monotonic() < self.stop + 5:
            self.peak = max(self.peak, _rss_mib(self.pid))
            time.sleep(0.25)

    def summary(self, after: float) -> dict:
        ordered, abusive = sorted(self.normal), self.abusive

        def pct(values, q):
            return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 1) if values else None

        return {
            "normal": {
                "asks": len(self.normal),
                "errors": len(self.errors),
                "p50_ms": pct(ordered, 0.5),
                "p95_ms": pct(ordered, 0.95),
            },
            "error_samples": self.errors[:5],
            "abusive": {
                name: {
                    "requests": sum(n == name for n, _, _ in abusive),
                    "refused": sum(n == name and not ok for n, _, ok in abusive),
                    "p50_ms": pct(sorted(d for n, d, _ in abusive if n == name), 0.5),
                    "max_ms": pct(sorted(d for n, d, _ in abusive if n == name), 1.0),
                }
                for name in dict.fromkeys(n for n, _, _ in abusive)
            },
            "uploads": {"done": sum(ok for _, ok in self.uploads), "failed": sum(not ok for _, ok in self.uploads)},
            "rss_mib": {"baseline": round(self.baseline), "peak": round(self.peak), "after_quiet": round(after)},
        }


def main(args) -> int:
    """`python -m benchmarks load --clients 50`: the server under load and abuse."""
    from articleqa.evaluate import load_questions
    from benchmarks.common import machine

    questions = [q.question for path in args.questions or () for q in load_questions(path)]
    result = {"machine": machine()}
    result["load"] = run(questions or ["What are exosomes?"], clients=args.clients, seconds=args.seconds)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0
