"""Benchmark of the dispense decision over HTTP, served as in production (gunicorn, DEBUG off, persistent
database connections) on loopback, against a trivial authenticated endpoint of the same server that reads one
row: throughput and p50/p99 latency at several concurrency levels, p99 at half the decision's peak rate, and 50
requests racing on one authorization number.

    python scripts/bench/decision_bench.py [--patients 20000] [--seconds 10] [--out bench-results]

Uses its own database, `rems_bench_http`, on the server of DATABASE_URL, dropped and created anew.
"""

import argparse
import http.client
import json
import os
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DB = "rems_bench_http"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serve import database_create, database_drop, free_port, production_server  # noqa: E402


def _prepare(url, patients):
    """Demo parties and keys, and `patients` FNRP patients each with an issued authorization."""
    os.environ.update(DATABASE_URL=url, REMS_ENV="development", LOG_LEVEL="WARNING",
                      DJANGO_SETTINGS_MODULE="rems.config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new

    call_command("migrate", verbosity=0)
    out = Path(os.devnull).open("w")
    seed = {}

    class Capture:
        def write(self, text):
            seed.update(json.loads(text))

        def flush(self):
            pass

    call_command("seed_demo", "--json", stdout=Capture())
    out.close()
    numbers = []
    while len(numbers) < patients:
        numbers = sorted(set(numbers) | {authorization_number_new(PRESCRIPTION_PREFIX)
                                         for _ in range(patients - len(numbers))})
    with connection.cursor() as c:
        c.execute("SELECT id FROM rems_program WHERE slug = 'pomalidomide'")
        program = c.fetchone()[0]
        c.execute("SELECT id FROM rems_product WHERE ndc = '59572-0504-21'")
        product = c.fetchone()[0]
        c.execute(
            """INSERT INTO rems_patient (id, program_id, prescriber_id, first_name, last_name, date_of_birth,
                 risk_category, agreement_signed_on, irregular_cycles, status, status_reason, enrolled_at,
                 status_changed_at)
               SELECT gen_random_uuid(), %s, %s, 'Bench', 'Patient' || g, DATE '1960-01-01' + (g %% 9000),
                      'FNRP_ADULT', DATE '2025-06-01', false, 'active', '', now(), now()
                 FROM generate_series(1, %s) g""",
            [program, seed["prescriber_id"], patients],
        )
        c.execute("SELECT id, date_of_birth FROM rems_patient WHERE first_name = 'Bench' ORDER BY last_name")
        rows = c.fetchall()
        with c.cursor.copy(
            "COPY dispensing_prescription (id, authorization_number, patient_id, prescriber_id, program_id, "
            "product_id, quantity, days_supply, risk_category, rule_set, status, issued_at, expires_at, "
            "status_changed_at, status_reason, decision_id) FROM STDIN"
        ) as copy:
            for (patient_id, _), number in zip(rows, numbers):
                copy.write_row([
                    str(__import__("uuid").uuid4()), number, str(patient_id), seed["prescriber_id"], program,
                    product, 21, 28, "FNRP_ADULT", "pomalidomide@2025-01-01", "issued", "now", "2099-01-01",
                    "now", "", str(__import__("uuid").uuid4()),
                ])
    cases = [(number, dob.isoformat()) for (_, dob), number in zip(rows, numbers)]
    connection.close()
    return seed, cases


class Load:
    """Closed-loop load: `concurrency` threads, each with one keep-alive connection, for `seconds`."""

    def __init__(self, port, make_request):
        self.port, self.make_request = port, make_request

    def run(self, concurrency, seconds, pace=None):
        latencies, statuses, lock = [], {}, threading.Lock()
        stop_at = time.perf_counter() + seconds
        next_slot = [time.perf_counter()]

        def worker():
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            while True:
                if pace:
                    with lock:
                        slot = next_slot[0]
                        next_slot[0] += 1 / pace
                    delay = slot - time.perf_counter()
                    if delay > 0:
                        time.sleep(delay)
                now = time.perf_counter()
                if now >= stop_at:
                    break
                method, path, body, headers = self.make_request()
                if method is None:
                    break
                started = time.perf_counter()
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status] = statuses.get(response.status, 0) + 1
            conn.close()

        threads = [threading.Thread(target=worker) for _ in range(concurrency)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        latencies.sort()

        def pct(p):
            return round(latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000, 1) if latencies else None

        return {"concurrency": concurrency, "requests": len(latencies), "seconds": round(elapsed, 2),
                "per_second": round(len(latencies) / elapsed, 1), "p50_ms": pct(0.50), "p99_ms": pct(0.99),
                "mean_ms": round(statistics.mean(latencies) * 1000, 1) if latencies else None,
                "statuses": statuses}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--levels", default="1,4,16")
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    url = database_create(DB)
    seed, cases = _prepare(url, args.patients)
    port = free_port()
    with production_server(url, port) as workers:
        pharmacist = {"Authorization": f"Token {seed['tokens']['pharmacist']}", "Content-Type": "application/json"}
        trivial_path = f"/api/v1/pharmacies/{seed['pharmacy_id']}/"
        remaining = iter(cases)
        take = threading.Lock()

        def trivial():
            return "GET", trivial_path, None, pharmacist

        def decision():
            with take:
                case = next(remaining, None)
            if case is None:
                return None, None, None, None
            number, dob = case
            body = json.dumps({"authorization_number": number, "patient_date_of_birth": dob,
                               "ndc": "59572-0504-21", "quantity": 21, "days_supply": 28})
            return "POST", "/api/v1/dispense-authorizations/", body, pharmacist

        Load(port, trivial).run(4, 2)  # warm up: connections, imports
        levels = [int(x) for x in args.levels.split(",")]
        results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                               "python": platform.python_version(), "gunicorn_workers": workers},
                   "trivial": [], "decision": []}
        for level in levels:
            results["trivial"].append(Load(port, trivial).run(level, args.seconds))
            results["decision"].append(Load(port, decision).run(level, args.seconds))
            print(f"c={level}: trivial {results['trivial'][-1]['per_second']}/s, "
                  f"decision {results['decision'][-1]['per_second']}/s", flush=True)
        peak_trivial = max(r["per_second"] for r in results["trivial"])
        peak_decision = max(r["per_second"] for r in results["decision"])
        half = Load(port, decision).run(max(levels), args.seconds, pace=peak_decision / 2)
        results["decision_at_half_peak"] = {**half, "target_per_second": round(peak_decision / 2, 1)}
        results["ratio"] = round(peak_decision / peak_trivial, 3)

        # 50 requests racing on one authorization number: exactly one approval.
        number, dob = next(remaining)
        barrier = threading.Barrier(50)
        outcomes = []

        def race():
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            body = json.dumps({"authorization_number": number, "patient_date_of_birth": dob,
                               "ndc": "59572-0504-21", "quantity": 21, "days_supply": 28})
            barrier.wait()
            started = time.perf_counter()
            conn.request("POST", "/api/v1/dispense-authorizations/", body=body, headers=pharmacist)
            response = conn.getresponse()
            response.read()
            outcomes.append((response.status, time.perf_counter() - started))

        threads = [threading.Thread(target=race) for _ in range(50)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        results["contention"] = {
            "requests": 50, "approved": sum(1 for s, _ in outcomes if s == 201),
            "denied": sum(1 for s, _ in outcomes if s == 422), "seconds": round(elapsed, 2),
            "per_second": round(50 / elapsed, 1),
            "p99_ms": round(sorted(t for _, t in outcomes)[-1] * 1000, 1),
        }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "decision-bench.json").write_text(json.dumps(results, indent=2))
    lines = [f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}, gunicorn with "
             f"{workers} sync workers on loopback.", "",
             "| concurrency | trivial read/s | p50 ms | p99 ms | dispense decision/s | p50 ms | p99 ms |",
             "|---|---|---|---|---|---|---|"]
    for t, d in zip(results["trivial"], results["decision"]):
        lines.append(f"| {t['concurrency']} | {t['per_second']} | {t['p50_ms']} | {t['p99_ms']} | {d['per_second']} | "
                     f"{d['p50_ms']} | {d['p99_ms']} |")
    h, c = results["decision_at_half_peak"], results["contention"]
    lines += ["", f"Decision peak / trivial peak: {results['ratio']} (target at least 0.5).",
              f"At half the decision's peak ({h['target_per_second']}/s offered, {h['per_second']}/s served): "
              f"p50 {h['p50_ms']} ms, p99 {h['p99_ms']} ms (target under 50 ms).",
              f"Contention: 50 requests on one authorization number: {c['approved']} approved, {c['denied']} denied, "
              f"in {c['seconds']} s; slowest {c['p99_ms']} ms."]
    markdown = "\n".join(lines) + "\n"
    (out / "decision-bench.md").write_text(markdown)
    print(markdown)
    database_drop(DB)


if __name__ == "__main__":
    main()
