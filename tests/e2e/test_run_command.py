"""The README's run command from scratch: its own PostgreSQL (embedded) and filesystem broker, the API, a worker
and beat; the main flows over real HTTP; Ctrl-C stops everything it started."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[2]


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url):
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def test_the_run_command_serves_the_flows_and_stops_cleanly(tmp_path):
    port = _free_port()
    local = tmp_path / "local"
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE",
                                                             "REMS_ENV")}
    env.update(REMS_LOCAL_DIR=str(local), PORT=str(port))
    process = subprocess.Popen([sys.executable, "scripts/devserver.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    output = []
    ready = threading.Event()

    def read():
        for line in process.stdout:
            output.append(line)
            if "Ctrl-C stops everything" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(180), "".join(output[-40:])
        base = f"http://127.0.0.1:{port}"
        text = "".join(output)
        assert f"{base}/api/v1/docs/" in text and "demo pharmacist" in text
        status, page = _get(f"{base}/api/v1/docs/")
        assert status == 200 and b"swagger-ui" in page
        assert _get(f"{base}/readyz")[0] == 200
        smoke = subprocess.run([sys.executable, "scripts/smoke.py", base, "--keys", str(local / "demo-keys.json")],
                               cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert smoke.returncode == 0, smoke.stdout + smoke.stderr
        assert "all flows passed" in smoke.stdout
        children = psutil.Process(process.pid).children(recursive=True)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            raise AssertionError("Ctrl-C did not stop the service:\n" + "".join(output[-60:])) from None
    time.sleep(1)
    assert not [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
    assert not [p for p in psutil.process_iter(["cmdline"]) if str(local) in " ".join(p.info["cmdline"] or [])]
