#!/usr/bin/env python3
"""Per-kernel summary of an Nsight Compute report (tools/gpu-check's ncu_kernels step).

Input: `ncu --import REPORT --csv --page raw` output (one row per kernel launch, after a header row and a units
row). Kernels are grouped by name without their parameter list (template arguments kept: they name the path,
e.g. dwconv_ln_kernel<4, __nv_bfloat16>). Per kernel: launches, device time (gpu__time_duration, each launch
replayed alone by ncu, so it is the kernel's own time, not its share of an overlapped run), share of the program's
kernel time, and time-weighted means of the SM throughput, the memory throughput (the larger of DRAM, L2 and L1
as a share of their peaks) and the warps active per cycle as a share of the maximum (occupancy). A kernel far below
both throughputs at high time share is latency or occupancy bound: the first thing to rework.

Prints a table (stderr) and one JSON line per kernel among the top N by time (stdout, for results.jsonl).
Usage: ncu_summary.py CSV PROGRAM [TOP]
"""
import csv
import json
import re
import sys

METRICS = {
    "time": "gpu__time_duration.sum",
    "sm": "sm__throughput.avg.pct_of_peak_sustained_elapsed",
    "mem": "gpu__compute_memory_throughput.avg.pct_of_peak_sustained_elapsed",
    "warps": "sm__warps_active.avg.pct_of_peak_sustained_active",
}
TIME_SCALE = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3, "second": 1e6}  # -> microseconds


def short_name(name):
    name = re.sub(r"^void ", "", name.strip())
    depth, out = 0, []
    for ch in name:  # drop the parameter list "(...)", keep template arguments "<...>"
        if ch == "(" and depth == 0:
            break
        depth += ch == "<"
        depth -= ch == ">"
        out.append(ch)
    return "".join(out).strip()


def number(s):
    try:
        return float(s.replace(",", ""))
    except (AttributeError, ValueError):
        return None


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, program = sys.argv[1], sys.argv[2]
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 10
    lines = [l for l in open(path, newline="") if not l.startswith("==")]  # ncu's own messages
    rows = list(csv.reader(lines))
    if not rows:
        sys.exit(f"{path}: no CSV rows (did ncu profile anything?)")
    head = rows[0]
    col = {k: head.index(m) for k, m in METRICS.items() if m in head}
    if "time" not in col or "Kernel Name" not in head:
        sys.exit(f"{path}: no '{METRICS['time']}' or 'Kernel Name' column: {head[:12]}")
    kname = head.index("Kernel Name")
    units = rows[1] if len(rows) > 1 and number(rows[1][col["time"]]) is None else None
    scale = TIME_SCALE.get(units[col["time"]], 1e-3) if units else 1e-3
    agg = {}
    for r in rows[2 if units else 1:]:
        if len(r) <= max(col.values()) or number(r[col["time"]]) is None:
            continue
        t = number(r[col["time"]]) * scale
        a = agg.setdefault(short_name(r[kname]), {"calls": 0, "us": 0.0, "sm": 0.0, "mem": 0.0, "warps": 0.0})
        a["calls"] += 1
        a["us"] += t
        for k in ("sm", "mem", "warps"):
            v = number(r[col[k]]) if k in col else None
            a[k] += t * (v or 0.0)
    total = sum(a["us"] for a in agg.values())
    if total <= 0:
        sys.exit(f"{path}: no kernel time")
    order = sorted(agg.items(), key=lambda kv: -kv[1]["us"])
    print(f"{program}: {sum(a['calls'] for a in agg.values())} launches, {total / 1e3:.3f} ms of kernel time, "
          f"{len(agg)} kernels", file=sys.stderr)
    print(f"  {'share':>6} {'ms':>8} {'calls':>6} {'us/call':>8} {'SM %':>5} {'mem %':>5} {'warps %':>7}  kernel",
          file=sys.stderr)
    for i, (name, a) in enumerate(order):
        sm, mem, warps = (a[k] / a["us"] if a["us"] else 0.0 for k in ("sm", "mem", "warps"))
        print(f"  {100 * a['us'] / total:5.1f}% {a['us'] / 1e3:8.3f} {a['calls']:6d} {a['us'] / a['calls']:8.1f} "
              f"{sm:5.1f} {mem:5.1f} {warps:7.1f}  {name}", file=sys.stderr)
        if i < top:
            print(json.dumps({"bench": "ncu_kernel", "program": program, "kernel": name[:80], "calls": a["calls"],
                              "share_pct": round(100 * a["us"] / total, 1), "us_per_call": round(a["us"] / a["calls"], 1),
                              "sm_pct": round(sm, 1), "mem_pct": round(mem, 1), "warps_pct": round(warps, 1)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
