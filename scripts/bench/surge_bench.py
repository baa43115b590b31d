"""A relaunch surge: 20,000 enrolled patients across the four programs, 1,000 prescribers and 500 pharmacies (each
certified in every program, each user with an API key), and, at a constant rate for 60 s, 100 dispense decisions a
second, prescription decisions and portal page loads, from an open-loop generator in a process of its own
(`openloop.py`); a new version of Pomalidomide's rules is loaded over the API 20 s in and takes effect 30 s in
(in shorter runs: half way, loaded at least 5 s before).

Then, from the compliance log: every decision of the program made before the switch names the old rule set and
every one after names the new (decisions under the wrong rule set: must be 0).

    python scripts/bench/surge_bench.py [--patients 20000] [--seconds 60] [--dispense-rate 100]
        [--prescription-rate 25] [--page-rate 25] [--out bench-results]

Uses its own database, `rems_bench_surge`, on the server of DATABASE_URL, dropped and created anew. The production
limits on dispense requests per key and per pharmacy stay on.
"""

import argparse
import hashlib
import json
import random
import secrets
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DB = "rems_bench_surge"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import demo_database, machine, machine_line, percentiles, results_write, wrk_install, wrk_warm_up  # noqa: E402
from serve import database_create, database_drop, free_port, production_server  # noqa: E402

PROGRAMS = ("pomalidomide", "lenalidomide", "thalidomide", "isotretinoin")
SWITCHED = "pomalidomide"
SUPPLY = 28  # days, one unit a day: within every program's limits


def _hash(key):
    return hashlib.sha256(key.encode()).hexdigest()


def _prepare(url, *, patients, prescribers, pharmacies, secret_key, page_users):
    """The world of the surge, written with COPY and set-based SQL. Returns what the generator needs."""
    seed = demo_database(url, SECRET_KEY=secret_key)
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import connection

    from accounts.models import User
    from accounts.services import KEY_PREFIX
    from rems.core.identifiers import PRESCRIPTION_PREFIX, authorization_number_new
    from rems.program.models import Program, Product, RuleSet

    rng = random.Random(15)
    now = datetime.now(timezone.utc)
    far = now + timedelta(days=365)
    programs = {p.slug: p for p in Program.objects.filter(slug__in=PROGRAMS)}
    products = {slug: Product.objects.filter(program=p).order_by("ndc").first() for slug, p in programs.items()}
    rule_sets = {slug: RuleSet.objects.filter(program=p, effective_at__lte=now).latest("effective_at")
                 for slug, p in programs.items()}
    labels = {slug: f"{slug}@{rs.version}" for slug, rs in rule_sets.items()}
    # The categories who cannot get pregnant, and the counseling each needs before a prescription.
    categories = {}
    for slug, rs in rule_sets.items():
        params = rs.parameters
        names = [n for n, c in params["risk_categories"].items() if not c["can_get_pregnant"]
                 and c.get("age") != "child"]
        categories[slug] = [(n, (params.get("counseling") or {}).get(n, {}).get("kind")) for n in names]
    prescriber_ids = [str(uuid.uuid4()) for _ in range(prescribers)]
    pharmacy_ids = [str(uuid.uuid4()) for _ in range(pharmacies)]
    keys = {}
    with connection.cursor() as c:
        raw = c.cursor
        with raw.copy("COPY rems_prescriber (id, npi, first_name, last_name, email, created_at) FROM STDIN") as copy:
            for i, pid in enumerate(prescriber_ids):
                copy.write_row([pid, f"8{i:09d}", "Surge", f"Prescriber {i}", f"p{i}@example.org", now])
        with raw.copy("COPY rems_pharmacy (id, ncpdp_id, npi, name, created_at) FROM STDIN") as copy:
            for i, pid in enumerate(pharmacy_ids):
                copy.write_row([pid, f"9{i:06d}", f"7{i:09d}", f"Surge pharmacy {i}", now])
        with raw.copy("COPY rems_certification (id, program_id, prescriber_id, pharmacy_id, status, certified_at, "
                      "expires_at, status_changed_at, status_reason) FROM STDIN") as copy:
            for program in programs.values():
                for pid in prescriber_ids:
                    copy.write_row([uuid.uuid4(), program.pk, pid, None, "active", now, far, now, ""])
                for pid in pharmacy_ids:
                    copy.write_row([uuid.uuid4(), program.pk, None, pid, "active", now, far, now, ""])
        users = [("prescriber", pid, None) for pid in prescriber_ids] + [("pharmacist", None, pid) for pid in pharmacy_ids]
        with raw.copy("COPY accounts_user (password, is_superuser, username, first_name, last_name, email, is_staff, "
                      "is_active, date_joined, role, prescriber_id, pharmacy_id) FROM STDIN") as copy:
            for i, (role, prescriber, pharmacy) in enumerate(users):
                copy.write_row(["!", False, f"surge-{role}-{i}", "", "", "", False, True, now, role, prescriber, pharmacy])
        c.execute("SELECT id, role, prescriber_id, pharmacy_id FROM accounts_user WHERE username LIKE 'surge-%%'")
        user_rows = c.fetchall()
        with raw.copy("COPY accounts_apikey (user_id, prefix, key_hash, label, created_at, expires_at) FROM STDIN") as copy:
            for user_id, role, prescriber, pharmacy in user_rows:
                key = KEY_PREFIX + secrets.token_urlsafe(32)
                keys[str(prescriber or pharmacy)] = key
                copy.write_row([user_id, key[:len(KEY_PREFIX) + 6], _hash(key), "surge", now, far])
        user_of = {str(prescriber or pharmacy): user_id for user_id, _, prescriber, pharmacy in user_rows}
        # Patients: an even share per program, each with a prescriber drawn at random; the counseling their
        # category needs, attested yesterday.
        patient_rows = []
        with raw.copy("COPY rems_patient (id, program_id, prescriber_id, first_name, last_name, date_of_birth, "
                      "risk_category, agreement_signed_on, irregular_cycles, status, status_reason, enrolled_at, "
                      "status_changed_at) FROM STDIN") as copy:
            for i in range(patients):
                slug = PROGRAMS[i % len(PROGRAMS)]
                category, counseling = rng.choice(categories[slug])
                pid, prescriber = str(uuid.uuid4()), rng.choice(prescriber_ids)
                dob = (now - timedelta(days=365 * 30 + rng.randrange(365 * 40))).date()
                copy.write_row([pid, programs[slug].pk, prescriber, "Surge", f"Patient {i}", dob, category,
                                (now - timedelta(days=30)).date(), False, "active", "", now - timedelta(days=30),
                                now - timedelta(days=30)])
                patient_rows.append((pid, slug, prescriber, dob, counseling, category))
        with raw.copy("COPY rems_attestation (id, patient_id, kind, methods, abstinence, started_on, attested_at, "
                      "attested_by_id) FROM STDIN") as copy:
            for pid, slug, prescriber, dob, counseling, _ in patient_rows:
                if counseling:
                    copy.write_row([uuid.uuid4(), pid, counseling, [], False, None, now - timedelta(days=1),
                                    user_of[prescriber]])
        c.execute("ANALYZE")
    rng.shuffle(patient_rows)
    # A third of the patients hold an authorization issued in the days before the surge, for the pharmacies.
    holding, free = patient_rows[:patients // 3], patient_rows[patients // 3:]
    numbers = set()
    while len(numbers) < len(holding):
        numbers |= {authorization_number_new(PRESCRIPTION_PREFIX) for _ in range(len(holding) - len(numbers))}
    dispense_cases = []
    with connection.cursor() as c:
        with c.cursor.copy(
            "COPY dispensing_prescription (id, authorization_number, patient_id, prescriber_id, program_id, "
            "product_id, quantity, days_supply, risk_category, rule_set, status, issued_at, expires_at, "
            "status_changed_at, status_reason, decision_id) FROM STDIN"
        ) as copy:
            for (pid, slug, prescriber, dob, _, category), number in zip(holding, sorted(numbers)):
                copy.write_row([uuid.uuid4(), number, pid, prescriber, programs[slug].pk, products[slug].pk, SUPPLY,
                                SUPPLY, category, labels[slug], "issued", now - timedelta(hours=2),
                                now + timedelta(days=5), now - timedelta(hours=2), "", uuid.uuid4()])
                dispense_cases.append((number, dob, slug))
        c.execute("ANALYZE")
    # Browser sessions of the portal for a sample of the users (made as signing in would make them).
    sessions = []
    backend = settings.AUTHENTICATION_BACKENDS[0]
    for user in User.objects.filter(username__startswith="surge-").order_by("?")[:page_users]:
        store = SessionStore()
        store[SESSION_KEY], store[BACKEND_SESSION_KEY] = str(user.pk), backend
        store[HASH_SESSION_KEY] = user.get_session_auth_hash()
        store.create()
        sessions.append((user.role, store.session_key))
    pharmacy_of_key = {pid: keys[pid] for pid in pharmacy_ids}
    result = {
        "seed": seed, "keys": keys, "pharmacy_keys": list(pharmacy_of_key.values()),
        "dispense_cases": [(n, d.isoformat(), s, products[s].ndc) for n, d, s in dispense_cases],
        "prescription_cases": [(pid, prescriber, products[slug].ndc) for pid, slug, prescriber, _, _, _ in free],
        "sessions": sessions, "session_cookie": settings.SESSION_COOKIE_NAME,
        "switched_parameters": rule_sets[SWITCHED].parameters, "old_label": labels[SWITCHED],
    }
    connection.close()
    return result


def _plan(world, port, args, start_at, effective_at):
    rng = random.Random(16)
    json_headers = {"Content-Type": "application/json"}
    dispense = [{"method": "POST", "path": "/api/v1/dispense-authorizations/",
                 "headers": {**json_headers, "Authorization": f"Token {rng.choice(world['pharmacy_keys'])}"},
                 "body": json.dumps({"authorization_number": n, "patient_date_of_birth": dob, "ndc": ndc,
                                     "quantity": SUPPLY, "days_supply": SUPPLY})}
                for n, dob, _, ndc in world["dispense_cases"]]
    prescription = [{"method": "POST", "path": "/api/v1/prescriptions/",
                     "headers": {**json_headers, "Authorization": f"Token {world['keys'][prescriber]}"},
                     "body": json.dumps({"patient": pid, "ndc": ndc, "quantity": SUPPLY, "days_supply": SUPPLY})}
                    for pid, prescriber, ndc in world["prescription_cases"]]
    pages = []
    for i in range(int(args.page_rate * args.seconds) + 1):
        role, session = world["sessions"][i % len(world["sessions"])]
        path = "/patients/" if role == "prescriber" else "/dispenses/"
        pages.append({"method": "GET", "path": path, "headers": {"Cookie": f"{world['session_cookie']}={session}"}})
    switch_body = json.dumps({"version": "surge", "effective_at": effective_at.isoformat(),
                              "parameters": world["switched_parameters"],
                              "sources": {"version": "the surge benchmark: the same rules, a new version"}})
    return {
        "host": "127.0.0.1", "port": port, "start_at": start_at, "seconds": args.seconds,
        "streams": [
            {"name": "dispense decision", "rate": args.dispense_rate, "expect": [201, 422], "requests": dispense},
            {"name": "prescription decision", "rate": args.prescription_rate, "expect": [201, 422],
             "requests": prescription},
            {"name": "portal page", "rate": args.page_rate, "expect": [200], "requests": pages},
        ],
        # Loaded well before it takes effect (20 s in, for 30 s in, in a run of 60 s): a rule set is refused if its
        # moment has passed when it is stored.
        "once": [{"name": "rule set load", "at": max(1.0, args.seconds / 2 - max(5.0, args.seconds / 6)),
                  "method": "POST",
                  "path": f"/api/v1/programs/{SWITCHED}/rule-sets/",
                  "headers": {**json_headers, "Authorization": f"Token {world['seed']['tokens']['admin']}"},
                  "body": switch_body}],
    }


def _wrong_rule_set(url, effective_at, started_at, old_label):
    """Decisions of the switched program, during the surge, that name a rule set other than the one in force at
    their moment; and how many there were on each side of the switch."""
    import psycopg

    with psycopg.connect(url) as conn:
        loaded = conn.execute("SELECT count(*) FROM rems_ruleset r JOIN rems_program g ON g.id = r.program_id "
                              "WHERE g.slug = %s AND r.version = 'surge'", [SWITCHED]).fetchone()[0]
        # Were the new rules not loaded, the old ones stay in force after the switch's moment.
        new_label = f"{SWITCHED}@surge" if loaded else old_label
        rows = conn.execute(
            """SELECT occurred_at >= %(effective)s AS after, rule_set, count(*) FROM rems_compliancelogentry
                WHERE action IN ('prescription.authorize', 'dispense_authorization.request') AND program = %(program)s
                  AND occurred_at >= %(started)s GROUP BY 1, 2""",
            {"effective": effective_at, "program": SWITCHED, "started": started_at}).fetchall()
        approved = dict(conn.execute(
            """SELECT action || ':' || outcome, count(*) FROM rems_compliancelogentry
                WHERE action IN ('prescription.authorize', 'dispense_authorization.request') AND occurred_at >= %s
                GROUP BY 1""", [started_at]).fetchall())
    counts = {"before": 0, "after": 0, "wrong": 0, "labels": {}, "new_rules_loaded": bool(loaded)}
    for after, label, n in rows:
        side = "after" if after else "before"
        counts[side] += n
        counts["labels"][f"{side}: {label}"] = n
        if label != (new_label if after else old_label):
            counts["wrong"] += n
    return counts, approved


def _summary(stream):
    latencies = stream.pop("latencies")
    lateness = stream.pop("send_lateness")
    return {**stream, **percentiles(latencies), "completed": len(latencies),
            "send_lateness_p99_ms": percentiles(lateness)["p99_ms"]}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=20000)
    parser.add_argument("--prescribers", type=int, default=1000)
    parser.add_argument("--pharmacies", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--dispense-rate", type=float, default=100)
    parser.add_argument("--prescription-rate", type=float, default=25)
    parser.add_argument("--page-rate", type=float, default=25)
    parser.add_argument("--page-users", type=int, default=100)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    wrk_install()
    url = database_create(DB)
    secret_key = secrets.token_urlsafe(50)
    started = time.perf_counter()
    world = _prepare(url, patients=args.patients, prescribers=args.prescribers, pharmacies=args.pharmacies,
                     secret_key=secret_key, page_users=args.page_users)
    setup_s = round(time.perf_counter() - started, 1)
    needed = {"dispense": int(args.dispense_rate * args.seconds), "prescription": int(args.prescription_rate * args.seconds)}
    if len(world["dispense_cases"]) < needed["dispense"] or len(world["prescription_cases"]) < needed["prescription"]:
        print(f"[surge] not enough patients for the rates: {needed}", flush=True)
    results = {"machine": machine(url), "patients": args.patients, "prescribers": args.prescribers,
               "pharmacies": args.pharmacies, "seconds": args.seconds, "setup_seconds": setup_s,
               "offered_per_second": {"dispense decision": args.dispense_rate,
                                      "prescription decision": args.prescription_rate,
                                      "portal page": args.page_rate}}
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="rems-surge-"))
    with production_server(url, port, secret_key=secret_key, throttled=True) as workers:
        results["machine"]["gunicorn_workers"] = workers
        # Warm up every worker (each loads the application on its own) before the clock starts.
        wrk_warm_up(f"http://127.0.0.1:{port}/healthz")
        role, session = world["sessions"][0]
        wrk_warm_up(f"http://127.0.0.1:{port}{'/patients/' if role == 'prescriber' else '/dispenses/'}",
                    headers=[f"Cookie: {world['session_cookie']}={session}"])
        start_at = time.time() + 2
        effective_at = datetime.fromtimestamp(start_at, timezone.utc) + timedelta(seconds=args.seconds / 2)
        plan = _plan(world, port, args, start_at, effective_at)
        (work / "plan.json").write_text(json.dumps(plan))
        subprocess.run([sys.executable, str(HERE / "openloop.py"), str(work / "plan.json"), str(work / "out.json")],
                       check=True, timeout=args.seconds + 300)
    generated = json.loads((work / "out.json").read_text())
    wrong, outcomes = _wrong_rule_set(url, effective_at, datetime.fromtimestamp(start_at, timezone.utc),
                                      world["old_label"])
    database_drop(DB)
    streams = {}
    for spec, (name, stream) in zip(plan["streams"], generated["streams"].items()):
        stream["expect"] = spec["expect"]
        streams[name] = _summary(stream)
    results.update(streams=streams, rule_set_load=generated["once"].get("rule set load"), switch=wrong,
                   outcomes=outcomes, effective_at=effective_at.isoformat())
    errors = {name: sum(v for k, v in s["statuses"].items() if int(k) not in s["expect"]) + sum(s["errors"].values())
              for name, s in streams.items()}
    decisions = streams["dispense decision"]
    results["targets"] = {
        "dispense p99 under 100 ms": {"measured_ms": decisions["p99_ms"],
                                      "verdict": "met" if decisions["p99_ms"] is not None and decisions["p99_ms"] < 100
                                      else f"missed by {decisions['p99_ms'] / 100 - 1:.0%}" if decisions["p99_ms"] else "not measured"},
        "zero errors": {"measured": sum(errors.values()), "verdict": "met" if not sum(errors.values()) else "missed"},
        "zero decisions under the wrong rule set": {
            "measured": wrong["wrong"],
            "verdict": ("missed: the new rule set was not loaded" if not wrong["new_rules_loaded"]
                        else "met" if not wrong["wrong"] else "missed")},
    }
    lines = [f"Machine: {machine_line(results['machine'])} gunicorn with {workers} sync workers; open-loop generator "
             f"in a process of its own; production limits on dispense requests. {args.patients:,} patients across "
             f"{len(PROGRAMS)} programs, {args.prescribers:,} prescribers, {args.pharmacies:,} pharmacies (setup "
             f"{setup_s} s); {args.seconds:.0f} s at a constant rate.", "",
             "| stream | offered/s | sent | completed | p50 ms | p90 ms | p99 ms | max ms | statuses | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, s in streams.items():
        statuses = ", ".join(f"{k}: {v}" for k, v in sorted(s["statuses"].items()))
        lines.append(f"| {name} | {s['offered_per_second']:g} | {s['sent']:,} | {s['completed']:,} | {s['p50_ms']} | "
                     f"{s['p90_ms']} | {s['p99_ms']} | {s['max_ms']} | {statuses} | {errors[name]} |")
    load = results["rule_set_load"] or {}
    lines += ["", f"Rule set switch: `{SWITCHED}@surge` loaded over the API {load.get('at_s')} s in (answer "
              f"{load.get('status')} in {load.get('seconds')} s), in force from {args.seconds / 2:.0f} s in. Decisions "
              f"of {SWITCHED} in the surge: {wrong['before']:,} before the switch, {wrong['after']:,} after; under the "
              f"wrong rule set: **{wrong['wrong']}** ({', '.join(f'{k}: {v}' for k, v in sorted(wrong['labels'].items()))}).",
              "", "Outcomes: " + ", ".join(f"{k} {v:,}" for k, v in sorted(outcomes.items())) + ".", "",
              "| target | measured | |", "|---|---|---|"]
    for name, t in results["targets"].items():
        measured = t.get("measured_ms", t.get("measured"))
        lines.append(f"| {name} | {measured} | {t['verdict']} |")
    if any(s["ran_out"] for s in streams.values()):
        lines += ["", "A stream ran out of patients before the end: give more patients for these rates."]
    results_write(args.out, "surge-bench", results, "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
