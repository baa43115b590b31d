"""Benchmark of the two decisions over HTTP, beside /healthz, /readyz and a trivial authenticated read, on one
server in one run: the service served as in production (gunicorn, DEBUG off, persistent database connections,
acting as rems_app) on loopback, loaded by wrk (Debian's package, installed when missing; a C program, so that the
load generator takes little of the CPU the server and PostgreSQL share). Then 50 requests racing on one
authorization number.

    python scripts/bench/decision_bench.py [--patients 20000] [--seconds 10] [--levels 1,16] [--out bench-results]

Uses its own database, `rems_bench_http`, on the server of DATABASE_URL, dropped and created anew.
"""

import argparse
import http.client
import json
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DB = "rems_bench_http"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import demo_database, machine, machine_line, results_write, wrk_install, wrk_run, wrk_warm_up  # noqa: E402
from serve import database_create, database_drop, free_port, production_server  # noqa: E402

NDC = "59572-0504-21"

# The targets, as shares of /healthz's throughput (and of the trivial read's), measured in the same run.
TARGETS = [
    ("trivial", "healthz", 0.4, "trivial authenticated read, against /healthz"),
    ("dispense", "healthz", 0.15, "dispense decision, against /healthz"),
    ("dispense", "trivial", 0.5, "dispense decision, against the trivial read"),
    ("prescription", "healthz", 0.1, "prescription decision, against /healthz"),
]


def _prepare(url, patients):
    """Demo parties and keys; `patients` FNRP patients each holding an issued authorization (for the dispense
    decision) and as many with none (for the prescription decision)."""
    seed = demo_database(url)
    from django.db import connection

    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    numbers = set()
    while len(numbers) < patients:
        numbers |= {authorization_number_new(PRESCRIPTION_PREFIX) for _ in range(patients - len(numbers))}
    numbers = sorted(numbers)
    with connection.cursor() as c:
        c.execute("SELECT id FROM rems_program WHERE slug = 'pomalidomide'")
        program = c.fetchone()[0]
        c.execute("SELECT id FROM rems_product WHERE ndc = %s", [NDC])
        product = c.fetchone()[0]
        for name in ("Dispense", "Prescribe"):
            c.execute(
                """INSERT INTO rems_patient (id, program_id, prescriber_id, first_name, last_name, date_of_birth,
                     risk_category, agreement_signed_on, irregular_cycles, status, status_reason, enrolled_at,
                     status_changed_at)
                   SELECT gen_random_uuid(), %s, %s, %s, 'Patient' || g, DATE '1960-01-01' + (g %% 9000),
                          'FNRP_ADULT', DATE '2025-06-01', false, 'active', '', now(), now()
                     FROM generate_series(1, %s) g""",
                [program, seed["prescriber_id"], name, patients],
            )
        c.execute("SELECT id, date_of_birth FROM rems_patient WHERE first_name = 'Dispense' ORDER BY last_name")
        rows = c.fetchall()
        with c.cursor.copy(
            "COPY dispensing_prescription (id, authorization_number, patient_id, prescriber_id, program_id, "
            "product_id, quantity, days_supply, risk_category, rule_set, status, issued_at, expires_at, "
            "status_changed_at, status_reason, decision_id) FROM STDIN"
        ) as copy:
            for (patient_id, _), number in zip(rows, numbers):
                copy.write_row([
                    str(uuid.uuid4()), number, str(patient_id), seed["prescriber_id"], program, product, 21, 28,
                    "FNRP_ADULT", "pomalidomide@2025-01-01", "issued", "now", "2099-01-01", "now", "",
                    str(uuid.uuid4()),
                ])
        c.execute("SELECT id FROM rems_patient WHERE first_name = 'Prescribe' ORDER BY last_name")
        prescribe = [str(r[0]) for r in c.fetchall()]
        c.execute("ANALYZE")
    dispense_cases = [(number, dob.isoformat()) for (_, dob), number in zip(rows, numbers)]
    connection.close()
    return seed, dispense_cases, prescribe


def _bodies(path, bodies):
    path.write_text("".join(json.dumps(b, separators=(",", ":")) + "\n" for b in bodies))
    return path


def _race(port, headers, number, dob):
    """50 requests on one authorization number at once: exactly one may be approved."""
    barrier = threading.Barrier(50)
    outcomes = []

    def one():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        body = json.dumps({"authorization_number": number, "patient_date_of_birth": dob, "ndc": NDC,
                           "quantity": 21, "days_supply": 28})
        barrier.wait()
        started = time.perf_counter()
        conn.request("POST", "/api/v1/dispense-authorizations/", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        outcomes.append((response.status, time.perf_counter() - started))

    threads = [threading.Thread(target=one) for _ in range(50)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return {"requests": 50, "approved": sum(1 for s, _ in outcomes if s == 201),
            "denied": sum(1 for s, _ in outcomes if s == 422),
            "other": sum(1 for s, _ in outcomes if s not in (201, 422)),
            "seconds": round(time.perf_counter() - started, 2),
            "slowest_ms": round(max(t for _, t in outcomes) * 1000, 1)}


def _verdict(value, target):
    if value is None:
        return "not measured"
    return "met" if value >= target else f"missed by {1 - value / target:.0%}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--levels", default="1,16", help="concurrent connections, e.g. 1,16")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    wrk_install()
    url = database_create(DB)
    seed, dispense_cases, prescribe = _prepare(url, args.patients)
    race_case = dispense_cases.pop()
    levels = [int(x) for x in args.levels.split(",")]
    seconds = max(1, int(args.seconds))
    work = Path(tempfile.mkdtemp(prefix="rems-bench-"))
    results = {"machine": machine(url), "patients": args.patients, "seconds": seconds, "levels": levels,
               "endpoints": {}}
    port = free_port()
    with production_server(url, port) as workers:
        results["machine"]["gunicorn_workers"] = workers
        base = f"http://127.0.0.1:{port}"
        pharmacist = [f"Authorization: Token {seed['tokens']['pharmacist']}", "Content-Type: application/json"]
        prescriber = [f"Authorization: Token {seed['tokens']['prescriber']}", "Content-Type: application/json"]
        # Each level takes the next share of the cases: no authorization or patient is decided twice.
        per_level = len(dispense_cases) // len(levels)
        endpoints = {
            "healthz": ("/healthz", [], "GET", None),
            "readyz": ("/readyz", [], "GET", None),
            "trivial": (f"/api/v1/pharmacies/{seed['pharmacy_id']}/", pharmacist[:1], "GET", None),
            "dispense": ("/api/v1/dispense-authorizations/", pharmacist, "POST", [
                {"authorization_number": n, "patient_date_of_birth": dob, "ndc": NDC, "quantity": 21, "days_supply": 28}
                for n, dob in dispense_cases]),
            "prescription": ("/api/v1/prescriptions/", prescriber, "POST", [
                {"patient": p, "ndc": NDC, "quantity": 21, "days_supply": 28} for p in prescribe]),
        }
        wrk_warm_up(base + "/healthz")
        wrk_warm_up(base + endpoints["trivial"][0], headers=pharmacist[:1])
        for index, level in enumerate(levels):
            for name, (path, headers, method, bodies) in endpoints.items():
                cases = None
                if bodies is not None:
                    share = bodies[index * per_level:(index + 1) * per_level]
                    cases = _bodies(work / f"{name}-{level}.jsonl", share)
                report = wrk_run(base + path, seconds=seconds, connections=level, headers=headers, cases=cases,
                                 method=method, threads=min(2, level))
                results["endpoints"].setdefault(name, []).append(report)
                print(f"c={level} {name}: {report['per_second']}/s p99 {report['p99_ms']} ms {report['statuses']}",
                      flush=True)
        results["contention"] = _race(port, {h.split(": ")[0]: h.split(": ")[1] for h in pharmacist}, *race_case)
    database_drop(DB)

    peak = {name: max(r["per_second"] for r in runs) for name, runs in results["endpoints"].items()}
    top = {name: runs[-1] for name, runs in results["endpoints"].items()}  # at the highest level
    results["peak_per_second"] = peak
    results["targets"] = []
    for name, against, target, label in TARGETS:
        share = round(top[name]["per_second"] / top[against]["per_second"], 3) if top[against]["per_second"] else None
        results["targets"].append({"what": label, "share": share, "target": target, "verdict": _verdict(share, target),
                                   "at_connections": levels[-1]})
    names = {"healthz": "/healthz (no database)", "readyz": "/readyz (database and broker)",
             "trivial": "trivial authenticated read (GET /api/v1/pharmacies/{id}/)",
             "dispense": "dispense decision (POST /api/v1/dispense-authorizations/)",
             "prescription": "prescription decision (POST /api/v1/prescriptions/)"}
    lines = [f"Machine: {machine_line(results['machine'])} gunicorn with {workers} sync workers on loopback; wrk, "
             f"{seconds} s a run.", "",
             "| endpoint | connections | requests/s | p50 ms | p99 ms | share of /healthz | statuses | socket errors |",
             "|---|---|---|---|---|---|---|---|"]
    for index, level in enumerate(levels):
        healthz = results["endpoints"]["healthz"][index]["per_second"]
        for name, runs in results["endpoints"].items():
            r = runs[index]
            errors = sum(r["errors"].values())
            lines.append(f"| {names[name]} | {level} | {r['per_second']:,.0f} | {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | "
                         f"{r['per_second'] / healthz:.3f} | "
                         f"{', '.join(f'{k}: {v}' for k, v in sorted(r['statuses'].items()))} | {errors} |")
    lines += ["", f"Targets, at {levels[-1]} connections, in this run:", "", "| target | measured | |", "|---|---|---|"]
    for t in results["targets"]:
        lines.append(f"| {t['what']}: at least {t['target']} | {t['share']} | {t['verdict']} |")
    c = results["contention"]
    lines += ["", f"50 requests racing on one authorization number: {c['approved']} approved, {c['denied']} denied, "
              f"{c['other']} other, in {c['seconds']} s (slowest {c['slowest_ms']} ms)."]
    results_write(args.out, "decision-bench", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
