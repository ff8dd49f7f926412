"""Load runs with wrk (a C load generator) when it is on PATH: GETs and POSTs through a Lua script.

The Python generator in :mod:`benchmarks.loadgen` tops out near 1,700-1,900 requests/s on
two cores, below what a bare Flask app serves, so the ceiling it measured was its own (the
issue measured bare Flask at 5,311 requests/s with wrk on the same machine). Every run here
writes a small Lua script to a temporary file: the method, headers and (for POSTs) a pool
of bodies each thread walks through its own share of, so no body is sent twice unless the
pool runs out (reported as ``wrapped``); its ``done`` function prints the counts, errors
and latency percentiles as one JSON line, which is what this module reads (not wrk's text
summary).

gunicorn's sync workers close the connection after every response; wrk then reconnects,
so each request pays for a TCP connection, as with the Python generator.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tempfile
import typing as t
from collections.abc import Mapping
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from .loadgen import LoadResult

#: Marks the line the Lua ``done`` function prints, among wrk's own output.
MARK = "WRK-RESULT "

_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  local wraps = 0
  for _, thread in ipairs(pool_threads or {}) do
    wraps = wraps + (thread:get("wraps") or 0)
  end
  io.write(string.format(
    'WRK-RESULT {"requests": %d, "duration_us": %d, "bytes": %d, "connect": %d, '
    .. '"read": %d, "write": %d, "status": %d, "timeout": %d, '
    .. '"p50_us": %.1f, "p99_us": %.1f, "max_us": %.1f, "wraps": %d}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99), latency.max,
    wraps))
end
"""

# Each thread's Lua state reads the pool file in init(); ``setup`` (run in the main state
# before each thread's init) numbers the threads so each takes every n-th body from its own
# starting point.
_POOL = r"""
pool_threads = {}
setup = function(thread)
  thread:set("tid", #pool_threads)
  table.insert(pool_threads, thread)
end

local bodies, count, index = {}, 0, 0
wraps = 0
init = function(args)
  local f = assert(io.open(%(pool)s, "rb"))
  local data = f:read("*a")
  f:close()
  local pos = 1
  for len in string.gmatch(%(lengths)s, "%%d+") do
    len = tonumber(len)
    count = count + 1
    bodies[count] = string.sub(data, pos, pos + len - 1)
    pos = pos + len
  end
  index = tid + 1
end

request = function()
  if index > count then
    index = tid + 1
    wraps = wraps + 1
  end
  local body = bodies[index]
  index = index + %(threads)d
  return wrk.format(%(method)s, %(path)s, nil, body)
end
"""


def _lua_string(text: str) -> str:
    """``text`` as a Lua string literal: printable ASCII as is, anything else (and the
    quote and backslash) as decimal byte escapes."""
    out = []
    for byte in text.encode():
        char = chr(byte)
        out.append(char if 32 <= byte < 127 and char not in '"\\' else f"\\{byte:03d}")
    return '"' + "".join(out) + '"'


@cache
def version() -> str | None:
    """``wrk 4.1.0`` (say), or None when wrk is not on PATH."""
    binary = shutil.which("wrk")
    if binary is None:
        return None
    try:
        # wrk prints its version in the usage text, exiting non-zero.
        output = subprocess.run(
            [binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"wrk\s+(?:\S*/)?(\d+\.\d+(?:\.\d+)?)", output)
    return f"wrk {match.group(1)}" if match else "wrk"


def describe(threads: int, connections: int) -> str:
    return f"{version() or 'wrk'} -t{threads} -c{connections}"


def script(
    method: str,
    path: str,
    headers: Mapping[str, str],
    *,
    pool: Path | None = None,
    lengths: Sequence[int] = (),
    threads: int = 1,
) -> str:
    """The Lua script of one run: fixed headers, and either one request or a body pool."""
    lines = [f"wrk.method = {_lua_string(method)}"]
    lines += [
        f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}"
        for name, value in headers.items()
    ]
    if pool is not None:
        lines.append(
            _POOL
            % {
                "pool": _lua_string(str(pool)),
                "lengths": _lua_string(" ".join(map(str, lengths))),
                "threads": threads,
                "method": _lua_string(method),
                "path": _lua_string(path),
            }
        )
    lines.append(_DONE)
    return "\n".join(lines)


def parse(output: str) -> dict[str, float]:
    """The JSON line the script's ``done`` printed."""
    for line in output.splitlines():
        if line.startswith(MARK):
            return t.cast(dict[str, float], json.loads(line[len(MARK) :]))
    raise RuntimeError(f"wrk printed no result line:\n{output[-2000:]}")


def _invoke(
    port: int,
    path: str,
    lua: Path,
    *,
    threads: int,
    connections: int,
    seconds: int,
    timeout: int,
) -> dict[str, float]:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={timeout}s",
        "-s",
        str(lua),
        f"http://127.0.0.1:{port}{path}",
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + timeout + 60)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return parse(done.stdout)


def run(
    port: int,
    method: str,
    path: str,
    *,
    headers: Mapping[str, str] | None = None,
    bodies: Sequence[bytes] = (),
    warmup_bodies: Sequence[bytes] = (),
    threads: int,
    connections: int,
    duration: float,
    warmup: float,
    timeout: int = 60,
) -> LoadResult:
    """``connections`` connections on ``threads`` threads for ``warmup`` seconds (not
    counted, its own body pool) and then ``duration`` seconds (counted).

    Without ``bodies`` every request is the same; with them, each is sent once at most
    (``wrapped`` when the pool ran out and bodies were sent again).
    """
    threads = max(1, min(threads, connections))
    headers = dict(headers or {})
    with tempfile.TemporaryDirectory(prefix="fsa-bench-wrk-") as tmp:
        directory = Path(tmp)

        def lua_for(name: str, pool: Sequence[bytes]) -> Path:
            pool_path = None
            if pool:
                pool_path = directory / f"{name}.bin"
                pool_path.write_bytes(b"".join(pool))
            lua = directory / f"{name}.lua"
            lua.write_text(
                script(
                    method,
                    path,
                    headers,
                    pool=pool_path,
                    lengths=[len(b) for b in pool],
                    threads=threads,
                )
            )
            return lua

        options = {"threads": threads, "connections": connections, "timeout": timeout}
        if warmup > 0:
            warm = lua_for("warmup", warmup_bodies or bodies)
            _invoke(port, path, warm, seconds=max(1, math.ceil(warmup)), **options)
        seconds = max(1, round(duration))
        measured = _invoke(port, path, lua_for("measure", bodies), seconds=seconds, **options)
    elapsed = measured["duration_us"] / 1e6
    socket_errors = sum(int(measured[k]) for k in ("connect", "read", "write", "timeout"))
    requests = int(measured["requests"])
    return LoadResult(
        requests=requests,
        errors=int(measured["status"]) + socket_errors,
        duration=elapsed,
        rps=requests / elapsed if elapsed else 0.0,
        p50_ms=measured["p50_us"] / 1000,
        p99_ms=measured["p99_us"] / 1000,
        wrapped=int(measured["wraps"]) > 0,
        generator=describe(threads, connections),
        error_detail={
            "status_4xx_5xx": int(measured["status"]),
            **{k: int(measured[k]) for k in ("connect", "read", "write", "timeout")},
        },
    )
