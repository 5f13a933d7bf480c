"""`make bench`: the engine's floor and the product side by side, on a stack of its own.

    python -m bench [--size small|full] [--out PATH] [--keep]

Starts the Temporal dev server (file persistence in a temporary directory, WAL pragmas, our search
attributes), an embedded PostgreSQL there too, and the worker as a subprocess (python -m bench.worker:
worker.build_worker's product worker and a floor worker with the same settings). Everything is
encrypted, as in production. Prints a table and writes JSON (default bench/results/latest.json).

Sizes (env overrides any of them): BENCH_SIZE=small|full, BENCH_FLOOR_N, BENCH_PRODUCT_N,
BENCH_REPEATS, BENCH_CONCURRENCY, BENCH_OPEN_TARGET, BENCH_OPEN_SECONDS, BENCH_OPEN_INFLIGHT,
BENCH_SIGNALS, BENCH_SIGNAL_RATE, BENCH_FANOUT_SECONDS, BENCH_SKIP (comma list of phases to skip:
open,signals,fanout,lifecycles).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import worker as product_worker
from activities.db import create_pool
from bench import phases
from bench.stack import ROOT, Stack
from domain import logs
from starter.connection import Settings, connect

SIZES: dict[str, dict[str, float]] = {
    "small": {"FLOOR_N": 100, "PRODUCT_N": 40, "REPEATS": 3, "CONCURRENCY": 100, "OPEN_TARGET": 1000,
              "OPEN_SECONDS": 20, "OPEN_INFLIGHT": 200, "SIGNALS": 50, "SIGNAL_RATE": 20, "FANOUT_SECONDS": 120},
    "full": {"FLOOR_N": 500, "PRODUCT_N": 200, "REPEATS": 3, "CONCURRENCY": 100, "OPEN_TARGET": 100_000,
             "OPEN_SECONDS": 1200, "OPEN_INFLIGHT": 400, "SIGNALS": 200, "SIGNAL_RATE": 20, "FANOUT_SECONDS": 3000},
}


def config(size: str) -> dict[str, float]:
    base = dict(SIZES[size])
    for k in base:
        v = os.environ.get(f"BENCH_{k}")
        if v:
            base[k] = float(v)
    return base


def machine() -> dict[str, Any]:
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())
    mem_kb = next(int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines()
                  if ln.startswith("MemTotal"))
    return {"nproc": os.cpu_count(), "memory_gib": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "loadavg_start": os.getloadavg(), "python": platform.python_version()}


def median_run(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median (odd repeats), so its figures belong together."""
    ordered = sorted(runs, key=lambda r: r[key])
    return ordered[len(ordered) // 2]


async def run(size: str, out: Path, keep: bool) -> dict[str, Any]:
    cfg = config(size)
    skip = {s.strip() for s in os.environ.get("BENCH_SKIP", "").split(",") if s.strip()}
    result: dict[str, Any] = {"date": datetime.now(UTC).isoformat(timespec="seconds"), "size": size,
                              "config": cfg, "machine": machine(), "worker": "subprocess (python -m bench.worker)",
                              "persistence": "dev server SQLite file, journal_mode=wal, synchronous=normal",
                              "encryption": "on (AES-256-GCM codec in client and worker)"}
    stack = Stack(keep=keep)
    began = time.monotonic()
    try:
        log("starting the dev server and PostgreSQL in", stack.dir)
        await stack.start()
        result["precompiled"] = stack.precompile()
        result["sandbox_passthrough_experiment"] = os.environ.get("BENCH_SANDBOX_PASSTHROUGH") or None
        await stack.start_worker()
        client = await connect(stack.settings)
        pool = await create_pool(stack.database_url, max_size=5)
        result["memory_idle"] = stack.memory()
        conc = int(cfg["CONCURRENCY"])
        log("warm-up")
        await phases.floor(client, stack, 50, conc)
        await phases.product(client, stack, pool, 20, conc)
        floors, products = [], []
        for i in range(int(cfg["REPEATS"])):
            floors.append(await phases.floor(client, stack, int(cfg["FLOOR_N"]), conc))
            log(f"floor {i + 1}: {floors[-1]['workflows_per_s']} wf/s, {floors[-1]['state_transitions_per_s']} st/s")
            products.append(await phases.product(client, stack, pool, int(cfg["PRODUCT_N"]), conc))
            log(f"product {i + 1}: {products[-1]['lifecycles_per_s']} lc/s, "
                f"{products[-1]['state_transitions_per_s']} st/s")
        f = median_run(floors, "state_transitions_per_s")
        p = median_run(products, "state_transitions_per_s")
        result["floor"] = {"median": f, "runs": floors}
        result["product"] = {"median": p, "runs": products}
        result["ratio_state_transitions_per_s"] = round(p["state_transitions_per_s"] / f["state_transitions_per_s"], 3)
        result["ratio_per_repeat"] = [round(pp["state_transitions_per_s"] / ff["state_transitions_per_s"], 3)
                                      for ff, pp in zip(floors, products, strict=True)]
        result["ratio_events_per_s"] = round(p["events_per_s"] / f["events_per_s"], 3)
        log(f"ratio product/floor (state transitions/s): {result['ratio_state_transitions_per_s']}")
        if "lifecycles" not in skip:
            log("full lifecycles of each policy")
            lengths = await guarded(result, "lifecycles", phases.lifecycle_lengths(client)) or {}
            optivo = await guarded(result, "lifecycles_optivo", phases.optivo_full(stack, pool))
            if optivo:
                lengths["optivo"] = optivo
            lengths["bench-code Stage 1 only (the product phase)"] = {
                "history_events": p["one_lifecycle"]["events"], "state_transitions": p["transitions_per_workflow"],
                "activities": p["one_lifecycle"]["activities"],
                "activities_by_name": p["one_lifecycle"]["activities_by_name"]}
            result["lifecycles"] = lengths
        if "open" not in skip:
            log(f"opening cases: up to {int(cfg['OPEN_TARGET'])} within {cfg['OPEN_SECONDS']:.0f} s")
            opened = await guarded(result, "open_cases", phases.open_cases(
                client, stack, pool, int(cfg["OPEN_TARGET"]), cfg["OPEN_SECONDS"], int(cfg["OPEN_INFLIGHT"]),
                product_worker.cached_cases(Settings.from_env())))
            refs = opened.pop("references") if opened else []
            if opened:
                result["open_cases"] = opened
                log(f"open: {opened['open_and_acknowledged']} cases, {opened['opened_per_s']}/s")
            if "signals" not in skip and refs:
                sig = await guarded(result, "signal_latency", phases.signal_latency(
                    client, pool, refs, int(cfg["SIGNALS"]), cfg["SIGNAL_RATE"]))
                if sig:
                    result["signal_latency"] = sig
                    log(f"signals: p50 {sig['p50_ms']} ms, p99 {sig['p99_ms']} ms")
            if "fanout" not in skip and refs:
                fan = await guarded(result, "calendar_fan_out", phases.fan_out(client, stack, pool, cfg["FANOUT_SECONDS"]))
                if fan:
                    result["calendar_fan_out"] = fan
                    log(f"fan-out: {fan}")
            result["memory_end"] = stack.memory()
        await pool.close()
    finally:
        stack.stop()
    result["machine"]["loadavg_end"] = os.getloadavg()
    result["total_seconds"] = round(time.monotonic() - began, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    return result


async def guarded(result: dict[str, Any], name: str, coro: Any) -> Any:
    """Run one phase; a failure is recorded in the results (and printed), the run goes on."""
    try:
        return await coro
    except Exception as exc:
        result.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
        log(f"{name} failed: {type(exc).__name__}: {exc}")
        return None


def log(*parts: object) -> None:
    print("bench:", *parts, file=sys.stderr, flush=True)


def table(r: dict[str, Any]) -> str:
    m = r["machine"]
    lines = [f"make bench ({r['size']}) {r['date']}  ·  {m['nproc']} CPU {m['cpu']}, {m['memory_gib']} GiB  ·  "
             f"load {m['loadavg_start'][0]:.2f} -> {m['loadavg_end'][0]:.2f}  ·  worker: {r['worker']}",
             "", f"{'':38} {'per second':>12} {'state trans/s':>14} {'events/wf':>10} {'trans/wf':>9} {'n':>6}"]
    f, p = r["floor"]["median"], r["product"]["median"]
    lines.append(f"{'floor: trivial workflow + 1 activity':38} {f['workflows_per_s']:>9} wf {f['state_transitions_per_s']:>14} "
                 f"{f['events_per_workflow']:>10} {f['transitions_per_workflow']:>9} {f['n']:>6}")
    lines.append(f"{'product: Stage 1 lifecycle (bench-code)':38} {p['lifecycles_per_s']:>9} lc {p['state_transitions_per_s']:>14} "
                 f"{p['events_per_workflow']:>10} {p['transitions_per_workflow']:>9} {p['n']:>6}")
    lines.append(f"{'ratio product/floor (state trans/s)':38} {r['ratio_state_transitions_per_s']:>27}   "
                 f"(goal >= 0.8; per repeat {r['ratio_per_repeat']})")
    lines.append(f"{'ratio product/floor (history events/s)':38} {r['ratio_events_per_s']:>27}   "
                 f"(floor {f['events_per_s']} ev/s, product {p['events_per_s']} ev/s)")
    fc, pc = f["cpu"], p["cpu"]
    lines.append(f"  CPU cores used: floor server {fc['server_cores']} worker {fc['worker_cores']} postgres "
                 f"{fc['postgresql_cores']}; product server {pc['server_cores']} worker {pc['worker_cores']} "
                 f"postgres {pc['postgresql_cores']}")
    lines.append(f"  medians of {len(r['floor']['runs'])} repeats; floor wf/s {[x['workflows_per_s'] for x in r['floor']['runs']]}, "
                 f"product lc/s {[x['lifecycles_per_s'] for x in r['product']['runs']]}")
    o = r.get("open_cases")
    if o:
        mem = o["memory_after"]
        lines += ["", f"open cases (hos-code-2024): {o['open_and_acknowledged']} open of {o['started']} started "
                  f"in {o['start_seconds']} s (budget {o['budget_s']:.0f} s, target {o['target']}); "
                  f"{o['starts_per_s']} starts/s, {o['opened_per_s']} opened/s; 20,000 reached: {o['reached_20000']}",
                  f"  resident memory: dev server {mem['temporal_dev_server']['rss_mb']} MB, worker "
                  f"{mem['worker']['rss_mb']} MB, PostgreSQL {mem['postgresql']['rss_mb']} MB RSS summed over "
                  f"{mem['postgresql']['processes']} processes ({mem['postgresql']['pss_mb']} MB PSS)",
                  f"  worker: {o['worker_cached_workflows']} cached workflows (cache holds "
                  f"{o['worker_cache_capacity']}), {o['worker_kb_per_cached_case']} KB RSS per cached case while it "
                  f"filled, peak RSS {o['worker_rss_peak_mb']} MB"]
    s = r.get("signal_latency")
    if s:
        lines.append(f"signal latency (record_contact -> contacts row), {s['signals']} signals at {s['rate_per_s']:.0f}/s "
                     f"with the cases open: p50 {s['p50_ms']} ms, " + (f"p90 {s['p90_ms']} ms, " if "p90_ms" in s else "")
                     + f"p99 {s['p99_ms']} ms, max {s['max_ms']} ms")
    c = r.get("calendar_fan_out")
    if c and "skipped" not in c:
        took = (f"in {c['all_moved_s']} s" if c["all_moved_s"] is not None
                else f"before the {r['config']['FANOUT_SECONDS']:.0f} s budget ran out (NOT all moved)")
        lines.append(f"calendar fan-out (bank holiday {c['holiday']}): {c['moved']}/{c['open_cases']} cases moved {took} "
                     f"(signals sent in {c['signals_sent_s']} s; {c['cases_per_s']} cases/s)")
    lc = r.get("lifecycles")
    if lc:
        lines += ["", f"{'full lifecycle':52} {'events':>7} {'trans':>6} {'activities':>10}"]
        for name, v in lc.items():
            trans = v["state_transitions"] or "n/a"
            lines.append(f"{name:52} {v['history_events']:>7} {trans:>6} {v['activities']:>10}")
        lines.append("  (Temporal's limit: 51,200 events)")
    for name, err in r.get("errors", {}).items():
        lines.append(f"ERROR in {name}: {err}")
    lines.append(f"\ntotal {r['total_seconds']} s")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default=os.environ.get("BENCH_SIZE") or "full")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, databases)")
    args = parser.parse_args()
    logs.configure("WARNING", False)  # the in-process optivo worker's activities would log every letter
    result = asyncio.run(run(args.size, args.out, args.keep))
    print(table(result))
    print(f"\nJSON: {args.out}")
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
