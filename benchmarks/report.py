"""Render benchmark results (the JSON document) as a plain-text / Markdown table."""

from __future__ import annotations

import typing as t

Row = tuple[str, str, str, str, str]


def _met(ok: bool | None) -> str:
    return "" if ok is None else ("yes" if ok else "NO")


def _load(result: t.Mapping[str, t.Any]) -> str:
    return f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} / p99 {result['p99_ms']:.1f} ms"


def rows(results: t.Mapping[str, t.Any]) -> list[Row]:
    out: list[Row] = []
    over = results.get("overhead")
    if over:
        for name, label in (("project", "GET project"), ("groups", "GET 100 groups")):
            entry = over[name]
            ratio = entry["ratio_ours_bare"]
            out.append(
                (
                    f"{label}: ours vs bare Flask",
                    _load(entry["ours"]),
                    _load(entry["bare"]),
                    f"{ratio:.2f}",
                    f">= 0.50: {_met(ratio >= 0.5)}",
                )
            )
        drf = over["groups"].get("drf")
        if drf and "rps" in drf:
            ratio = over["groups"]["ratio_ours_drf"]
            out.append(
                (
                    "GET 100 groups: ours vs DRF",
                    _load(over["groups"]["ours"]),
                    _load(drf),
                    f"{ratio:.2f}",
                    f">= 2: {_met(ratio >= 2)}",
                )
            )
        elif drf:
            out.append(("GET 100 groups: ours vs DRF", "", f"failed: {drf['error'][:60]}", "", ""))
        else:
            out.append(("GET 100 groups: ours vs DRF", "", "peer not available", "", ""))
    deep = results.get("depth")
    if deep:
        for page in deep["pages"]:
            out.append(
                (
                    f"page at depth {page['depth']:,} of {deep['groups']:,}",
                    f"{page['ours_http_ms']:.1f} ms (HTTP)",
                    f"OFFSET SQL {page['offset_sql_ms']:.1f} ms",
                    "",
                    "",
                )
            )
        ratio = deep["ratio_deepest_first_ours"]
        out.append(
            (
                "deepest / first page",
                f"{ratio:.2f}",
                f"OFFSET {deep['ratio_deepest_first_offset']:.1f}",
                f"{ratio:.2f}",
                f"<= 1.5: {_met(ratio <= 1.5)}",
            )
        )
    mem = results.get("memory")
    if mem:
        out.append(
            (
                f"worker VmHWM, {mem['groups']:,} groups",
                f"peak {max(mem['worker_peak_mb']):.0f} MB",
                f"start {max(mem['worker_start_mb']):.0f} MB",
                f"+{mem['growth_mb']:.0f} MB",
                "flat",
            )
        )
    bulk = results.get("bulk")
    if bulk:
        n = bulk["ours"]["groups"]
        for verb, key in (("resolve", "ratio_resolve"), ("delete", "ratio_delete")):
            ratio = bulk[key]
            out.append(
                (
                    f"bulk {verb} {n:,} groups",
                    f"{bulk['ours'][f'{verb}_s']:.2f} s",
                    f"raw SQL {bulk['raw_sql'][f'{verb}_s']:.2f} s",
                    f"{ratio:.2f}",
                    f"<= 2: {_met(ratio <= 2)}",
                )
            )
    ing = results.get("ingest")
    if ing:
        for key, entry in ing.items():
            if not key.startswith("workers_"):
                continue
            workers = int(key.split("_")[1])
            per = entry["events_per_s_per_worker"]
            out.append(
                (
                    f"envelope ingestion, {workers} worker(s)",
                    f"{entry['events_per_s']:.0f} events/s",
                    f"p50 {entry['p50_ms']:.1f} / p99 {entry['p99_ms']:.1f} ms",
                    f"{per:.0f}/worker",
                    f">= 500/worker: {_met(per >= 500)}",
                )
            )
        st = ing["stages"]
        parts = ", ".join(f"{k} {v:.0%}" for k, v in st["fraction"].items())
        out.append(("ingestion time split", f"{st['request_ms']:.2f} ms/event", parts, "", ""))
    return out


def table(results: t.Mapping[str, t.Any]) -> str:
    header: Row = ("measure", "ours", "baseline", "ratio", "target")
    body = rows(results)
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)
