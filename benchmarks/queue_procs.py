"""Processes of the queue-mode benchmark: Celery workers, wrk runs, an open-loop event sender,
and the resident memory of any of them."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import time
import typing as t
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: The Flask app both the web processes and the workers run.
APP = "example_app:create_app()"


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def rss_mb(pid: int) -> float | None:
    """VmRSS (resident set now, not the peak) of ``pid``, in MB."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


class CeleryWorker:
    """``celery -A flask_sentry_api.worker worker --concurrency N`` (prefork pool) as a process
    group of its own, so stopping it takes its pool children too."""

    def __init__(self, env: Mapping[str, str], log_dir: Path, name: str, concurrency: int) -> None:
        self.log_path = log_dir / f"celery-{name}.log"
        self.concurrency = concurrency
        command = [sys.executable, "-m", "celery", "-A", "flask_sentry_api.worker", "worker"]
        command += ["--concurrency", str(concurrency), "--loglevel", "WARNING"]
        command += ["-n", f"{name}-{uuid.uuid4().hex[:6]}@%h"]
        # Heartbeats, mingle and gossip only matter to a fleet's monitoring; they add broker
        # traffic and start-up time.
        command += ["--without-heartbeat", "--without-mingle", "--without-gossip"]
        full_env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "SENTRY_API_WORKER_APP": APP,
            **env,
        }
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=full_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def pids(self) -> list[int]:
        """The worker's main process and its pool children."""
        return [self.process.pid, *children(self.process.pid)]

    def rss_mb(self) -> float:
        """Resident memory of the main process and its pool children together."""
        return sum(mb for pid in self.pids() if (mb := rss_mb(pid)) is not None)

    def check(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"celery worker exited:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            # Warm shutdown: the main process lets its pool finish the running task (a
            # SIGTERM to the pool children would kill it mid-batch, leaving the messages it
            # took to come back only after the visibility timeout).
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (a pool child of a worker that did not stop).
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if self.process.poll() is None:
            self.process.wait(timeout=15)

    def __enter__(self) -> CeleryWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# -- wrk ---------------------------------------------------------------------------------------

_WRK_SCRIPT = r"""
-- Bodies made in advance (one distinct event_id each), read once per thread; each request
-- takes the next one of its thread's stride. done() prints the figures as one JSON line.
local bodies = {}
local n = 0
local counter = 0
local stride = 1
wrk.method = "POST"
wrk.path = "%(path)s"
%(headers)s

local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  local f = io.open("%(data)s", "rb")
  local data = f:read("*a")
  f:close()
  local pos = 1
  for len in io.lines("%(index)s") do
    n = n + 1
    bodies[n] = data:sub(pos, pos + tonumber(len) - 1)
    pos = pos + tonumber(len)
  end
  stride = tonumber(args[2] or 1)
  counter = tonumber(args[1] or 0) + tid - stride
end

function request()
  counter = counter + stride
  return wrk.format(nil, nil, nil, bodies[(counter %% n) + 1])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %%.0f, "duration_us": %%.0f, "connect": %%.0f, "read": %%.0f,'
    .. ' "write": %%.0f, "status": %%.0f, "timeout": %%.0f, "p50_us": %%.0f, "p99_us": %%.0f,'
    .. ' "max_us": %%.0f}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration: float
    errors: int
    error_kinds: dict[str, int]
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float

    def as_dict(self) -> dict[str, t.Any]:
        return {
            "requests": self.requests,
            "duration_s": round(self.duration, 2),
            "errors": self.errors,
            "error_kinds": self.error_kinds,
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
            "max_ms": round(self.max_ms, 2),
        }


class Wrk:
    """wrk POSTing a pool of bodies (each used once until the pool wraps) to one path."""

    def __init__(
        self, work_dir: Path, path: str, headers: Mapping[str, str], bodies: Sequence[bytes]
    ) -> None:
        work_dir.mkdir(parents=True, exist_ok=True)
        data = work_dir / "bodies.bin"
        index = work_dir / "bodies.idx"
        data.write_bytes(b"".join(bodies))
        index.write_text("".join(f"{len(body)}\n" for body in bodies))
        header_lines = "\n".join(
            f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}"
            for name, value in headers.items()
        )
        self.script = work_dir / "post.lua"
        self.script.write_text(
            _WRK_SCRIPT % {"path": path, "headers": header_lines, "data": data, "index": index}
        )
        self.pool = len(bodies)
        self.used = 0

    def run(self, port: int, *, threads: int, connections: int, duration: float) -> WrkResult:
        command = ["wrk", "-t", str(threads), "-c", str(connections)]
        # wrk takes whole seconds.
        command += ["-d", f"{max(1, round(duration))}s", "--timeout", "10s", "-s", str(self.script)]
        command += [f"http://127.0.0.1:{port}/", "--", str(self.used), str(threads)]
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
        line = next((ln for ln in completed.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
        if completed.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed: {completed.stdout}\n{completed.stderr}")
        raw = json.loads(line.removeprefix("WRKJSON "))
        requests = int(raw["requests"])
        # The next run starts on bodies this one did not send.
        self.used += requests + threads
        seconds = raw["duration_us"] / 1e6
        kinds = {k: int(raw[k]) for k in ("connect", "read", "write", "status", "timeout")}
        return WrkResult(
            requests=requests,
            duration=seconds,
            errors=sum(kinds.values()),
            error_kinds={k: v for k, v in kinds.items() if v},
            rps=requests / seconds if seconds else 0.0,
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            max_ms=raw["max_us"] / 1000,
        )

    @property
    def wrapped(self) -> bool:
        return self.used > self.pool


# -- open-loop sending -------------------------------------------------------------------------


@dataclass(frozen=True)
class Template:
    """An uncompressed envelope whose ``event_id`` is replaced per event, then gzipped."""

    raw: bytes
    event_id: str

    def body(self, event_id: str) -> bytes:
        # Level 9, as sentry-sdk compresses.
        return gzip.compress(self.raw.replace(self.event_id.encode(), event_id.encode()), 9)


def _request(port: int, path: str, headers: Mapping[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _sender(
    slot: int,
    slots: int,
    port: int,
    path: str,
    headers: Mapping[str, str],
    templates: Sequence[Template],
    rate: float,
    start: float,
    duration: float,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    """Send one event every ``slots / rate`` seconds from ``start`` (wall clock) on, each at
    its scheduled time (or as soon as the previous one is answered, when late); report
    ``(event_id, sent, answered, status)`` per event."""
    interval = slots / rate
    records = []
    i = 0
    while True:
        due = start + (slot / slots + i) * interval
        if due >= start + duration:
            break
        event_id = uuid.uuid4().hex
        raw = _request(port, path, headers, templates[i % len(templates)].body(event_id))
        delay = due - time.time()
        if delay > 0:
            time.sleep(delay)
        sent = time.time()
        status = 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(raw)
                response = b""
                while chunk := sock.recv(65536):
                    response += chunk
            status = int(response[9:12]) if len(response) >= 12 else 0
        except (OSError, ValueError):
            status = 0
        records.append((event_id, sent, time.time(), status))
        i += 1
        # Small chunks: the soak's samples count what was sent by then.
        if len(records) >= 200:
            out.put(records)
            records = []
    out.put(records)
    out.put(None)


class OpenLoop:
    """``rate`` events a second for ``duration`` seconds from ``senders`` processes, whatever
    the server's answer times (open loop: a slow answer delays only its own process)."""

    def __init__(
        self,
        port: int,
        path: str,
        headers: Mapping[str, str],
        templates: Sequence[Template],
        *,
        rate: float,
        duration: float,
        senders: int = 2,
    ) -> None:
        context = multiprocessing.get_context("fork")
        self.out: multiprocessing.Queue = context.Queue()  # type: ignore[type-arg]
        self.start = time.time() + 0.3
        self.duration = duration
        self.processes = [
            context.Process(
                target=_sender,
                args=(
                    slot,
                    senders,
                    port,
                    path,
                    dict(headers),
                    list(templates),
                    rate,
                    self.start,
                    duration,
                    self.out,
                ),
                daemon=True,
            )
            for slot in range(senders)
        ]
        for process in self.processes:
            process.start()
        self._done = 0
        self.records: list[tuple[str, float, float, int]] = []

    def collect(self, timeout: float = 0.0) -> bool:
        """Take what the senders reported; True once all of them finished."""
        import queue

        deadline = time.monotonic() + timeout
        while self._done < len(self.processes):
            try:
                item = self.out.get(timeout=max(0.001, deadline - time.monotonic()))
            except queue.Empty:
                return False
            if item is None:
                self._done += 1
            else:
                self.records.extend(item)
        return True

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                process.kill()
            process.join(timeout=5)
