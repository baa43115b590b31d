"""A profile of the decisions and of the trivial read, in process, through the whole stack a request takes
(middleware, DRF, authentication, throttling, the service, the log entry), with the production settings: where the
time of one request goes.

    python scripts/bench/profile_decision.py [--requests 300] [--out bench-results]

For each kind of request, `--requests` requests are timed under cProfile, and the time is split by where it was
spent (PostgreSQL and its driver, the ORM, the rest of Django, DRF, the gate engine, the service's own code); with pyinstrument installed (the
`bench` extra), its call tree of the same requests is written beside, as text. cProfile slows Python down, not
PostgreSQL: the shares of Python are overstated, the waits understated.

Uses its own database, `rems_bench_profile`, on the server of DATABASE_URL, dropped and created anew.
"""

import argparse
import cProfile
import json
import os
import pstats
import secrets
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
DB = "rems_bench_profile"
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from common import machine, machine_line, results_write, serving_env  # noqa: E402
from serve import database_create, database_drop  # noqa: E402

# What a request's time is spent in: each function's own time goes to the first category whose path fragment its
# file has; the time of built-in functions (a socket's wait, a hash) goes to the categories of their callers.
PARTS = [
    ("PostgreSQL: waiting, and the psycopg driver", ("/psycopg/", "/psycopg_c/", "/psycopg_binary/")),
    ("the ORM building SQL and models", ("/django/db/models/",)),
    ("the rest of Django", ("/django/",)),
    ("DRF", ("/rest_framework/",)),
    ("the gate engine", ("/rems/core/",)),
    ("the service's own code", ("/rems/", "/dispensing/", "/accounts/")),
]
REST = "the rest: standard library, other packages"


def _category(filename):
    return next((label for label, fragments in PARTS if any(f in filename for f in fragments)), REST)


def _prepare(url, patients):
    import decision_bench

    seed, dispense_cases, prescribe = decision_bench._prepare(url, patients)
    return seed, dispense_cases, prescribe


def _breakdown(profile, total):
    """Each category's share of `total` (the wall time of the profiled requests)."""
    seconds = {label: 0.0 for label, _ in PARTS}
    seconds[REST] = 0.0
    for (filename, _, _), (_, _, own, _, callers) in pstats.Stats(profile).stats.items():
        if filename != "~" or not callers:
            seconds[_category(filename)] += own
            continue
        weight = sum(c[3] for c in callers.values()) or 1.0
        for (caller_file, _, _), c in callers.items():
            seconds[_category(caller_file)] += own * c[3] / weight
    profiled = sum(seconds.values()) or 1.0
    return {label: round(value / profiled, 3) for label, value in seconds.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--out", default=str(ROOT / "bench-results"))
    args = parser.parse_args()
    url = database_create(DB)
    seed, dispense_cases, prescribe = _prepare(url, 2 * args.requests + 10)
    os.environ.update(REMS_ENV="production", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="127.0.0.1",
                      SECURE_SSL_REDIRECT="false", DB_CONN_MAX_AGE="600", DATABASE_ROLE="rems_app",
                      REMS_DISPENSE_RATE_PER_KEY="1000000", REMS_DISPENSE_RATE_PER_PHARMACY="1000000")
    # A fresh interpreter with the production settings runs the requests (the preparation ran in development).
    code = f"""
import cProfile, json, os, sys, time
sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(HERE)!r})
os.environ["DATABASE_URL"] = {url!r}
os.environ["DJANGO_SETTINGS_MODULE"] = "rems.config.settings"
import django; django.setup()
from django.test import Client
import profile_decision as me
me.run(json.loads(sys.argv[1]))
"""
    import subprocess

    job = {"seed": seed, "dispense": dispense_cases, "prescribe": prescribe,
           "requests": args.requests, "out": args.out}
    result = subprocess.run([sys.executable, "-c", code, json.dumps(job)], capture_output=True, text=True,
                            timeout=1800, env=serving_env())
    if result.returncode:
        raise RuntimeError(result.stderr[-4000:])
    profiles = json.loads(result.stdout.strip().splitlines()[-1])
    described = machine(url)
    database_drop(DB)
    lines = [f"Machine: {machine_line(described)} In process, Django's test client, production settings, "
             f"{args.requests} requests of each kind under cProfile (which slows Python, not PostgreSQL).", "",
             "| request | ms per request (profiled) | " + " | ".join([*(label for label, _ in PARTS), REST]) + " |",
             "|---|---|" + "---|" * (len(PARTS) + 1)]
    for kind, p in profiles.items():
        lines.append(f"| {kind} | {p['ms_per_request']} | "
                     + " | ".join(f"{p['shares'][label]:.0%}" for label in [*(label for label, _ in PARTS), REST]) + " |")
    lines += ["", "Call trees: " + ", ".join(f"`{p['tree']}`" for p in profiles.values() if p.get("tree"))
              if any(p.get("tree") for p in profiles.values())
              else "(pyinstrument is not installed: no call trees; `pip install pyinstrument` for them)"]
    results_write(args.out, "decision-profile", {"machine": described, "requests": args.requests,
                                                 "profiles": profiles}, "\n".join(lines) + "\n")


def run(job):
    """In the production interpreter: profile each kind of request; print the result as one JSON line."""
    from django.test import Client

    seed = job["seed"]
    client = Client(HTTP_HOST="127.0.0.1")
    pharmacist = {"HTTP_AUTHORIZATION": f"Token {seed['tokens']['pharmacist']}"}
    prescriber = {"HTTP_AUTHORIZATION": f"Token {seed['tokens']['prescriber']}"}
    ndc = "59572-0504-21"
    dispense = iter(job["dispense"])
    prescribe = iter(job["prescribe"])
    kinds = {
        "trivial read": lambda: client.get(f"/api/v1/pharmacies/{seed['pharmacy_id']}/", **pharmacist),
        "dispense decision": lambda: client.post("/api/v1/dispense-authorizations/", json.dumps(dict(zip(
            ("authorization_number", "patient_date_of_birth"), next(dispense)), ndc=ndc, quantity=21, days_supply=28)),
            content_type="application/json", **pharmacist),
        "prescription decision": lambda: client.post("/api/v1/prescriptions/", json.dumps(
            {"patient": next(prescribe), "ndc": ndc, "quantity": 21, "days_supply": 28}),
            content_type="application/json", **prescriber),
    }
    expected = {"trivial read": 200, "dispense decision": 201, "prescription decision": 201}
    try:
        from pyinstrument import Profiler
    except ImportError:
        Profiler = None
    out = Path(job["out"])
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    n = job["requests"]
    for kind, call in kinds.items():
        for _ in range(5):  # warm up: imports, the connection, prepared statements, the rule sets held
            assert call().status_code == expected[kind]
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        for _ in range(n):
            response = call()
        profile.disable()
        elapsed = time.perf_counter() - started
        assert response.status_code == expected[kind], response.content[:500]
        results[kind] = {"requests": n, "ms_per_request": round(elapsed / n * 1000, 2),
                         "shares": _breakdown(profile, elapsed)}
        if Profiler is not None:  # the call tree, of as many other requests
            profiler = Profiler(interval=0.0005)
            profiler.start()
            for _ in range(n):
                call()
            profiler.stop()
            name = f"profile-{kind.replace(' ', '-')}.txt"
            (out / name).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
            results[kind]["tree"] = name
    print(json.dumps(results))


if __name__ == "__main__":
    main()
