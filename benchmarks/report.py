"""Render benchmark results (the JSON document) as a plain-text / Markdown table."""

from __future__ import annotations

import importlib
import typing as t

Row = tuple[str, str, str, str, str, str]

#: The issue's targets for ours/bare and ours/DRF, by overhead entry (None: no target).
BARE_TARGETS = {"project": 0.6, "groups": 0.25, "groups_nostats": None}
DRF_TARGETS = {"groups": 3.0, "groups_nostats": None}
LABELS = {
    "project": "GET project",
    "groups": "GET 100 groups, 24h stats",
    "groups_nostats": "GET 100 groups, no stats",
}


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def _load(result: t.Mapping[str, t.Any]) -> str:
    if "rps" not in result:
        return f"failed: {str(result.get('error', ''))[:60]}"
    if result["errors"]:
        # A rate that includes failed requests says nothing about the server's speed.
        return f"ERRORS: {result['errors']} of {result['requests']} requests"
    if not result["requests"]:
        return f"NO RESPONSE in {result['duration_s']:g} s"
    text = f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} / p99 {result['p99_ms']:.1f} ms"
    cpu = result.get("server_cpu_ms_per_request")
    return text if cpu is None else f"{text}, CPU {cpu:.2f} ms/req"


def _ratio(ratio: float | None, target: float | None, more: bool = True) -> tuple[str, str]:
    # Three significant digits: 0.247 against a 0.25 target must not print as 0.25.
    text = "n/a" if ratio is None else f"{ratio:.3g}"
    if target is None:
        return text, ""
    sign = ">=" if more else "<="
    ok = None if ratio is None else (ratio >= target if more else ratio <= target)
    return text, f"{sign} {target:g}: {_met(ok)}"


def _cpu(ratio: float | None) -> str:
    return "" if ratio is None else f" (CPU {ratio:.3g})"


def _generator(entry: t.Mapping[str, t.Any], seconds: float | None = None, rounds: int = 1) -> str:
    name = str(entry.get("loadgen", ""))
    if not (name and seconds):
        return name
    if rounds > 1:
        return f"{name}, {rounds} x {seconds / rounds:g} s"
    return f"{name}, {seconds:g} s"


def _overhead_rows(over: t.Mapping[str, t.Any]) -> list[Row]:
    out: list[Row] = []
    seconds = over.get("duration_s")
    rounds = int(over.get("rounds", 1))
    for name, label in LABELS.items():
        entry = over.get(name)
        if not entry:
            continue
        size = f"{entry['bytes']:,} B"
        ratio, target = _ratio(entry.get("ratio_ours_bare"), BARE_TARGETS.get(name))
        ratio += _cpu(entry.get("cpu_ratio_ours_bare"))
        out.append(
            (
                f"{label} ({size}): ours vs bare Flask, same bytes",
                _load(entry["ours"]),
                _load(entry["bare"]),
                ratio,
                target,
                _generator(entry["ours"], seconds, rounds),
            )
        )
        if name not in DRF_TARGETS:
            continue
        drf = entry.get("drf")
        if drf is None:
            out.append((f"{label}: ours vs DRF", "", "peer not run", "", "", ""))
            continue
        if "drf_bytes" in entry:
            same = "identical" if entry.get("drf_identical") else "NOT identical"
            peer = f"{entry['drf_bytes']:,} B, {same}"
        else:
            peer = "bytes unknown"
        ratio, target = _ratio(entry.get("ratio_ours_drf"), DRF_TARGETS[name])
        ratio += _cpu(entry.get("cpu_ratio_ours_drf"))
        out.append(
            (
                f"{label}: ours vs DRF peer ({peer})",
                _load(entry["ours"]),
                _load(drf),
                ratio,
                target,
                _generator(drf, seconds, rounds),
            )
        )
    return out


def _dashboard_rows(dash: t.Mapping[str, t.Any]) -> list[Row]:
    cost, deep = dash["cost"], dash["depth"]
    api, page = cost["api"], cost["dashboard"]
    ratio, target = _ratio(cost.get("ratio_dashboard_api"), 2, more=False)
    ratio += _cpu(cost.get("cpu_ratio_dashboard_api"))
    out: list[Row] = [
        (
            f"dashboard issues page ({page['bytes']:,} B) vs API page of the same"
            f" {cost['rows']} groups ({api['bytes']:,} B), 24h stats",
            _load(page),
            _load(api),
            ratio,
            target,
            _generator(page, cost.get("duration_s"), int(cost.get("rounds", 1))),
        )
    ]
    how = _generator(deep)
    for entry in deep["pages"]:
        out.append(
            (
                f"dashboard page at depth {entry['depth']:,} of {dash['groups']:,}",
                f"{entry['http_ms']:.1f} ms (HTTP)",
                "",
                "",
                "",
                how,
            )
        )
    ratio, target = _ratio(deep["ratio_deepest_first"], 1.5, more=False)
    out.append(("dashboard deepest / first page", ratio, "", ratio, target, how))
    return out


def rows(results: t.Mapping[str, t.Any]) -> list[Row]:
    out: list[Row] = []
    over = results.get("overhead")
    if over:
        out += _overhead_rows(over)
    deep = results.get("depth")
    if deep:
        how = _generator(deep)
        for page in deep["pages"]:
            out.append(
                (
                    f"page at depth {page['depth']:,} of {deep['groups']:,}",
                    f"{page['ours_http_ms']:.1f} ms (HTTP)",
                    f"OFFSET SQL {page['offset_sql_ms']:.1f} ms",
                    "",
                    "",
                    how,
                )
            )
        ratio, target = _ratio(deep["ratio_deepest_first_ours"], 1.5, more=False)
        out.append(
            (
                "deepest / first page",
                ratio,
                f"OFFSET {deep['ratio_deepest_first_offset']:.1f}",
                ratio,
                target,
                how,
            )
        )
    dash = results.get("dashboard")
    if dash:
        out += _dashboard_rows(dash)
    mem = results.get("memory")
    if mem:
        out.append(
            (
                f"worker VmHWM, {mem['groups']:,} groups",
                f"peak {max(mem['worker_peak_mb']):.0f} MB",
                f"start {max(mem['worker_start_mb']):.0f} MB",
                f"+{mem['growth_mb']:.0f} MB",
                "flat",
                f"during {', '.join(mem.get('during', [])) or '-'}",
            )
        )
    bulk = results.get("bulk")
    if bulk:
        n = bulk["ours"]["groups"]
        for verb, key in (("resolve", "ratio_resolve"), ("delete", "ratio_delete")):
            ratio, target = _ratio(bulk[key], 2, more=False)
            out.append(
                (
                    f"bulk {verb} {n:,} groups",
                    f"{bulk['ours'][f'{verb}_s']:.2f} s",
                    f"raw SQL {bulk['raw_sql'][f'{verb}_s']:.2f} s",
                    ratio,
                    target,
                    _generator(bulk),
                )
            )
    ing = results.get("ingest")
    if ing:
        for key, entry in ing.items():
            if not key.startswith("workers_"):
                continue
            workers = int(key.split("_")[1])
            per = entry["events_per_s_per_worker"]
            if entry["errors"]:
                rate, split = _load(entry), ""
                target = ">= 500/worker: n/a"
            else:
                rate = f"{entry['events_per_s']:.0f} events/s"
                split = f"p50 {entry['p50_ms']:.1f} / p99 {entry['p99_ms']:.1f} ms"
                target = f">= 500/worker: {_met(per >= 500)}"
            wrapped = " (pool wrapped)" if entry.get("pool_wrapped") else ""
            out.append(
                (
                    f"envelope ingestion, {workers} worker(s){wrapped}",
                    rate,
                    split,
                    f"{per:.0f}/worker",
                    target,
                    _generator(entry, ing.get("duration_s")),
                )
            )
        st = ing["stages"]
        parts = ", ".join(f"{k} {v:.0%}" for k, v in st["fraction"].items())
        out.append(
            (
                "ingestion time split",
                f"{st['request_ms']:.2f} ms/event",
                parts,
                "",
                "",
                f"in-process, {st['events']:,} events",
            )
        )
    queue = results.get("queue")
    if queue and "skipped" in queue:
        out.append(("queue mode", "skipped", str(queue["skipped"]), "", "", ""))
    elif queue and "error" in queue:
        error = " ".join(str(queue["error"]).split())[:200].replace("|", "/")
        out.append(("queue mode", "FAILED", error, "", "", ""))
    return out


def summary(results: t.Mapping[str, t.Any]) -> str:
    """One line naming the machine, database, servers and load generator of a run."""
    m = results.get("machine", {})
    srv = results.get("server", {})
    database = results.get("database_version") or results.get("database", "")
    return (
        f"{results.get('date', '')}, `{results.get('command', '')}`: "
        f"{database}, {m.get('cpus')} CPUs ({m.get('cpu_model')}), "
        f"Python {m.get('python')}, gunicorn {srv.get('workers')} {srv.get('worker_class')} "
        f"workers, load generator {results.get('loadgen', '?')}, "
        f"elapsed {results.get('elapsed_s', 0):.0f} s"
    )


def table(results: t.Mapping[str, t.Any]) -> str:
    header: Row = ("measure", "ours", "baseline", "ratio", "target", "load generator")
    body = rows(results)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    queue = results.get("queue")
    if queue and not {"skipped", "error"} & queue.keys():
        # Helper module of its own; imported only when its results are there.
        queue_mode = importlib.import_module(f"{__package__}.queue_mode")
        lines += ["", str(queue_mode.report(queue))]
    return "\n".join(lines)
