"""Benchmark of the compliance log: append cost under concurrent writers for one chain against one chain per
transaction (16), verification rate, and the CSV export's rate and peak memory.

    python scripts/bench/log_bench.py [--entries 1000000] [--out bench-results]

Uses its own database, `rems_bench`, on the server of DATABASE_URL (default postgresql://postgres@127.0.0.1:5432),
dropped and created anew, and its own checkpoint store and signing key in a temporary directory. The log to verify
and export is written through the real insert trigger, 5,000 entries a transaction on two connections. Writes
log-bench.json and log-bench.md to --out and prints the Markdown.
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import common  # noqa: E402,F401  (the limits on waits lifted for this process)
from serve import database_create, database_drop  # noqa: E402


def _setup_django(url):
    os.environ["DATABASE_URL"] = url
    # The verification compares the log with the checkpoints and writes the next one: this throwaway database's
    # checkpoints and key are its own, in a directory that goes with it, never those of `make run` (.local/), which
    # a log built anew would contradict.
    state = Path(tempfile.mkdtemp(prefix="rems-log-bench-"))
    os.environ["LOG_CHECKPOINT_DIR"] = str(state / "checkpoints")
    os.environ["LOG_CHECKPOINT_KEY_FILE"] = str(state / "checkpoint-key.pem")
    os.environ.pop("LOG_CHECKPOINT_S3_BUCKET", None)
    os.environ["REMS_ENV"] = "development"
    os.environ["LOG_LEVEL"] = "WARNING"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "rems.config.settings")
    import django

    django.setup()


SAMPLE_CHECKS = json.dumps([
    {"code": code, "passed": True, "message": f"{code.replace('_', ' ').capitalize()} holds for this decision."}
    for code in ("RULE_SET_IN_FORCE", "PRESCRIBER_CERTIFIED", "PATIENT_ENROLLED", "RISK_CATEGORY_AGREEMENT",
                 "RISK_CATEGORY_AGE", "PRODUCT_IN_PROGRAM", "DAYS_SUPPLY_LIMIT", "QUANTITY_LIMIT",
                 "ONE_OPEN_PRESCRIPTION", "NEXT_FILL_TIMING", "CONTRACEPTION_ATTESTED", "CONTRACEPTION_METHODS",
                 "CONTRACEPTION_STARTED", "PREGNANCY_TEST_FIRST", "PREGNANCY_TEST_SECOND",
                 "PREGNANCY_TEST_NEGATIVE", "PREGNANCY_TEST_RECENT", "SURVEY_COMPLETED")
])
SAMPLE_FACTS = json.dumps({
    "patient": {"status": "active", "risk_category": "FRP_ADULT", "irregular_cycles": False},
    "history": {"tests": [{"collected_at": "2026-11-13T08:00:00Z", "result": "negative", "sensitivity_miu_ml": 25}]},
    "prescriber_certification": {"status": "active", "expires_at": "2028-01-01T00:00:00Z"},
})


FILL_BATCH, FILL_WRITERS = 5000, 2


def _fill(entries, batch, writers):
    """Insert entries through the log's own set-based writer and the real trigger: decisions, one in five denied,
    in transactions of `batch` rows, on `writers` connections at once (as the sweep writes its entries; each
    transaction appends to its own chain). Returns the seconds it took."""
    from django.db import connection as main_connection

    from rems.compliance_log.actions import Action
    from rems.compliance_log.writer import log_insert_params, log_insert_sql

    sql = log_insert_sql(
        action=Action.PRESCRIPTION_AUTHORIZE, source="FROM generate_series(%(first)s, %(last)s) g",
        expressions={
            "occurred_at": "now() - make_interval(secs => %(entries)s - g)",
            "outcome": "CASE WHEN g %% 5 = 0 THEN 'denied' ELSE 'approved' END", "program": "'pomalidomide'",
            "object_type": "'prescription'", "object_id": "g::text", "patient_id": "gen_random_uuid()",
            "prescriber_id": "gen_random_uuid()", "rule_set": "'pomalidomide@2025-01-01'",
            "checks": "%(checks)s::jsonb", "facts": "%(facts)s::jsonb",
        },
    )
    main_connection.close()
    ranges = [(first, min(first + batch - 1, entries)) for first in range(1, entries + 1, batch)]
    errors = []

    def writer(mine):
        from django.db import connection, transaction

        try:
            for first, last in mine:
                with transaction.atomic(), connection.cursor() as cursor:
                    cursor.execute(sql, {**log_insert_params(), "entries": entries, "checks": SAMPLE_CHECKS,
                                         "facts": SAMPLE_FACTS, "first": first, "last": last})
        except Exception as exc:  # noqa: BLE001 - raised below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=writer, args=(ranges[i::writers],)) for i in range(writers)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def _append_throughput(threads, per_thread):
    """Concurrent writers, each transaction appending one entry (as a decision does)."""
    from django.db import connection as main_connection
    from django.db import transaction
    from django.utils import timezone

    from rems.compliance_log.actions import Action
    from rems.compliance_log.writer import log_entry_write

    main_connection.close()
    barrier = threading.Barrier(threads)
    errors = []

    def writer():
        from django.db import connection

        try:
            barrier.wait()
            for i in range(per_thread):
                with transaction.atomic():
                    log_entry_write(actor=None, action=Action.PRESCRIPTION_AUTHORIZE, outcome="approved",
                                    object_type="prescription", object_id=i, now=timezone.now(),
                                    checks=json.loads(SAMPLE_CHECKS))
        except Exception as exc:  # noqa: BLE001 - reported in the results
            errors.append(repr(exc))
        finally:
            connection.close()

    pool = [threading.Thread(target=writer) for _ in range(threads)]
    started = time.perf_counter()
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    elapsed = time.perf_counter() - started
    return {"threads": threads, "appends": threads * per_thread, "seconds": round(elapsed, 3),
            "appends_per_second": round(threads * per_thread / elapsed), "errors": errors[:3]}


def _set_chains(chains):
    """The log's functions as the migrations install them (version 4), with `chains` chains instead of
    `CHAINS`; `_set_chains(CHAINS)` puts back exactly the functions of the migrations."""
    from django.db import connection

    from rems.compliance_log import sql as log_sql

    functions = log_sql.APPEND_FUNCTION_V4
    marker = f"% {log_sql.CHAINS})"
    assert functions.count(marker) == 2, "the chain count's place in the append functions has moved"
    with connection.cursor() as cursor:
        cursor.execute(functions.replace(marker, f"% {chains})"))


def _export_child(token_file, query):
    """Stream the CSV export through the real view in a child process and report its peak memory."""
    code = f"""
import os, resource, sys, time, json
sys.path.insert(0, {str(ROOT)!r})
os.environ.update(DATABASE_URL={os.environ['DATABASE_URL']!r}, REMS_ENV='development', LOG_LEVEL='WARNING',
                  DJANGO_SETTINGS_MODULE='rems.config.settings')
import django; django.setup()
from django.test import Client
token = open({str(token_file)!r}).read().strip()
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
started = time.perf_counter()
response = Client().get('/api/v1/audit-events/export.csv{query}', HTTP_AUTHORIZATION='Token ' + token)
size = rows = 0
for chunk in response.streaming_content:
    size += len(chunk); rows += chunk.count(b'\\n')
elapsed = time.perf_counter() - started
print(json.dumps({{"rows": rows - 1, "bytes": size, "seconds": round(elapsed, 2),
                  "rss_before_mib": round(before / 1024, 1),
                  "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}}))
"""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=1800)
    if result.returncode:
        raise RuntimeError(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    bench_url = database_create("rems_bench")
    _setup_django(bench_url)
    from django.core.management import call_command
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Role
    from accounts.services import api_key_issue, user_create
    from rems.compliance_log.verify import log_verify

    call_command("migrate", verbosity=0)
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()}}
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        results["machine"]["postgresql"] = cursor.fetchone()[0]
        mem = Path("/proc/meminfo").read_text().split("\n")[0] if Path("/proc/meminfo").exists() else ""
        results["machine"]["memory"] = mem.split(":")[-1].strip()

    # 1. Append cost under concurrent writers: one chain for the whole log against one chain per transaction.
    appends = []
    for chains in (1, 16):
        _set_chains(chains)
        for threads in (1, 4, 16):
            row = _append_throughput(threads, per_thread=max(50, 1600 // threads))
            row["chains"] = chains
            appends.append(row)
            print(f"append: chains={chains} threads={threads}: {row['appends_per_second']}/s", flush=True)
            if row["errors"]:  # a writer that failed stopped early: its rate would be no rate at all
                raise RuntimeError(f"append: chains={chains} threads={threads}: {row['errors']}")
    from rems.compliance_log.sql import CHAINS

    _set_chains(CHAINS)
    results["append"] = appends

    # 2. A log of the size asked for, written through the trigger.
    fill_seconds = _fill(args.entries, batch=FILL_BATCH, writers=FILL_WRITERS)
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM rems_compliancelogentry")
        total = cursor.fetchone()[0]
    results["fill"] = {"entries": total, "seconds": round(fill_seconds, 1), "batch": FILL_BATCH,
                       "writers": FILL_WRITERS, "entries_per_second": round(args.entries / fill_seconds)}
    print(f"filled {total} entries in {fill_seconds:.1f} s", flush=True)

    # 3. Verification of the whole log.
    started = time.perf_counter()
    verification = log_verify()
    seconds = time.perf_counter() - started
    results["verify"] = {"entries": verification.entries_checked, "ok": verification.ok, "seconds": round(seconds, 2),
                         "entries_per_second": round(verification.entries_checked / seconds)}
    print(f"verified {verification.entries_checked} entries in {seconds:.1f} s: ok={verification.ok}", flush=True)

    # 4. CSV export through the API: a tenth of the log and all of it; flat memory means the same peak.
    auditor = user_create(actor=None, username="bench-auditor", role=Role.AUDITOR, now=timezone.now())
    token_file = Path(args.out) / ".bench-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(api_key_issue(actor=None, user=auditor, now=timezone.now())[1])
    cutoff = timezone.now() - timezone.timedelta(seconds=args.entries // 10)
    results["export_csv"] = [
        _export_child(token_file, "?occurred_after=" + urllib.parse.quote(cutoff.isoformat())),
        _export_child(token_file, ""),
    ]
    token_file.unlink()
    for row in results["export_csv"]:
        print(f"export: {row['rows']} rows in {row['seconds']} s, peak RSS {row['peak_rss_mib']} MiB", flush=True)

    out = Path(args.out)
    (out / "log-bench.json").write_text(json.dumps(results, indent=2))
    markdown = _markdown(results)
    (out / "log-bench.md").write_text(markdown)
    print(markdown)
    connection.close()
    database_drop("rems_bench")
    shutil.rmtree(Path(os.environ["LOG_CHECKPOINT_DIR"]).parent, ignore_errors=True)


def _markdown(r):
    m = r["machine"]
    lines = [
        f"Machine: {m['cpus']} CPUs, {m['memory']} memory, {m['platform']}, Python {m['python']}, "
        f"PostgreSQL {m['postgresql']}.", "",
        "| chains | writer threads | appends | appends/s |", "|---|---|---|---|",
    ]
    lines += [f"| {a['chains']} | {a['threads']} | {a['appends']} | {a['appends_per_second']} |" for a in r["append"]]
    v, f = r["verify"], r["fill"]
    lines += ["", f"Fill: {f['entries']} entries through the insert trigger in {f['seconds']} s "
                  f"({f['entries_per_second']}/s; {f['batch']:,} a transaction on {f['writers']} connections).",
              f"Verification: {v['entries']} entries in {v['seconds']} s ({v['entries_per_second']}/s), ok={v['ok']} "
              f"(target for 1,000,000 entries: under 60 s).",
              "", "| CSV export rows | seconds | rows/s | peak RSS (MiB) |", "|---|---|---|---|"]
    lines += [f"| {e['rows']} | {e['seconds']} | {round(e['rows'] / max(e['seconds'], 0.001))} | {e['peak_rss_mib']} |"
              for e in r["export_csv"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
