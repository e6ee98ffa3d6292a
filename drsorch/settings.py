"""Settings for drsorch, read from the environment (and a `.env` file) with django-environ.

Every variable is listed in docs/configuration.md and in the public contract.
"""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

from drsorch.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# A development key is accepted only with DEBUG on: a production process refuses to start
# without a real SECRET_KEY rather than sign sessions with a key published on GitHub.
_DEV_SECRET_KEY = "drsorch-insecure-development-key-do-not-use-in-production"
SECRET_KEY = env.str("SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY or (not DEBUG and SECRET_KEY == _DEV_SECRET_KEY):
    raise ImproperlyConfigured(
        "SECRET_KEY must be set when DEBUG is false. Generate one with: "
        "python -c 'import secrets; print(secrets.token_urlsafe(50))'"
    )

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_filters",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "drsorch",
    "drsorch.sandbox",
    "plans",
    "executions",
    "notifications",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "drsorch.monitoring.MetricsFlushMiddleware",
]

ROOT_URLCONF = "drsorch.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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

WSGI_APPLICATION = "drsorch.wsgi.application"


# --- Databases -----------------------------------------------------------------------------
# SQLite is tuned so that the web server, the django-q2 worker and management commands can
# write at the same time: WAL lets readers run beside a writer, the busy timeout makes a
# second writer wait instead of failing, and IMMEDIATE transactions take the write lock at
# BEGIN, so two writers never deadlock upgrading a read lock half-way through.
SQLITE_OPTIONS = {
    "timeout": 30,
    "transaction_mode": "IMMEDIATE",
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def _database(url):
    config = env.db_url_config(url)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        config.setdefault("OPTIONS", {}).update(SQLITE_OPTIONS)
    config.setdefault("CONN_HEALTH_CHECKS", True)
    return config


def _sandbox_database(default_url, default_config):
    """Where the simulated DRS keeps its state: a sibling SQLite file, or the same PostgreSQL
    database through a separate connection (so a caller's rollback never undoes "AWS")."""
    if env.str("DRSORCH_SANDBOX_DATABASE_URL", default=""):
        return _database(env.str("DRSORCH_SANDBOX_DATABASE_URL")), False
    if default_config["ENGINE"] == "django.db.backends.sqlite3":
        name = str(default_config["NAME"])
        if name in ("", ":memory:"):
            return _database("sqlite://:memory:"), False
        path = Path(name)
        sibling = path.with_name(f"{path.stem}-sandbox.sqlite3")
        return _database(f"sqlite:///{sibling}"), False
    config = _database(default_url)
    # Same physical database, so the test run must not create it twice under one name.
    config["TEST"] = {"NAME": f"test_{config['NAME']}_sandbox"}
    return config, True


DATABASE_URL = env.str("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")
_default_db = _database(DATABASE_URL)
_sandbox_db, SANDBOX_SHARES_DEFAULT_DATABASE = _sandbox_database(DATABASE_URL, _default_db)
DATABASES = {"default": _default_db, "sandbox": _sandbox_db}
DATABASE_ROUTERS = ["drsorch.sandbox.routers.SandboxRouter"]

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


# --- Auth ----------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"


# --- Security posture when not in DEBUG --------------------------------------------------------
# Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_ENABLED=true; the cookie and
# HSTS settings below then hold. See docs/configuration.md.
if not DEBUG:
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
    SECURE_CONTENT_TYPE_NOSNIFF = True
    SECURE_REFERRER_POLICY = "same-origin"
    X_FRAME_OPTIONS = "DENY"
    if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True


# --- Internationalisation -------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True


# --- Static files (served by WhiteNoise) -------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG


# --- django-q2: the ORM broker by default, Redis when REDIS_URL is set ---------------------------
REDIS_URL = env.str("REDIS_URL", default="")
Q_CLUSTER = {
    "name": "drsorch",
    "workers": env.int("DRSORCH_Q_WORKERS", default=2),
    # A poller task runs for a few seconds (executions.poller.POLLER_WINDOW_SECONDS) plus at
    # most one tick, so a stopping cluster waits for it only briefly; timeout (a hung task is
    # killed) leaves ample room for a slow tick, and must stay below retry so that the ORM
    # broker never hands a task to a second worker while the first still runs it
    # (tests/executions/test_poller.py checks both).
    "timeout": 90,
    "retry": 120,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 500,
    "ack_failures": True,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 1


# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "EXCEPTION_HANDLER": "drsorch.api.exception_handler",
    # DRF's defaults, with JSON nested past Python's recursion limit and NUL characters refused as
    # parse errors (drsorch/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "drsorch.parsers.JSONParser",
        "drsorch.parsers.FormParser",
        "drsorch.parsers.MultiPartParser",
    ],
}
SPECTACULAR_SETTINGS = {
    "TITLE": "drsorch API",
    "DESCRIPTION": "Disaster-recovery orchestration on AWS Elastic Disaster Recovery.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # An execution's status appears in the execution JSON and in a plan's history: one enum,
    # under the name the schema always gave it.
    "ENUM_NAME_OVERRIDES": {"ExecutionStatusEnum": "executions.choices.ExecutionStatus"},
}


# --- drsorch ----------------------------------------------------------------------------------
# The poller's pace (executions/poller.py): every DRSORCH_POLL_FAST_SECONDS while anything moves
# (2 s: a wave starts within ~3 s of DRS ending the previous one, and no target is asked
# DescribeJobs for its jobs more than once per 2 s), every DRSORCH_POLL_SECONDS when only long
# waits remain (a gate not yet approved, a wave's wait). The fast pace is never slower.
DRSORCH_POLL_SECONDS = env.float("DRSORCH_POLL_SECONDS", default=15)
DRSORCH_POLL_FAST_SECONDS = env.float("DRSORCH_POLL_FAST_SECONDS", default=2)
DRSORCH_SANDBOX_LAUNCH_SECONDS = env.float("DRSORCH_SANDBOX_LAUNCH_SECONDS", default=20)
DRSORCH_ADMIN_PASSWORD = env.str("DRSORCH_ADMIN_PASSWORD", default="")
# DRS calls made at once by a tick (poll, launches, log reads of different targets): a pool
# thread mostly waits on the network, and ten targets with two log reads each fit in one round.
DRSORCH_DRS_CONCURRENCY = env.int("DRSORCH_DRS_CONCURRENCY", default=32)
if DRSORCH_DRS_CONCURRENCY < 1:
    raise ImproperlyConfigured(f"DRSORCH_DRS_CONCURRENCY must be at least 1, not {DRSORCH_DRS_CONCURRENCY}.")
# How often the worker's readiness watch evaluates every plan (and sends drill.overdue):
# drsorch/schedules.py reads it when `setup_schedules` (or `make run`) registers the schedule.
DRSORCH_READINESS_WATCH_MINUTES = env.int("DRSORCH_READINESS_WATCH_MINUTES", default=30)
if not 1 <= DRSORCH_READINESS_WATCH_MINUTES <= 1440:
    raise ImproperlyConfigured(
        f"DRSORCH_READINESS_WATCH_MINUTES must be from 1 to 1440, not {DRSORCH_READINESS_WATCH_MINUTES}."
    )

# /metrics is open when unset; set it to require "Authorization: Bearer <token>".
DRSORCH_METRICS_TOKEN = env.str("DRSORCH_METRICS_TOKEN", default="")

# drsorch's public address, for the absolute links of notifications (emails, webhooks).
DRSORCH_BASE_URL = env.str("DRSORCH_BASE_URL", default="http://127.0.0.1:8000")

# Notifications (notifications/): mail through EMAIL_URL (django-environ's form, e.g.
# smtp+tls://user:password@smtp.example.com:587; default: printed to the console).
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://")
globals().update({key: value for key, value in EMAIL_CONFIG.items() if value not in (None, "")})
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="drsorch <drsorch@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Webhooks to loopback, private, link-local and reserved addresses are refused unless true.
DRSORCH_WEBHOOK_ALLOW_PRIVATE = env.bool("DRSORCH_WEBHOOK_ALLOW_PRIVATE", default=False)

# text (default) or json: one JSON object a line, with execution_id and wave_id (drsorch.logs).
DRSORCH_LOG_FORMAT = env.str("DRSORCH_LOG_FORMAT", default="text").strip().lower()
try:
    LOGGING = logging_config(log_format=DRSORCH_LOG_FORMAT, level=env.str("LOG_LEVEL", default="INFO"))
except ValueError as exc:
    raise ImproperlyConfigured(str(exc))
