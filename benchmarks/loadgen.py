"""The fallback HTTP load generator (when wrk is not installed): one process per connection
slot, raw sockets, fixed duration; and single requests for the sequential benchmarks.

gunicorn's sync workers close the connection after every response, so each request opens
a new TCP connection (as a client of such a server would) and reads until EOF. Request
bytes are built before the clock starts; the measuring loop only connects, sends, reads
and looks at the status code. Even so, it is Python: on two cores it tops out near
1,700-1,900 requests/s, below what a bare Flask app serves, so a ceiling measured with it
is understated and every ratio to that ceiling overstated. :mod:`benchmarks.wrk` is used
whenever wrk is on PATH, and every result names the generator that produced it.
"""

from __future__ import annotations

import base64
import multiprocessing
import socket
import time
import typing as t
from array import array
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field


def build_request(
    method: str,
    path: str,
    *,
    port: int,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass(frozen=True)
class LoadResult:
    requests: int
    errors: int
    duration: float
    rps: float
    p50_ms: float
    p99_ms: float
    wrapped: bool
    #: Which generator made the load: "wrk 4.1.0 -t2 -c16" or "python -c4".
    generator: str = ""
    #: Errors by kind, where the generator tells them apart (wrk does).
    error_detail: dict[str, int] = field(default_factory=dict)
    #: Requests per second of each round, when this result sums several (:func:`combine`).
    rounds: tuple[float, ...] = ()
    #: CPU seconds the server's workers used during the counted part, when measured.
    server_cpu_s: float | None = None

    def as_dict(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {
            "loadgen": self.generator,
            "requests": self.requests,
            "errors": self.errors,
            "duration_s": round(self.duration, 2),
            "rps": round(self.rps, 1),
            "p50_ms": round(self.p50_ms, 2),
            "p99_ms": round(self.p99_ms, 2),
        }
        if self.error_detail:
            out["error_detail"] = self.error_detail
        if len(self.rounds) > 1:
            out["rounds_rps"] = [round(rps, 1) for rps in self.rounds]
        if self.server_cpu_s is not None and self.requests:
            out["server_cpu_ms_per_request"] = round(self.server_cpu_s / self.requests * 1000, 3)
        return out


def combine(results: Sequence[LoadResult]) -> LoadResult:
    """Several rounds of one load as one result: the requests and seconds of all of them,
    the median round's p50 and the worst round's p99 (the latencies themselves are gone)."""
    if len(results) == 1:
        return results[0]
    duration = sum(r.duration for r in results)
    requests = sum(r.requests for r in results)
    detail: dict[str, int] = {}
    for r in results:
        for key, value in r.error_detail.items():
            detail[key] = detail.get(key, 0) + value
    return LoadResult(
        requests=requests,
        errors=sum(r.errors for r in results),
        duration=duration,
        rps=requests / duration if duration else 0.0,
        p50_ms=median([r.p50_ms for r in results]),
        p99_ms=max(r.p99_ms for r in results),
        wrapped=any(r.wrapped for r in results),
        generator=results[0].generator,
        error_detail=detail,
        rounds=tuple(r.rps for r in results),
        server_cpu_s=None
        if any(r.server_cpu_s is None for r in results)
        else sum(r.server_cpu_s or 0.0 for r in results),
    )


def send(port: int, raw: bytes, timeout: float = 600.0) -> tuple[int, bytes]:
    """One request on a new connection: the status code and the whole response."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(raw)
        chunks = []
        while True:
            chunk = sock.recv(262144)
            if not chunk:
                break
            chunks.append(chunk)
    response = b"".join(chunks)
    return _status(response), response


def _status(response: bytes) -> int:
    try:
        return int(response[9:12])
    except ValueError:
        return 0


# Set before the generator processes fork, so they share the request bytes without pickling.
_REQUESTS: Sequence[bytes] = ()


def _client(
    slot: int,
    slots: int,
    port: int,
    expected: frozenset[int],
    start: float,
    measure_from: float,
    end: float,
    queue: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    mine = _REQUESTS[slot::slots] or _REQUESTS
    latencies = array("d")
    errors = 0
    wrapped = False
    i = 0
    while time.monotonic() < start:
        time.sleep(0.001)
    while True:
        began = time.monotonic()
        if began >= end:
            break
        if i == len(mine):
            i, wrapped = 0, True
        raw = mine[i]
        i += 1
        status = 0
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
                sock.sendall(raw)
                head = sock.recv(65536)
                status = _status(head)
                while sock.recv(262144):
                    pass
        except OSError:
            status = 0
        done = time.monotonic()
        if began >= measure_from and done <= end:
            latencies.append(done - began)
            if status not in expected:
                errors += 1
    queue.put((latencies.tobytes(), errors, wrapped))


def run(
    port: int,
    requests: Sequence[bytes],
    *,
    concurrency: int,
    duration: float,
    warmup: float,
    expected: frozenset[int] = frozenset({200}),
) -> LoadResult:
    """Keep ``concurrency`` requests in flight for ``warmup + duration`` seconds; count the
    ones that start after the warm-up and finish before the end."""
    global _REQUESTS
    _REQUESTS = requests
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    start = time.monotonic() + 0.3
    measure_from = start + warmup
    end = measure_from + duration
    processes = [
        context.Process(
            target=_client,
            args=(slot, concurrency, port, expected, start, measure_from, end, queue),
        )
        for slot in range(concurrency)
    ]
    for process in processes:
        process.start()
    latencies = array("d")
    errors = 0
    wrapped = False
    for _ in processes:
        raw, slot_errors, slot_wrapped = queue.get()
        chunk = array("d")
        chunk.frombytes(raw)
        latencies.extend(chunk)
        errors += slot_errors
        wrapped = wrapped or slot_wrapped
    for process in processes:
        process.join()
    _REQUESTS = ()
    ordered = sorted(latencies)
    return LoadResult(
        requests=len(ordered),
        errors=errors,
        duration=duration,
        rps=len(ordered) / duration,
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        wrapped=wrapped,
        generator=f"python -c{concurrency}",
    )


def percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered)) - 1))
    return ordered[index]


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)
