"""Servers the tests start on loopback ports: always port 0 (any free port), the address read
from the server itself, never a port chosen here and bound later by someone else."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable, Sequence

from benchmarks.common import api_call  # noqa: F401 - the tests call the API as the load benchmark does

from waiting import Output, stop

# What `articleqa serve` prints once it listens (ui.serve).
SERVING = re.compile(r"articleqa: \d+ articles? at (http://\S+/)")


def launch(app, *, host: str = "127.0.0.1"):
    """`ui.launch(app)` in this process on any free port; the app (app.local_url) is returned."""
    from articleqa.ui import server as ui

    return ui.launch(app, host=host, port=0)


def serve(
    args: Sequence[str],
    *,
    env: dict[str, str],
    spawn: Callable[..., subprocess.Popen] = subprocess.Popen,
    timeout: float = 240,
) -> tuple[subprocess.Popen, str, Output]:
    """`python -m articleqa serve ARGS --port 0`, once it says where it listens (after loading
    the model: up to `timeout` seconds). Returns the process, the address it printed and its
    output (stdout and stderr, read as they come). `spawn` starts the process (a test's `spawn`
    fixture stops it whatever happens)."""
    command = [sys.executable, "-m", "articleqa", "serve", *map(str, args), "--port", "0"]
    proc = spawn(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    out = Output(proc.stdout)
    try:
        line = out.line(SERVING.search, timeout, "`articleqa serve` to say where it listens")
    except AssertionError:
        stop(proc)
        raise
    return proc, SERVING.search(line).group(1), out
