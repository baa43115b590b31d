"""Settings, read from the environment.

`REMS_ENV` chooses the mode:
- `production` (the default): DEBUG off, a `SECRET_KEY` and `ALLOWED_HOSTS` must be given, cookies are
  HTTPS-only. Nothing falls back to a development value.
- `development`: DEBUG on, a fixed development key, localhost only; every response carries
  `X-REMS-Environment: development` and the log says so at start-up.
- `test`: like development but quiet and with fast password hashing.
"""

import os
import sys
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent

REMS_ENV = os.environ.get("REMS_ENV", "production").strip().lower()
if REMS_ENV not in {"production", "development", "test"}:
    raise ImproperlyConfigured(f"REMS_ENV must be production, development or test, not {REMS_ENV!r}")
PRODUCTION = REMS_ENV == "production"


def _env_list(name, default=""):
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


def _env_bool(name, default):
    raw = os.environ.get(name)
    if raw is None:
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


if PRODUCTION:
    try:
        SECRET_KEY = os.environ["SECRET_KEY"]
    except KeyError:
        raise ImproperlyConfigured("SECRET_KEY must be set in production (REMS_ENV=production).") from None
    if len(SECRET_KEY) < 50:
        raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters long.")
    ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS")
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production (comma-separated host names).")
    DEBUG = False
else:
    SECRET_KEY = os.environ.get("SECRET_KEY", "development-only-key-never-use-in-production-" + "x" * 20)
    ALLOWED_HOSTS = _env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1],testserver")
    DEBUG = _env_bool("DEBUG", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    # The domain, lowest first: users and keys; the program's records (label `rems`); prescriptions and dispenses.
    "accounts",
    "rems.program",
    "dispensing",
    # The interfaces: the admin site's registrations, Celery tasks and commands; the web portal.
    "rems.interfaces",
    "rems.interfaces.portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "rems.config.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "rems.config.middleware.UserTimeZoneMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "rems.config.middleware.ContentSecurityPolicyMiddleware",
    # Nearest the views: the longer database limits of the auditor's whole-log views (docs/operations.md,
    # "Degraded mode").
    "rems.config.middleware.LongDatabaseWorkMiddleware",
]

ROOT_URLCONF = "rems.config.urls"
WSGI_APPLICATION = "rems.config.wsgi.application"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_LOCAL_DIR = Path(os.environ.get("REMS_LOCAL_DIR", BASE_DIR / ".local"))
# In development, with no DATABASE_URL, a command run beside `make run` finds the embedded server it started.
_EMBEDDED_URL_FILE = _LOCAL_DIR / "database-url"
DATABASE_URL = os.environ.get("DATABASE_URL") or (
    _EMBEDDED_URL_FILE.read_text().strip()
    if REMS_ENV == "development" and _EMBEDDED_URL_FILE.exists()
    else "postgresql://postgres@127.0.0.1:5432/rems"
)


# --- Bounded waits (docs/operations.md, "Degraded mode") -----------------------------------------------------
# A process that serves (gunicorn, runserver, a Celery worker or beat) never waits on the database without bound.
# A management command (migrate, verify_log, load_program) is watched by whoever runs it and may rightly run long:
# it gets none of the statement and wait limits below unless they are set in its environment. Nor does the test
# suite's own process, whose races queue dozens of requests on one lock on purpose; the service it serves in
# tests/integration/test_degraded.py does.
def is_management_command(argv):
    """Whether this process (its `sys.argv`) runs a management command other than `runserver`."""
    program = Path(argv[0]).name if argv else ""
    if program in {"manage.py", "django-admin"} or argv[:1] and argv[0].endswith("django/__main__.py"):
        return len(argv) > 1 and argv[1] != "runserver"
    return False


_SERVING = not is_management_command(sys.argv) and "pytest" not in sys.modules


def _seconds(name, serving_default, other_default=0.0):
    """A duration in seconds from the environment; 0 means no limit."""
    raw = os.environ.get(name)
    try:
        value = float(raw) if raw is not None else (serving_default if _SERVING else other_default)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number of seconds, not {raw!r}") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative")
    return value


# Server side, per statement: a decision makes about a dozen statements of a few milliseconds each. A statement
# still running after REMS_DB_STATEMENT_TIMEOUT is cancelled by the server; a lock not granted within
# REMS_DB_LOCK_TIMEOUT ends the wait; a session idle inside a transaction for REMS_DB_IDLE_IN_TRANSACTION_TIMEOUT
# is ended, so that no lost client holds row locks.
REMS_DB_STATEMENT_TIMEOUT = _seconds("REMS_DB_STATEMENT_TIMEOUT", 5)
REMS_DB_LOCK_TIMEOUT = _seconds("REMS_DB_LOCK_TIMEOUT", 3)
REMS_DB_IDLE_IN_TRANSACTION_TIMEOUT = _seconds("REMS_DB_IDLE_IN_TRANSACTION_TIMEOUT", 60)
# Client side, per reply (rems/config/postgresql/base.py): a server that does not answer at all (frozen) is given
# up after REMS_DB_WAIT_TIMEOUT, 2 s after the server would have cancelled the statement itself; a connection's
# health check (its first query in a request) after REMS_DB_PING_TIMEOUT; a new connection after
# REMS_DB_CONNECT_TIMEOUT. So a request whose server stops answering fails within 2 + 3 s when its connection is
# found dead at its first query, and within 7 s when the server freezes under one of its statements.
REMS_DB_WAIT_TIMEOUT = _seconds("REMS_DB_WAIT_TIMEOUT", (REMS_DB_STATEMENT_TIMEOUT or 5) + 2)
REMS_DB_PING_TIMEOUT = _seconds("REMS_DB_PING_TIMEOUT", 2, 2)
# A connection in steady use is not pinged at every request (rems/config/postgresql/base.py, `is_usable`): only
# once it has gone this long without a check; in between, a server that ended the session is noticed without a
# round trip, and one that froze by the first statement's REMS_DB_WAIT_TIMEOUT.
REMS_DB_PING_IDLE = _seconds("REMS_DB_PING_IDLE", 5, 5)
REMS_DB_CONNECT_TIMEOUT = max(1, round(_seconds("REMS_DB_CONNECT_TIMEOUT", 3, 3)))
# The auditor's exports and the log's verification read the whole log in one statement: their views (by URL name)
# get REMS_DB_LONG_STATEMENT_TIMEOUT instead (rems/config/middleware.py).
REMS_DB_LONG_STATEMENT_TIMEOUT = _seconds("REMS_DB_LONG_STATEMENT_TIMEOUT", 600)
REMS_DB_LONG_VIEWS = ("audit-export-csv", "audit-export-jsonl", "audit-verify", "portal:audit-export")


def _ms(seconds):
    return f"{round(seconds * 1000)}ms"


DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DB_CONN_MAX_AGE", "60")),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ENGINE"] = "rems.config.postgresql"
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].update({
    # A decision that cannot reach the database in time is refused, not left hanging.
    "connect_timeout": REMS_DB_CONNECT_TIMEOUT,
    # A server whose host or network is gone is noticed on an idle connection within 10 + 3 x 3 s, and on one
    # waiting for acknowledgements within 10 s, instead of the kernel's 2 hours and 15 minutes.
    "keepalives": 1,
    "keepalives_idle": 10,
    "keepalives_interval": 3,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
})
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_rems")}
# DATABASE_ROLE: the role the application acts as once connected (SET ROLE), e.g. rems_app, which may only read
# and append the compliance log. Migrations run without it, as the tables' owner.
DATABASE_ROLE = os.environ.get("DATABASE_ROLE", "").strip()
if DATABASE_ROLE and not DATABASE_ROLE.replace("_", "").isalnum():
    raise ImproperlyConfigured("DATABASE_ROLE must be a plain role name.")
# Session settings given at connection, one `-c name=value` each (settings that follow add theirs to the string).
DATABASES["default"]["OPTIONS"]["options"] = " ".join(
    f"-c {name}={value}"
    for name, value in (
        ("role", DATABASE_ROLE),
        ("statement_timeout", _ms(REMS_DB_STATEMENT_TIMEOUT)),
        ("lock_timeout", _ms(REMS_DB_LOCK_TIMEOUT)),
        ("idle_in_transaction_session_timeout", _ms(REMS_DB_IDLE_IN_TRANSACTION_TIMEOUT)),
    )
    if value and value != "0ms"
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if REMS_ENV == "test":
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
# Every rule window is computed in UTC; dates typed by people (birth dates, start dates) are calendar dates.
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
# Collected for production only; elsewhere WhiteNoise serves the apps' static files straight from their folders.
STATIC_ROOT = BASE_DIR / "staticfiles" if PRODUCTION else None
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

# --- Security -------------------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Browser sessions of the portal: a counter or a practice workstation is shared, so a session lasts a working day
# at most and ends when the browser closes.
SESSION_COOKIE_AGE = int(os.environ.get("SESSION_COOKIE_AGE", str(8 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
LOGIN_URL = "portal:login"
LOGIN_REDIRECT_URL = "portal:home"
# Every HTML page may load scripts, styles and images from this service only, and no inline script or style.
# The API's interactive documentation (Swagger UI) needs inline code and is the one exception.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
CONTENT_SECURITY_POLICY_EXEMPT = ("/api/v1/docs/",)
if PRODUCTION:
    SECURE_SSL_REDIRECT = _env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    CSRF_TRUSTED_ORIGINS = _env_list("CSRF_TRUSTED_ORIGINS")

# --- Celery ---------------------------------------------------------------------------------------------
# With no REDIS_URL the broker is kombu's filesystem transport under LOCAL_STATE_DIR, so that the
# development service needs no server set up by hand. Tests and production give a Redis URL.
LOCAL_STATE_DIR = _LOCAL_DIR
REDIS_URL = os.environ.get("REDIS_URL", "")
# The longest any call to the broker may wait (connect, publish, read a reply), in seconds.
REMS_BROKER_TIMEOUT = _seconds("REMS_BROKER_TIMEOUT", 3, 3) or 3
# /readyz answers within this many seconds whatever its database and broker probes are waiting for.
REMS_READYZ_TIMEOUT = _seconds("REMS_READYZ_TIMEOUT", 2, 2) or 2
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": 3600,
        # No call to Redis waits longer than REMS_BROKER_TIMEOUT: connecting, publishing, reading a reply (a
        # worker's blocking read for the next task waits 1 s at a time, well within it).
        "socket_connect_timeout": REMS_BROKER_TIMEOUT,
        "socket_timeout": REMS_BROKER_TIMEOUT,
        "socket_keepalive": True,
        "retry_on_timeout": False,
        # A pooled connection idle this long is pinged before it is used again, so a dead one is replaced.
        "health_check_interval": 25,
        # Publishing: one more connection attempt at most, then the error (a publish is never what a request waits
        # for: rems/program/notifications.py).
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.5,
        "interval_max": 1,
    }
else:
    _broker_dir = LOCAL_STATE_DIR / "broker"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Publishing never hangs a request (requests do not publish; see rems/program/notifications.py), and a broker
# outage is noticed within REMS_BROKER_TIMEOUT by whoever does publish.
CELERY_BROKER_CONNECTION_TIMEOUT = REMS_BROKER_TIMEOUT
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1}
CELERY_BEAT_SCHEDULE_FILENAME = str(LOCAL_STATE_DIR / "celerybeat-schedule")

# --- REST framework -------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rems.interfaces.api.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # A 400 for any body, however deep or oddly encoded (rems/interfaces/api/parsers.py).
    "DEFAULT_PARSER_CLASSES": ["rems.interfaces.api.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "rems.interfaces.api.pagination.CursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "rems.interfaces.api.problems.exception_handler",
    # Paginated lists, their parameters and every error status per operation (rems/interfaces/api/schema.py).
    "DEFAULT_SCHEMA_CLASS": "rems.interfaces.api.schema.ApiSchema",
    "UNAUTHENTICATED_USER": None,
    # ASCII-escaped JSON: an error message that repeats a lone surrogate from the input cannot break rendering.
    "UNICODE_JSON": False,
}
# A missing trailing slash is a 404 problem, not a redirect that loses the body of a POST.
APPEND_SLASH = False
SPECTACULAR_SETTINGS = {
    "TITLE": "REMS dispensing compliance service",
    "DESCRIPTION": (
        "Gates every prescription authorization and pharmacy dispense authorization of a REMS program. "
        "Authenticate with `Authorization: Token <key>`. Errors are application/problem+json."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Logging --------------------------------------------------------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain", "stream": sys.stderr}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "WARNING" if REMS_ENV == "test" else "INFO")},
    "loggers": {"django.request": {"level": "ERROR"}},
}
CSRF_FAILURE_VIEW = "rems.config.handlers.csrf_failure"

# --- Periodic tasks: the one place where their schedule lives (see docs/operations.md) ------------------
CELERY_BEAT_SCHEDULE = {
    "expire-lapsed": {"task": "dispensing.expire_lapsed", "schedule": 60.0},
    "deliver-due-notifications": {"task": "rems.deliver_due", "schedule": 60.0},
    "plan-reminders": {"task": "rems.plan_reminders", "schedule": 300.0},
}
# The expiry sweep works on this many database connections at once (its batches never share a row).
REMS_SWEEP_WORKERS = int(os.environ.get("REMS_SWEEP_WORKERS", "2"))
# Alerts (a positive pregnancy test) go to their own queue, so that reminders never hold them up.
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("REMS_QUEUE", "celery")
REMS_ALERTS_QUEUE = os.environ.get("REMS_ALERTS_QUEUE", "alerts")

# --- Email ----------------------------------------------------------------------------------------------
# Production: SMTP (EMAIL_HOST, EMAIL_PORT, EMAIL_HOST_USER, EMAIL_HOST_PASSWORD, EMAIL_USE_TLS).
# Development: files under .local/mail, one per message. EMAIL_BACKEND overrides either.
EMAIL_BACKEND = os.environ.get(
    "EMAIL_BACKEND",
    "django.core.mail.backends.smtp.EmailBackend" if PRODUCTION else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = os.environ.get("EMAIL_FILE_PATH", str(LOCAL_STATE_DIR / "mail"))
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _env_bool("EMAIL_USE_TLS", PRODUCTION)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = os.environ.get("DEFAULT_FROM_EMAIL", "REMS service <rems@localhost>")

# --- Guessing and logins ------------------------------------------------------------------------------------
# Dispense-authorization requests per minute, per API key and per pharmacy (counted in the database, shared by
# every process). Failed matches from one pharmacy before its further attempts are refused until a program
# administrator clears them: wrong birth dates for one authorization number, and unknown authorization numbers
# within 24 hours. Browser and admin-site logins: failures before a lockout, and its length.
REMS_DISPENSE_RATE_PER_KEY = int(os.environ.get("REMS_DISPENSE_RATE_PER_KEY", "60"))
REMS_DISPENSE_RATE_PER_PHARMACY = int(os.environ.get("REMS_DISPENSE_RATE_PER_PHARMACY", "300"))
REMS_BIRTH_DATE_FAILURES = int(os.environ.get("REMS_BIRTH_DATE_FAILURES", "3"))
REMS_UNKNOWN_NUMBER_FAILURES = int(os.environ.get("REMS_UNKNOWN_NUMBER_FAILURES", "10"))
REMS_LOGIN_FAILURES = int(os.environ.get("REMS_LOGIN_FAILURES", "5"))
REMS_LOGIN_LOCKOUT_MINUTES = int(os.environ.get("REMS_LOGIN_LOCKOUT_MINUTES", "15"))
AUTHENTICATION_BACKENDS = ["accounts.backends.LockoutModelBackend"]

# --- Compliance log checkpoints ---------------------------------------------------------------------------
# Signed checkpoints of the log's chains, kept outside PostgreSQL (rems/compliance_log/checkpoints.py and
# docs/operations.md): a folder by default, or an S3-compatible bucket. The signing key never enters the
# database; it is created on first use if LOG_CHECKPOINT_KEY_FILE does not exist. Public keys of earlier keys
# (kept by `manage.py log_checkpoint --rotate-key`) are trusted from LOG_CHECKPOINT_TRUSTED_KEYS_DIR.
LOG_CHECKPOINT_DIR = os.environ.get("LOG_CHECKPOINT_DIR", str(LOCAL_STATE_DIR / "checkpoints"))
LOG_CHECKPOINT_KEY_FILE = os.environ.get("LOG_CHECKPOINT_KEY_FILE", str(LOCAL_STATE_DIR / "checkpoint-key.pem"))
LOG_CHECKPOINT_TRUSTED_KEYS_DIR = os.environ.get(
    "LOG_CHECKPOINT_TRUSTED_KEYS_DIR", str(Path(LOG_CHECKPOINT_KEY_FILE).parent / "checkpoint-trusted-keys"))
# Create the signing key where it is missing: outside production only, by default. In production the key is given
# to the process that signs (beat); the others compare with the checkpoints using the public keys only.
LOG_CHECKPOINT_CREATE_KEY = _env_bool("LOG_CHECKPOINT_CREATE_KEY", not PRODUCTION)
LOG_CHECKPOINT_S3_BUCKET = os.environ.get("LOG_CHECKPOINT_S3_BUCKET", "")
LOG_CHECKPOINT_S3_PREFIX = os.environ.get("LOG_CHECKPOINT_S3_PREFIX", "checkpoints/")
LOG_CHECKPOINT_S3_ENDPOINT = os.environ.get("LOG_CHECKPOINT_S3_ENDPOINT", "")
CELERY_BEAT_SCHEDULE["log-checkpoint"] = {"task": "rems.log_checkpoint", "schedule": 60.0}  # noqa: F405
