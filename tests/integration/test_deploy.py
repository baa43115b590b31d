"""The production settings are safe by default, and the published OpenAPI schema is valid."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _manage(*args, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("REMS_ENV", "SECRET_KEY", "ALLOWED_HOSTS", "DJANGO_SETTINGS_MODULE")}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120)


def test_production_passes_the_deployment_checks_without_a_warning():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", REMS_ENV="production",
                     SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="rems.example.org")
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key():
    result = _manage("check", REMS_ENV="production", ALLOWED_HOSTS="rems.example.org")
    assert result.returncode != 0 and "SECRET_KEY must be set" in result.stderr


def test_the_openapi_schema_validates_without_warnings(tmp_path):
    result = _manage("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"),
                     REMS_ENV="development")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "/api/v1/dispense-authorizations/" in (tmp_path / "schema.yaml").read_text()
