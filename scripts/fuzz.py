"""Fuzz the API against its own OpenAPI schema, as every role, on a served instance of its own.

    .venv/bin/python scripts/fuzz.py [--max-examples N] [--seed N] [--role ROLE ...]

Creates a throwaway database (`rems_fuzz`, or FUZZ_DATABASE, on FUZZ_DATABASE_SERVER, by default
postgresql://postgres@127.0.0.1:5432), migrates it and seeds the demo data (`seed_demo --json`), serves the API
with gunicorn on a free port of 127.0.0.1 as the application's database role (`rems_app`), and issues a key for
each role of `accounts.models.Role` (the demo users' keys, and a user of its own for each role the demo has none
of). Through the API it then makes a few real objects (patients, an approved prescription authorization with its
RDA, one without) that the fuzzer is offered half of the time in place of generated ids and numbers, and runs
Schemathesis once per role with that role's key, on the operations the schema's `x-roles` allow it. Fails when
any answer is a 5xx or does not conform to the schema: an undocumented status code or content type, a body that
does not match its schema, a documented header missing. Requests create data (enrollments, decisions, users);
the database is dropped at the end, with the work folder.

Deterministic: a fixed seed, Hypothesis' derandomized mode, one worker; bounded by --max-examples per operation
(FUZZ_MAX_EXAMPLES) and a time limit for each role (FUZZ_ROLE_TIMEOUT).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from devserver import wait_until_up  # noqa: E402

PYTHON = str(ROOT / ".venv" / "bin" / "python")
BIN = ROOT / ".venv" / "bin"
SERVER = os.environ.get("FUZZ_DATABASE_SERVER", "postgresql://postgres@127.0.0.1:5432")
DATABASE = os.environ.get("FUZZ_DATABASE", "rems_fuzz")
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance")
# Readers first; those that can revoke keys and deactivate users last, so that no key is gone before its turn.
ORDER = ["auditor", "prescriber", "delegate", "pharmacist", "pharmacy_manager", "admin"]


def say(message):
    print(f"[fuzz] {message}", flush=True)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def admin_sql(statement):
    import psycopg

    with psycopg.connect(f"{SERVER}/postgres", autocommit=True) as conn:
        conn.execute(statement)


def manage(env, *args):
    return subprocess.run([PYTHON, str(ROOT / "manage.py"), *args], env=env, cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout


def call(base, method, path, token, body=None):
    request = urllib.request.Request(f"{base}{path}", method=method, data=json.dumps(body).encode() if body else None,
                                     headers={"Authorization": f"Token {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def role_keys(base, env, seed):
    """A key for every role: the demo's, and a new user's for each role the demo has no user of."""
    groups = json.loads(manage(env, "shell", "-c", (
        "import json; from accounts.models import Role, PRESCRIBER_ROLES, PHARMACY_ROLES; "
        "print(json.dumps({'roles': list(Role.values), 'prescriber': sorted(PRESCRIBER_ROLES), "
        "'pharmacy': sorted(PHARMACY_ROLES)}))")).strip().splitlines()[-1])
    keys = dict(seed["tokens"])
    for role in groups["roles"]:
        if role in keys:
            continue
        body = {"username": f"fuzz-{role}", "role": role}
        if role in groups["prescriber"]:
            body["prescriber"] = seed["prescriber_id"]
        elif role in groups["pharmacy"]:
            body["pharmacy"] = seed["pharmacy_id"]
        status, answer = call(base, "POST", "/api/v1/users/", seed["tokens"]["admin"], body)
        if status != 201:
            raise SystemExit(f"[fuzz] could not create a {role} user: {status} {answer}")
        keys[role] = answer["token"]
    missing = set(groups["roles"]) - set(keys)
    if missing:
        raise SystemExit(f"[fuzz] no key for {sorted(missing)}")
    return sorted(keys.items(), key=lambda item: ORDER.index(item[0]) if item[0] in ORDER else len(ORDER) - 1)


def fuzz_data(base, keys, seed):
    """Real objects for the fuzzer to find, made through the API as the service's users make them: patients, an
    approved prescription authorization with its RDA and one without. Returned as dictionaries of values."""
    prescriber, pharmacist, admin = keys["prescriber"], keys["pharmacist"], keys["admin"]
    status, programs = call(base, "GET", "/api/v1/programs/", admin)
    programs = programs["results"]
    pomalidomide = next(p for p in programs if p["slug"] == seed["program"])
    product = max(pomalidomide["products"], key=lambda p: p["strength_mg"])
    dobs, patients, prescriptions, numbers, rdas = ["1968-11-02", "1971-03-04"], [], [], [], []
    for dob in dobs:
        status, patient = call(base, "POST", "/api/v1/patients/", prescriber, {
            "program": seed["program"], "first_name": "Fuzz", "last_name": f"Patient {dob}", "date_of_birth": dob,
            "risk_category": "MALE_ADULT", "agreement_signed_on": time.strftime("%Y-%m-%d")})
        if status != 201:
            raise SystemExit(f"[fuzz] could not enroll a patient: {status} {patient}")
        patients.append(patient["id"])
        call(base, "POST", f"/api/v1/patients/{patient['id']}/attestations/", prescriber, {"kind": "male_counseling"})
        status, decision = call(base, "POST", "/api/v1/prescriptions/", prescriber, {
            "patient": patient["id"], "ndc": product["ndc"], "quantity": product["package_size"], "days_supply": 28})
        if status != 201:
            raise SystemExit(f"[fuzz] the prescription was not approved: {status} {decision}")
        prescriptions.append(decision["prescription_id"])
        numbers.append(decision["authorization_number"])
    status, rda = call(base, "POST", "/api/v1/dispense-authorizations/", pharmacist, {
        "authorization_number": numbers[0], "patient_date_of_birth": dobs[0], "ndc": product["ndc"],
        "quantity": product["package_size"], "days_supply": 28})
    if status != 201:
        raise SystemExit(f"[fuzz] the RDA was not approved: {status} {rda}")
    rdas.append(rda["rda_number"])
    _, certifications = call(base, "GET", f"/api/v1/prescribers/{seed['prescriber_id']}/certifications/", admin)
    _, pharmacy_certifications = call(base, "GET", f"/api/v1/pharmacies/{seed['pharmacy_id']}/certifications/", admin)
    _, users = call(base, "GET", "/api/v1/users/", admin)
    parameters = pomalidomide["rule_set"]["parameters"]
    return {
        "patient": patients, "prescription": prescriptions, "authorization_number": numbers, "rda_number": rdas,
        "date_of_birth": dobs, "ndc": [p["ndc"] for program in programs for p in program["products"]],
        "program": [p["slug"] for p in programs],
        "risk_category": sorted({c["name"] for p in programs for c in p["risk_categories"]}),
        "method": sorted(set(parameters.get("contraception_primary_methods", {}))
                         | set(parameters.get("contraception_secondary_methods", {}))),
        "prescriber": [seed["prescriber_id"]], "pharmacy": [seed["pharmacy_id"]],
        "certification": [c["id"] for c in certifications["results"] + pharmacy_certifications["results"]],
        "user": [u["id"] for u in users["results"]],
    }


# Where each dictionary's values go: (operations' path regex or None for all, parameter).
BINDINGS = [
    (r"^/api/v1/patients/\{id\}", "path.id", "patient"),
    (r"^/api/v1/prescriptions/\{id\}", "path.id", "prescription"),
    (r"^/api/v1/prescribers/\{id\}", "path.id", "prescriber"),
    (r"^/api/v1/pharmacies/\{id\}", "path.id", "pharmacy"),
    (r"^/api/v1/certifications/\{id\}", "path.id", "certification"),
    (r"^/api/v1/users/\{id\}/keys/$", "path.id", "user"),
    (r"^/api/v1/dispense-authorizations/\{rda_number\}", "path.rda_number", "rda_number"),
    (r"^/api/v1/programs/\{slug\}", "path.slug", "program"),
    (None, "body.patient", "patient"),
    (None, "query.patient", "patient"),
    (None, "body.authorization_number", "authorization_number"),
    (None, "body.patient_date_of_birth", "date_of_birth"),
    (None, "body.ndc", "ndc"),
    (None, "body.program", "program"),
    (None, "query.program", "program"),
    (None, "body.risk_category", "risk_category"),
    (None, "body.methods[*]", "method"),
    (None, "body.prescriber", "prescriber"),
    (None, "body.pharmacy", "pharmacy"),
]


def config_file(path, data, probability):
    """A schemathesis.toml that offers the fuzzer the real values half of the time (TOML strings as JSON's)."""
    lines = []
    for name, values in data.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps([str(v) for v in values])}", ""]
    binding = "{{ dictionary = {}, probability = {} }}"
    lines.append("[parameters]")
    for regex, parameter, name in BINDINGS:
        if regex is None and data.get(name):
            lines.append(f"{json.dumps(parameter)} = {binding.format(json.dumps(name), probability)}")
    lines.append("")
    for regex, parameter, name in BINDINGS:
        if regex is not None and data.get(name):
            lines += ["[[operations]]", f"include-path-regex = {json.dumps(regex)}",
                      f"parameters = {{ {json.dumps(parameter)} = {binding.format(json.dumps(name), probability)} }}",
                      ""]
    path.write_text("\n".join(lines))
    return path


def operations_by_role(base):
    """The operations each role may call (the schema's `x-roles`): every other one is refused with a 403 before
    anything is read, the same problem everywhere (tests/api/test_access_matrix.py)."""
    with urllib.request.urlopen(f"{base}/api/v1/schema/?format=json", timeout=30) as response:
        schema = json.loads(response.read())
    allowed = {}
    for item in schema["paths"].values():
        for operation in item.values():
            for role in operation.get("x-roles", ()):
                allowed.setdefault(role, []).append(operation["operationId"])
    return allowed


def fuzz(base, role, token, operations, args, workdir, config):
    command = [
        str(BIN / "st"), "--config-file", str(config), "run", f"{base}/api/v1/schema/?format=json", "--url", base,
        *[option for operation in operations for option in ("--include-operation-id", operation)],
        "--header", f"Authorization: Token {token}",
        "--checks", CHECKS,
        "--phases", "examples,coverage,fuzzing",
        "--max-examples", str(args.max_examples),
        "--seed", str(args.seed), "--generation-deterministic",
        "--generation-with-security-parameters", "false",
        "--suppress-health-check", "all",
        "--workers", "1", "--request-timeout", "30",
        "--no-color", "--output-truncate", "true",
    ]
    say(f"{role}: st run on the {len(operations)} operations the role may call, {args.max_examples} examples "
        "per operation at most")
    started = time.monotonic()
    try:
        result = subprocess.run(command, cwd=workdir, timeout=args.role_timeout)
        code = result.returncode
    except subprocess.TimeoutExpired:
        say(f"{role}: stopped after {args.role_timeout} s")
        code = 124
    say(f"{role}: exit {code} in {time.monotonic() - started:.0f} s")
    return code


def summary(access_log):
    """How many answers of each status each operation gave, to show how deep the fuzzing went."""
    import re
    from collections import Counter, defaultdict

    # a uuid, a number, or an RDA number; whatever else the fuzzer put in a path is shown as it was
    ids = re.compile(r"/(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9]+|"
                     r"R[0-9A-Z]{6,})(?=/|$)")
    counts = defaultdict(Counter)
    for line in access_log.read_text(errors="replace").splitlines():
        method, _, rest = line.partition(" ")
        path, _, status = rest.rpartition(" ")
        if path.startswith("/api/v1/") and not path.startswith("/api/v1/schema"):
            counts[f"{method} {ids.sub('/{id}', path)}"][status] += 1
    say("answers per operation (status: count):")
    for operation in sorted(counts):
        if sum(counts[operation].values()) >= 5:
            print(f"  {operation}: " + ", ".join(f"{s} {n}" for s, n in sorted(counts[operation].items())))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=int(os.environ.get("FUZZ_MAX_EXAMPLES", "10")))
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--role-timeout", type=int, default=int(os.environ.get("FUZZ_ROLE_TIMEOUT", "300")))
    parser.add_argument("--role", action="append", help="fuzz these roles only (default: every role)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="rems-fuzz-"))
    for folder in ("queue", "processed", "control"):
        (workdir / "broker" / folder).mkdir(parents=True)
    database_url = f"{SERVER}/{DATABASE}"
    # The served instance: development mode without DEBUG, the filesystem broker in the work folder (no worker
    # runs; the tasks it queues are dropped with it), this database only.
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_ROLE", "DJANGO_SETTINGS_MODULE")}
    env.update(REMS_ENV="development", DEBUG="false", DATABASE_URL=database_url, REMS_LOCAL_DIR=str(workdir),
               LOG_LEVEL="WARNING", PYTHONUNBUFFERED="1")
    server = None
    log = workdir / "gunicorn.log"
    started = time.monotonic()
    try:
        admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        admin_sql(f'CREATE DATABASE "{DATABASE}"')
        say(f"database {DATABASE}: migrate and seed_demo")
        manage(env, "migrate", "--noinput", "-v", "0")
        seed = json.loads(manage(env, "seed_demo", "--json"))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        say(f"serving the API at {base} (gunicorn, as the database role rems_app)")
        with open(log, "w") as out:
            server = subprocess.Popen(
                [str(BIN / "gunicorn"), "rems.config.wsgi", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                 "--threads", "2", "--timeout", "60", "--graceful-timeout", "5",
                 "--access-logfile", str(workdir / "access.log"), "--access-logformat", "%(m)s %(U)s %(s)s"],
                env={**env, "DATABASE_ROLE": "rems_app"}, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not wait_until_up(f"{base}/healthz", timeout=60, server=server):
            print(log.read_text()[-5000:])
            raise SystemExit("[fuzz] the API did not come up")
        keys = role_keys(base, env, seed)
        if args.role:
            keys = [(role, token) for role, token in keys if role in args.role]
        say(f"roles: {', '.join(role for role, _ in keys)}")
        allowed = operations_by_role(base)
        config = config_file(workdir / "schemathesis.toml", fuzz_data(base, dict(keys), seed), 0.5)
        results = {role: fuzz(base, role, token, allowed[role], args, workdir, config) for role, token in keys}
        summary(workdir / "access.log")
        failed = [role for role, code in results.items() if code != 0]
        errors = [line for line in log.read_text().splitlines() if "Traceback" in line or "ERROR" in line]
        if errors:
            say("the server logged errors:")
            print(log.read_text()[-20000:])
        say(f"{len(results)} roles in {time.monotonic() - started:.0f} s: "
            + ", ".join(f"{role} {'ok' if code == 0 else 'FAILED'}" for role, code in results.items()))
        if failed or errors:
            say("FAILED")
            return 1
        say("ok")
        return 0
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
        try:
            admin_sql(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001 - report, and still remove the work folder
            say(f"could not drop {DATABASE}: {exc}")
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
