"""What the benchmarks share: the machine's description, wrk (from Debian's packages) and its Lua scripts, the
percentiles of a list of latencies, and writing a result as JSON and Markdown under bench-results/."""

import io
import json
import os
import platform
import re
import shutil
import subprocess
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


# Filling a benchmark's database takes statements far longer than any request's: the limits a serving process puts
# on its waits (settings, "Bounded waits") are lifted for the benchmarks' own processes, as for a management
# command, and never for the server or the sweep being measured (`serving_env`).
SETUP_ENV = {"REMS_DB_STATEMENT_TIMEOUT": "0", "REMS_DB_LOCK_TIMEOUT": "0",
             "REMS_DB_IDLE_IN_TRANSACTION_TIMEOUT": "0", "REMS_DB_WAIT_TIMEOUT": "0"}
os.environ.update(SETUP_ENV)


def demo_database(url, **env):
    """Django set up on the database `url` (development settings, with `env`), migrated, with the demo data: returns
    what `seed_demo --json` printed (the demo parties' ids and keys)."""
    os.environ.update(DATABASE_URL=url, REMS_ENV="development", LOG_LEVEL="WARNING",
                      DJANGO_SETTINGS_MODULE="rems.config.settings", **env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    printed = io.StringIO()
    call_command("seed_demo", "--json", stdout=printed)
    return json.loads(printed.getvalue())


def serving_env(env=None):
    """`env` (the environment by default) with the limits of a serving process as the settings give them."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in SETUP_ENV}


def machine(database_url=None):
    """The machine a result was measured on: CPUs, memory, OS, Python, PostgreSQL, wrk."""
    memory = ""
    try:
        kib = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
        memory = f"{kib / 1024 / 1024:.0f} GiB"
    except (OSError, AttributeError):
        pass
    described = {"cpus": os.cpu_count(), "memory": memory, "platform": platform.platform(),
                 "python": platform.python_version(), "load_average": [round(x, 2) for x in os.getloadavg()]}
    if database_url:
        import psycopg

        with psycopg.connect(database_url) as conn:
            described["postgresql"] = conn.execute("SHOW server_version").fetchone()[0]
            for setting in ("shared_buffers", "synchronous_commit", "max_wal_size"):
                described[setting] = conn.execute(f"SHOW {setting}").fetchone()[0]
    wrk = shutil.which("wrk")
    if wrk:
        described["wrk"] = subprocess.run([wrk, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    return described


def machine_line(described):
    return (f"{described['cpus']} CPUs, {described.get('memory') or '?'} of memory, {described['platform']}, "
            f"Python {described['python']}, PostgreSQL {described.get('postgresql', '?')} on the same machine "
            f"(shared_buffers {described.get('shared_buffers', '?')}, synchronous_commit "
            f"{described.get('synchronous_commit', '?')}); load average before the run "
            f"{', '.join(str(x) for x in described['load_average'])}.")


def wrk_install():
    """wrk's path: from Debian's packages, installed when missing (as root, or with sudo)."""
    wrk = shutil.which("wrk")
    if wrk:
        return wrk
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print("[bench] installing wrk from Debian's packages", flush=True)
    subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "wrk"], check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    if not shutil.which("wrk"):
        subprocess.run([*prefix, "apt-get", "update", "-q"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run([*prefix, "apt-get", "install", "-y", "-q", "wrk"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("wrk")


def wrk_run(url, *, seconds, connections, headers=(), cases=None, method="GET", threads=2):
    """One closed-loop run of wrk: `connections` connections on `threads` threads for `seconds`. With `cases` (a
    file of request bodies, one a line), each request posts the next body of its thread's share, never the same
    body twice while the file lasts. Returns requests, requests/s, latency percentiles (ms), statuses and
    errors, as wrk's Lua `done` reports them."""
    command = [wrk_install(), "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--latency",
               "--timeout", "30s", "-s", str(HERE / "wrk_report.lua")]
    for header in headers:
        command += ["-H", header]
    command.append(url)
    command += ["--", method, str(cases or ""), str(threads)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120)
    line = next((ln for ln in result.stdout.splitlines() if ln.startswith("JSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk failed: {result.stdout[-2000:]} {result.stderr[-2000:]}")
    report = json.loads(line[5:])
    duration = report.pop("duration_us") / 1e6
    report["seconds"] = round(duration, 2)
    report["per_second"] = round(report["requests"] / duration, 1) if duration else 0.0
    report["connections"] = connections
    return report


def wrk_warm_up(url, *, headers=(), limit_s=90):
    """Load `url` until every server process answers fast (gunicorn's workers load the application each on its own,
    after the port is already open) and the persistent connections and prepared statements exist: runs of 2 s until
    one has a p99 under 250 ms, for `limit_s` at most."""
    deadline = time.monotonic() + limit_s
    while True:
        report = wrk_run(url, seconds=2, connections=8, headers=headers)
        if (report["requests"] > 50 and report["p99_ms"] < 250) or time.monotonic() > deadline:
            return report


def percentiles(latencies_s):
    """p50, p90, p99, p99.9 and the maximum of latencies in seconds, in milliseconds."""
    values = sorted(latencies_s)
    if not values:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "p999_ms": None, "max_ms": None}

    def at(p):
        return round(values[min(len(values) - 1, int(p * len(values)))] * 1000, 1)

    return {"p50_ms": at(0.50), "p90_ms": at(0.90), "p99_ms": at(0.99), "p999_ms": at(0.999),
            "max_ms": round(values[-1] * 1000, 1)}


def results_write(out, name, results, markdown):
    """bench-results/<name>.json and <name>.md."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(results, indent=2, default=str))
    (out / f"{name}.md").write_text(markdown)
    print(markdown, flush=True)
