"""Every benchmark, one after the other, as `make bench` runs them; then bench-results/summary.json and summary.md:
the machine, how long each step took, and every target with its figure and verdict.

    python scripts/bench/run_all.py [--quick] [--out bench-results]

`--quick` runs each at a small size, to check that the scripts work (its figures mean little). A step that fails
is reported as failed; the others still run.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

from common import machine, machine_line  # noqa: E402

STEPS = [
    ("decision-bench", "decision_bench.py", ["--patients", "20000", "--seconds", "8", "--levels", "16"],
     ["--patients", "1000", "--seconds", "2", "--levels", "4"]),
    ("surge-bench", "surge_bench.py", [],
     ["--patients", "2000", "--prescribers", "100", "--pharmacies", "50", "--seconds", "10", "--dispense-rate", "20",
      "--prescription-rate", "5", "--page-rate", "5", "--page-users", "10"]),
    ("decision-profile", "profile_decision.py", ["--requests", "200"], ["--requests", "30"]),
    ("history-bench", "history_bench.py", ["--small", "10000", "--large", "1000000", "--samples", "50"],
     ["--small", "1000", "--large", "5000", "--samples", "5"]),
    ("sweep-bench", "sweep_bench.py", ["--sizes", "100000,1000000", "--repeat", "5", "--plan-max", "100000"],
     ["--sizes", "2000,10000", "--repeat", "2", "--plan-max", "2000"]),
    ("log-bench", "log_bench.py", ["--entries", "1000000"], ["--entries", "20000"]),
]


def _targets(out):
    """(target, figure, verdict) of every result found in `out`."""
    rows = []

    def load(name):
        path = out / f"{name}.json"
        return json.loads(path.read_text()) if path.exists() else None

    decisions = load("decision-bench")
    if decisions:
        for t in decisions["targets"]:
            rows.append((f"{t['what']}: at least {t['target']} ({t['at_connections']} connections)", t["share"],
                         t["verdict"]))
    surge = load("surge-bench")
    if surge:
        for name, t in surge["targets"].items():
            rows.append((f"surge at {surge['offered_per_second']['dispense decision']:g} dispense decisions/s for "
                         f"{surge['seconds']:g} s: {name}", t.get("measured_ms", t.get("measured")), t["verdict"]))
    sweep = load("sweep-bench")
    if sweep and sweep["sizes"]:
        largest = sweep["sizes"][-1]
        runs = largest["runs"]
        under = sum(1 for r in runs if r["seconds"] < 60)
        slowest = max(r["seconds"] for r in runs)
        peak = max(r["peak_rss_mib"] for r in runs)
        verdict = "met" if under == len(runs) else (
            f"missed: {len(runs) - under} of {len(runs)} over 60 s, the slowest by {slowest / 60 - 1:.0%}")
        rows.append((f"expiring {largest['size']:,} due authorizations under 60 s in every run",
                     f"{under} of {len(runs)} runs under 60 s; {', '.join(str(r['seconds']) for r in runs)} s; "
                     f"peak {peak} MiB", verdict if largest["size"] >= 1_000_000 else "not at 1,000,000"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    parser.add_argument("--only", default="", help="comma-separated step names")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from serve import _admin_and_bench_urls

    described = machine(_admin_and_bench_urls("postgres")[0])
    steps = []
    for name, script, full, quick in STEPS:
        if args.only and name not in args.only.split(","):
            continue
        begun = time.perf_counter()
        print(f"[bench] {name}", flush=True)
        result = subprocess.run([sys.executable, str(HERE / script), *(quick if args.quick else full), "--out", str(out)],
                                cwd=ROOT)
        steps.append({"step": name, "seconds": round(time.perf_counter() - begun, 1), "exit": result.returncode})
    total = round(time.perf_counter() - started, 1)
    rows = _targets(out)
    rows.append(("`make bench` under 15 minutes", f"{total / 60:.1f} min",
                 "met" if total < 15 * 60 else f"missed by {total / (15 * 60) - 1:.0%}"))
    summary = {"machine": described, "quick": args.quick, "total_seconds": total, "steps": steps,
               "targets": [{"target": t, "measured": m, "verdict": v} for t, m, v in rows]}
    lines = [f"`make bench`{' --quick' if args.quick else ''} on {time.strftime('%Y-%m-%d')}: {total / 60:.1f} minutes. "
             f"Machine: {machine_line(described)}", "", "| target | measured | |", "|---|---|---|"]
    lines += [f"| {t} | {m} | {v} |" for t, m, v in rows]
    lines += ["", "| step | seconds | exit status |", "|---|---|---|"]
    lines += [f"| {s['step']} | {s['seconds']} | {s['exit']} |" for s in steps]
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    (out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines), flush=True)
    sys.exit(1 if any(s["exit"] for s in steps) else 0)


if __name__ == "__main__":
    main()
