"""Run the real Milvus server where only this machine's loopback can reach it.

The server from the PyPI `milvus` package binds every interface. This process listens on
127.0.0.1:PORT in the machine's network namespace, then moves itself into a new network namespace
that has nothing but its own loopback, starts the server there, and forwards each connection
from the outside listener to the server. Nothing but 127.0.0.1:PORT is reachable from outside.

    python tests/milvus_server.py --data DIR --port 19530

prints `ready milvus://127.0.0.1:PORT` once the server answers, and stops the server on SIGTERM
or SIGINT. With `--port 0` the system picks a free port, and the `ready` line names it. Needs root
(or CAP_SYS_ADMIN) for the namespace.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

CLONE_NEWNET = 0x40000000


def _unshare_network() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise SystemExit(f"cannot make a network namespace ({os.strerror(err)}): run as root")
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


def _pipe(a: socket.socket, b: socket.socket) -> None:
    try:
        while data := a.recv(1 << 16):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def _forward(listener: socket.socket, target_port: int) -> None:
    while True:
        client, _ = listener.accept()
        try:
            upstream = socket.create_connection(("127.0.0.1", target_port))
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _healthy(timeout: float, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the Milvus server exited with code {server.returncode}")
        try:
            with urllib.request.urlopen("http://127.0.0.1:9091/healthz", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"the Milvus server was not healthy after {timeout:.0f} s")


def _stop_group(server: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 5), (signal.SIGKILL, 10)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            return
        try:
            server.wait(wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the wrapper is gone; its child may not be
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="the server's data folder")
    parser.add_argument("--port", type=int, default=19530, help="the loopback port to listen on (0: any free one)")
    parser.add_argument("--timeout", type=float, default=180)
    args = parser.parse_args()
    binary = shutil.which("milvus-server") or str(Path(sys.executable).with_name("milvus-server"))
    if not Path(binary).exists():
        raise SystemExit("no milvus-server: pip install milvus (make install-test does)")
    listener = socket.create_server(("127.0.0.1", args.port))  # in the machine's namespace
    port = listener.getsockname()[1]  # the one the system chose for --port 0
    _unshare_network()  # everything from here on sees only the private loopback
    Path(args.data).mkdir(parents=True, exist_ok=True)
    log = open(Path(args.data) / "server.log", "ab")
    # `milvus-server` runs the real server as its own child: both go in one process group, which
    # is stopped as a whole (stopping the wrapper alone leaves the server running).
    server = subprocess.Popen(
        [binary, "--data", args.data], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )

    def stop(*_):
        _stop_group(server)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        _healthy(args.timeout, server)
    except SystemExit:
        _stop_group(server)
        raise
    threading.Thread(target=_forward, args=(listener, 19530), daemon=True).start()
    print(f"ready milvus://127.0.0.1:{port}", flush=True)
    server.wait()
    _stop_group(server)
    raise SystemExit(f"the Milvus server exited with code {server.returncode}")


if __name__ == "__main__":
    main()
