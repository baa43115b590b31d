"""A mixed load test with locust (headless): prescriber offices, pharmacies and auditors in realistic
proportions against the service run as in production on loopback. Reports errors (there must be none) and
latency per request kind.

    python scripts/bench/load_test.py [--users 30] [--minutes 3] [--out bench-results]

Uses its own database, `rems_bench_load`, on the server of DATABASE_URL, dropped and created anew.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DB = "rems_bench_load"
sys.path.insert(0, str(HERE))

from serve import database_create, database_drop, free_port, production_server  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=30)
    parser.add_argument("--minutes", type=float, default=3)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    url = database_create(DB)
    env = {**os.environ, "DATABASE_URL": url, "REMS_ENV": "development", "LOG_LEVEL": "WARNING"}
    python = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*python, "migrate", "-v", "0"], cwd=ROOT, env=env, check=True, capture_output=True)
    seed = json.loads(subprocess.run([*python, "seed_demo", "--json"], cwd=ROOT, env=env, check=True,
                                     capture_output=True, text=True).stdout)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    prefix = out / "load"
    port = free_port()
    with production_server(url, port) as workers:
        run = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless", "--users",
             str(args.users), "--spawn-rate", str(max(1, args.users // 10)), "--run-time", f"{int(args.minutes * 60)}s",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
            cwd=ROOT, env={**os.environ, "REMS_BENCH_TOKENS": json.dumps(seed["tokens"])}, capture_output=True,
            text=True, timeout=int(args.minutes * 60) + 300,
        )
    rows = list(csv.DictReader(open(f"{prefix}_stats.csv")))
    failures = list(csv.DictReader(open(f"{prefix}_failures.csv")))
    total = next(r for r in rows if r["Name"] == "Aggregated")
    results = {
        "users": args.users, "minutes": args.minutes, "gunicorn_workers": workers, "cpus": os.cpu_count(),
        "requests": int(total["Request Count"]), "failures": int(total["Failure Count"]),
        "per_second": round(float(total["Requests/s"]), 1),
        "by_kind": [{"name": r["Name"], "requests": int(r["Request Count"]), "failures": int(r["Failure Count"]),
                     "p50_ms": r["50%"], "p99_ms": r["99%"]} for r in rows if r["Name"] != "Aggregated"],
        "failure_samples": failures[:5], "locust_exit": run.returncode,
    }
    (out / "load-test.json").write_text(json.dumps(results, indent=2))
    lines = [f"{args.users} users for {args.minutes} minutes ({results['cpus']} CPUs, gunicorn with {workers} "
             f"workers): {results['requests']} requests, {results['failures']} failures, "
             f"{results['per_second']} requests/s.", "",
             "| request | count | failures | p50 ms | p99 ms |", "|---|---|---|---|---|"]
    lines += [f"| {k['name']} | {k['requests']} | {k['failures']} | {k['p50_ms']} | {k['p99_ms']} |"
              for k in results["by_kind"]]
    markdown = "\n".join(lines) + "\n"
    (out / "load-test.md").write_text(markdown)
    print(markdown)
    database_drop(DB)
    if results["failures"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
