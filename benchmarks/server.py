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

    def worker_cpu_s(self) -> float:
        """CPU seconds (user + system) the workers have used so far."""
        return sum(cpu_s(pid) for pid in self.worker_pids())

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Return once nothing is left for the workers to do (or after ``timeout``): no
        connection waiting in the listen queue, every worker asleep and no CPU used, three
        samples 0.1 s apart in a row. On a busy machine a runnable worker can go a while
        unscheduled, so CPU time alone would call it idle too soon."""
        deadline = time.monotonic() + timeout
        quiet = 0
        last = self.worker_cpu_s()
        while quiet < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.worker_cpu_s()
            asleep = all(process_state(pid) in ("S", "I", "") for pid in self.worker_pids())
            idle = now == last and asleep and listen_queue(self.port) == 0
            quiet = quiet + 1 if idle else 0
            last = now

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


def process_state(pid: int) -> str:
    """The state letter of a process (R running, S sleeping, ...); "" when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def listen_queue(port: int) -> int:
    """Connections waiting to be accepted on 127.0.0.1:``port`` (0 when unknown)."""
    local = f"0100007F:{port:04X}"
    try:
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return 0
    for line in lines:
        fields = line.split()
        # For a listening socket (state 0A) rx_queue is the accept backlog.
        if len(fields) > 4 and fields[1] == local and fields[3] == "0A":
            return int(fields[4].split(":")[1], 16)
    return 0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of one process; 0 when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # Fields after the command name (which may hold spaces), from field 3: utime is 14th.
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
