"""Does a decision cost more for a long history or a large table? The prescription and dispense decisions
(the services, in process) for FRP patients with 2 pregnancy tests and with 500, with 10,000 and then
1,000,000 patients in the tables: queries and latency of each.

    python scripts/bench/history_bench.py [--small 10000] [--large 1000000] [--samples 50]

Uses its own database, `rems_bench_history`, on the server of DATABASE_URL, dropped and created anew.
"""

import argparse
import json
import os
import statistics
import sys
import time
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB = "rems_bench_history"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import machine, machine_line  # noqa: E402  (importing common lifts the limits on waits here)
from serve import database_create, database_drop  # noqa: E402


def _setup(url):
    os.environ.update(DATABASE_URL=url, REMS_ENV="development", LOG_LEVEL="WARNING",
                      DJANGO_SETTINGS_MODULE="rems.config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--json", stdout=open(os.devnull, "w"))


def _add_patients(total):
    """Grow the tables to `total` patients, each with two tests. The rows are built from rows that exist (the
    program, the prescriber, the user, the patients just inserted), so the foreign-key triggers are skipped for
    these two statements (`session_replication_role = replica`, as pg_restore does): a million lookups each that
    can only succeed, and half of the fill's time."""
    from django.db import connection

    with connection.cursor() as c:
        c.execute("SELECT count(*) FROM rems_patient WHERE first_name = 'Filler'")
        have = c.fetchone()[0]
        if have >= total:
            return
        c.execute("SELECT id FROM rems_prescriber LIMIT 1")
        prescriber = c.fetchone()[0]
        c.execute("SELECT id FROM rems_program WHERE slug = 'pomalidomide'")
        program = c.fetchone()[0]
        c.execute("SELECT id FROM accounts_user WHERE role = 'prescriber' LIMIT 1")
        user = c.fetchone()[0]
        c.execute("SET session_replication_role = replica")
        c.execute(
            """INSERT INTO rems_patient (id, program_id, prescriber_id, first_name, last_name, date_of_birth,
                 risk_category, agreement_signed_on, irregular_cycles, status, status_reason, enrolled_at,
                 status_changed_at)
               SELECT gen_random_uuid(), %s, %s, 'Filler', 'P' || g, DATE '1950-01-01' + (g %% 20000),
                      'FRP_ADULT', DATE '2025-01-01', false, 'active', '', now(), now()
                 FROM generate_series(%s, %s) g""",
            [program, prescriber, have + 1, total],
        )
        c.execute(
            """INSERT INTO rems_pregnancytest (id, patient_id, collected_at, result, sensitivity_miu_ml, setting,
                 recorded_at, recorded_by_id)
               SELECT gen_random_uuid(), p.id, now() - (k || ' days')::interval, 'negative', 25, 'laboratory', now(), %s
                 FROM rems_patient p CROSS JOIN generate_series(1, 2) k
                WHERE p.first_name = 'Filler' AND p.last_name::text > ''
                  AND NOT EXISTS (SELECT 1 FROM rems_pregnancytest t WHERE t.patient_id = p.id)""",
            [user],
        )
        c.execute("RESET session_replication_role")
        c.execute("ANALYZE")


def _sample(tests, samples):
    """Decide for `samples` new FRP patients with `tests` negative tests each; return latencies and queries."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from accounts.models import User
    from dispensing import dispenses, prescriptions
    from rems.program import records
    from rems.program.models import Patient, Pharmacy, PregnancyTest, Program

    prescriber_user = User.objects.get(username="demo-prescriber")
    pharmacist = User.objects.get(username="demo-pharmacist")
    pharmacy = Pharmacy.objects.get(pk=pharmacist.pharmacy_id)
    program = Program.objects.get(slug="pomalidomide")
    timings = {"prescription": [], "dispense": []}
    queries = {"prescription": set(), "dispense": set()}
    for i in range(samples):
        now = timezone.now()
        patient = Patient.objects.create(
            program=program, prescriber_id=prescriber_user.prescriber_id, first_name="Sample",
            last_name=f"H{tests}-{i}-{time.time_ns()}", date_of_birth=date(1985, 3, 3), risk_category="FRP_ADULT",
            agreement_signed_on=date(2025, 1, 1), status="active", enrolled_at=now, status_changed_at=now)
        PregnancyTest.objects.bulk_create([
            PregnancyTest(patient=patient, collected_at=now - timedelta(days=40 + k), result="negative",
                          sensitivity_miu_ml=25, recorded_at=now, recorded_by=prescriber_user)
            for k in range(tests - 2)
        ])
        for ago in (timedelta(days=12), timedelta(hours=2)):
            records.pregnancy_test_record(actor=prescriber_user, patient=patient, collected_at=now - ago,
                                           result="negative", sensitivity_miu_ml=25, now=now)
        records.attestation_record(actor=prescriber_user, patient=patient, kind="contraception",
                                    methods=["IUD", "MALE_CONDOM"], started_on=(now - timedelta(days=40)).date(),
                                    now=now)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            decision, _, rx = prescriptions.prescription_authorize(actor=prescriber_user, patient=patient,
                                                                ndc="59572-0504-21", quantity=21, days_supply=28,
                                                                now=timezone.now())
            timings["prescription"].append(time.perf_counter() - started)
        assert decision.approved, decision.failed_codes
        queries["prescription"].add(len(captured.captured_queries))
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            decision, _, _ = dispenses.dispense_authorization_request(
                actor=pharmacist, pharmacy=pharmacy, authorization_number=rx.authorization_number,
                date_of_birth=patient.date_of_birth, ndc="59572-0504-21", quantity=21, days_supply=28,
                now=timezone.now())
            timings["dispense"].append(time.perf_counter() - started)
        assert decision.approved, decision.failed_codes
        queries["dispense"].add(len(captured.captured_queries))
    return {
        kind: {"queries": sorted(queries[kind]),
               "p50_ms": round(statistics.median(t) * 1000, 2),
               "p99_ms": round(sorted(t)[int(0.99 * (len(t) - 1))] * 1000, 2)}
        for kind, t in timings.items()
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    url = database_create(DB)
    _setup(url)
    rows = []
    for size in (args.small, args.large):
        started = time.perf_counter()
        _add_patients(size)
        print(f"{size} patients in the tables ({time.perf_counter() - started:.0f} s to add)", flush=True)
        for tests in (2, 500):
            result = _sample(tests, args.samples)
            rows.append({"patients": size, "tests": tests, **result})
            print(json.dumps(rows[-1]), flush=True)
    from django.db import connection

    connection.close()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    described = machine(os.environ["DATABASE_URL"])
    (out / "history-bench.json").write_text(json.dumps({"machine": described, "rows": rows}, indent=2))
    lines = [f"Machine: {machine_line(described)} In process, {args.samples} decisions of each kind per row; the "
             "statement counts include savepoints.", "",
             "| patients in tables | tests per patient | prescription queries | p50 ms | p99 ms | "
             "dispense queries | p50 ms | p99 ms |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        p, d = r["prescription"], r["dispense"]
        lines.append(f"| {r['patients']} | {r['tests']} | {p['queries']} | {p['p50_ms']} | {p['p99_ms']} | "
                     f"{d['queries']} | {d['p50_ms']} | {d['p99_ms']} |")
    markdown = "\n".join(lines) + "\n"
    (out / "history-bench.md").write_text(markdown)
    print(markdown)
    database_drop(DB)


if __name__ == "__main__":
    main()
