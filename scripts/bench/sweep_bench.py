"""Benchmark of the periodic sweeps: expiring N due prescription authorizations, and planning the reminders of
N patients in therapy, each in a fresh process whose peak memory is read from the kernel; then the same sweep
again, which must find nothing to do.

For each size the filled database is built once, vacuumed and analyzed (as autovacuum would soon after such a
load), and kept as a template; each run of the expiry gets a database of its own copied from it (`CREATE DATABASE
... TEMPLATE ... STRATEGY FILE_COPY`), so that every run starts from the same state: the same due authorizations,
the same indexes, the same compliance log. At the largest size the expiry is run `--repeat` times that way.

    python scripts/bench/sweep_bench.py [--sizes 100000,1000000] [--repeat 5] [--plan-max 100000] [--out bench-results]

Uses its own databases on the server of DATABASE_URL: `rems_bench_sweep_template` (the filled database) and
`rems_bench_sweep` (each run's copy), dropped and created anew for each size and run.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, machine_line, serving_env  # noqa: E402
from serve import _admin_and_bench_urls, database_create, database_drop  # noqa: E402

DB = "rems_bench_sweep"
TEMPLATE = "rems_bench_sweep_template"


def _child(code, url, serving=False):
    """Run `code` in a fresh interpreter set up for the bench database; it prints one JSON object. `serving`: with
    the limits on database waits of a serving process (the periodic task runs in a Celery worker)."""
    prelude = f"""
import json, os, resource, sys, time
sys.path.insert(0, {str(ROOT)!r})
os.environ.update(DATABASE_URL={url!r}, REMS_ENV='development', LOG_LEVEL='WARNING',
                  DJANGO_SETTINGS_MODULE='rems.config.settings')
import django; django.setup()
from django.utils import timezone
"""
    result = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True, timeout=7200,
                            env=serving_env() if serving else None)
    if result.returncode:
        raise RuntimeError(result.stderr[-3000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def _copy(template, name):
    """A database `name` copied from `template` file by file (the template has no connection: each child process
    that used it has ended); returns its URL and the seconds the copy took."""
    import psycopg

    admin_url, url = _admin_and_bench_urls(name)
    started = time.perf_counter()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {template} STRATEGY FILE_COPY")
    return url, round(time.perf_counter() - started, 1)


SETUP = """
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
call_command("seed_demo", "--json", stdout=open(os.devnull, "w"))
n = int(sys.argv[1]) if len(sys.argv) > 1 else N
with connection.cursor() as c:
    # The rows are built from rows that exist (the program, the prescriber, the product, the patients just
    # inserted): the foreign-key triggers are skipped for the fill, as pg_restore does, two million lookups that
    # can only succeed.
    c.execute("SET session_replication_role = replica")
    c.execute("SELECT id FROM rems_prescriber LIMIT 1"); prescriber = c.fetchone()[0]
    c.execute("SELECT id FROM rems_program WHERE slug = 'pomalidomide'"); program = c.fetchone()[0]
    c.execute("SELECT id FROM rems_product WHERE ndc = '59572-0504-21'"); product = c.fetchone()[0]
    started = time.perf_counter()
    c.execute('''
      INSERT INTO rems_patient (id, program_id, prescriber_id, first_name, last_name, date_of_birth, risk_category,
        agreement_signed_on, irregular_cycles, status, status_reason, enrolled_at, status_changed_at, therapy_started_at)
      SELECT gen_random_uuid(), %s, %s, 'Bench', 'Patient' || g, DATE '1970-01-01' + (g %% 9000), 'FNRP_ADULT',
             DATE '2025-06-01', false, 'active', '', now() - interval '200 days', now() - interval '200 days',
             now() - interval '7 days' - make_interval(secs => g %% 43200)
        FROM generate_series(1, %s) g''', [program, prescriber, n])
    c.execute('''
      INSERT INTO dispensing_prescription (id, authorization_number, patient_id, prescriber_id, program_id,
        product_id, quantity, days_supply, risk_category, rule_set, status, issued_at, expires_at,
        status_changed_at, status_reason, decision_id)
      SELECT gen_random_uuid(), 'P' || lpad(row_number() OVER ()::text, 11, '0'), p.id, p.prescriber_id, p.program_id,
             %s, 21, 28, 'FNRP_ADULT', 'pomalidomide@2025-01-01', 'issued', now() - interval '31 days',
             now() - interval '1 day', now() - interval '31 days', '', gen_random_uuid()
        FROM rems_patient p WHERE p.first_name = 'Bench' ''', [product])
    c.execute("RESET session_replication_role")
filled = time.perf_counter() - started
# As autovacuum would do soon after such a load: the planner knows how many rows there are, and the rows' hint
# bits and the visibility map are set once here rather than by whichever run reads them first.
connection.ensure_connection()
connection.connection.autocommit = True
with connection.cursor() as c:
    c.execute("VACUUM ANALYZE")
print(json.dumps({"rows": n, "seconds": round(filled, 1),
                  "vacuum_seconds": round(time.perf_counter() - started - filled, 1)}))
"""

EXPIRE = """
from django.conf import settings
from dispensing.sweeps import expire_lapsed
started = time.perf_counter()
# as the periodic task runs it
counts = expire_lapsed(now=timezone.now(), workers=settings.REMS_SWEEP_WORKERS)
elapsed = time.perf_counter() - started
print(json.dumps({"expired": counts["prescriptions"], "workers": settings.REMS_SWEEP_WORKERS,
                  "seconds": round(elapsed, 1),
                  "per_second": round(counts["prescriptions"] / elapsed) if counts["prescriptions"] else 0,
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""

PLAN = """
from dispensing.reminders import plan_patient_reminders
started = time.perf_counter()
counts = plan_patient_reminders(now=timezone.now())
elapsed = time.perf_counter() - started
print(json.dumps({"created": sum(counts.values()), "by_kind": counts, "seconds": round(elapsed, 1),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--repeat", type=int, default=5, help="runs of the expiry at the largest size")
    parser.add_argument("--plan-max", type=int, default=100_000,
                        help="plan reminders only for sizes up to this (the target is 100,000 patients)")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {"machine": None, "sizes": []}
    for size in sizes:
        template_url = database_create(TEMPLATE)
        results["machine"] = results["machine"] or machine(template_url)
        setup = _child(f"N = {size}\n" + SETUP, template_url)
        print(json.dumps({"size": size, "setup": setup}), flush=True)
        runs = args.repeat if size == max(sizes) else 1
        repeats = []
        for run in range(runs):
            url, copy_seconds = _copy(TEMPLATE, DB)
            repeats.append({**_child(EXPIRE, url, serving=True), "copy_seconds": copy_seconds})
            print(json.dumps(repeats[-1]), flush=True)
            if run == 0:
                again = _child(EXPIRE, url, serving=True)
                skipped = {"created": None, "seconds": None, "peak_rss_mib": None}
                plan = _child(PLAN, url) if size <= args.plan_max else skipped
                plan_again = _child(PLAN, url) if size <= args.plan_max else skipped
            database_drop(DB)
        database_drop(TEMPLATE)
        row = {"size": size, "setup": setup, "expire": repeats[0], "expire_again": again, "runs": repeats,
               "plan": plan, "plan_again": plan_again}
        results["sizes"].append(row)
        print(json.dumps(row), flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep-bench.json").write_text(json.dumps(results, indent=2))
    lines = ["| due authorizations | expired | seconds | per second | peak RSS (MiB) | second run expired |",
             "|---|---|---|---|---|---|"]
    for r in results["sizes"]:
        e = r["expire"]
        lines.append(f"| {r['size']} | {e['expired']} | {e['seconds']} | {e['per_second']} | {e['peak_rss_mib']} | "
                     f"{r['expire_again']['expired']} |")
    lines += ["", "| patients in therapy | reminders created | seconds | peak RSS (MiB) | second run created |",
              "|---|---|---|---|---|"]
    for r in results["sizes"]:
        p = r["plan"]
        if p["created"] is None:
            continue
        lines.append(f"| {r['size']} | {p['created']} | {p['seconds']} | {p['peak_rss_mib']} | "
                     f"{r['plan_again']['created']} |")
    largest = results["sizes"][-1]
    runs = largest["runs"]
    under = sum(1 for r in runs if r["seconds"] < 60)
    lines += ["", f"Expiring {largest['size']:,} due authorizations, {len(runs)} runs:", "",
              "| run | expired | seconds | per second | peak RSS (MiB) |", "|---|---|---|---|---|"]
    lines += [f"| {i} | {r['expired']:,} | {r['seconds']} | {r['per_second']:,} | {r['peak_rss_mib']} |"
              for i, r in enumerate(runs, 1)]
    if largest["size"] >= 1_000_000:
        slowest = max(r["seconds"] for r in runs)
        verdict = ("met" if under == len(runs) else
                   f"missed: {len(runs) - under} of {len(runs)} runs over 60 s, the slowest by {slowest / 60 - 1:.0%}")
        lines += ["", f"Target, under 60 s in every run: {under} of {len(runs)} under 60 s, slowest {slowest} s "
                      f"({verdict})."]
    lines = [f"Machine: {machine_line(results['machine'])}", ""] + lines
    markdown = "\n".join(lines) + "\n"
    (out / "sweep-bench.md").write_text(markdown)
    print(markdown)


if __name__ == "__main__":
    main()
