"""Start and stop gunicorn servers for the benchmarks, and read their workers' peak memory."""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Every server of a run gets the same worker model, so ratios compare frameworks only.
WORKERS = 2
WORKER_CLASS = "sync"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    """A running gunicorn master on 127.0.0.1."""

    app: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def worker_pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        try:
            return [int(pid) for pid in children.read_text().split()]
        except OSError:
            return []

    def worker_hwm_mb(self) -> list[float]:
        """VmHWM (peak resident set) of each worker, in MB."""
        return [hwm for pid in self.worker_pids() if (hwm := vm_hwm_mb(pid)) is not None]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def vm_hwm_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return None


def start(
    app: str,
    env: Mapping[str, str],
    log_dir: Path,
    *,
    workers: int = WORKERS,
    extra_args: Sequence[str] = (),
    ready_path: str = "/",
    timeout: float = 120.0,
) -> Server:
    """Start ``gunicorn app`` and return once every worker answers ``ready_path``."""
    port = free_port()
    log_path = log_dir / f"gunicorn-{app.split(':')[0].replace('.', '_')}-{port}.log"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        app,
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        WORKER_CLASS,
        # A deep page or a 100,000-row bulk request may exceed the default 30 s.
        "--timeout",
        "600",
        # Thousands of short connections a second must not be refused by a short backlog.
        "--backlog",
        "2048",
        *extra_args,
    ]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    log = log_path.open("wb")
    process = subprocess.Popen(
        command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT
    )
    log.close()
    server = Server(app=app, port=port, process=process, log_path=log_path)
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn {app} exited:\n{server.log_tail()}")
        if len(server.worker_pids()) >= workers and _answers(port, ready_path):
            break
        if time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"gunicorn {app} did not start:\n{server.log_tail()}")
        time.sleep(0.1)
    # Every worker imports the app lazily on its first request path; touch them all so the
    # first timed requests do not pay for imports.
    for _ in range(workers * 4):
        _answers(port, ready_path)
    return server


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()
