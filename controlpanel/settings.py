"""Settings for the Migration Control Panel, read from the environment with local defaults."""

import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


DEBUG = env_bool("DEBUG", False)
# Without DEBUG the panel refuses to start on a missing or placeholder key: sessions, CSRF tokens and
# password resets would be forgeable. `make up`/`make test` generate one in var/secret_key.
_DEBUG_ONLY_KEY = "insecure-local-only-key-change-me-in-production-0123456789"
SECRET_KEY = env_str("SECRET_KEY", "")
if len(set(SECRET_KEY)) < 5 or len(SECRET_KEY) < 50 or SECRET_KEY.startswith(("insecure", "django-insecure")):
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a real secret (50+ random characters) when DEBUG is off; "
            "`make up` and `make test` keep one in var/secret_key."
        )
    SECRET_KEY = _DEBUG_ONLY_KEY
ALLOWED_HOSTS = env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",")
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "controlpanel.core",
    "controlpanel.targets",
    "controlpanel.runs",
    "controlpanel.evidence",
    "controlpanel.safety",
    "controlpanel.monitoring",
    "controlpanel.leads",
    "controlpanel.support",
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
    "controlpanel.core.timezones.ViewerTimezoneMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "controlpanel.core.middleware.IdleSessionMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into the lockout page
]

ROOT_URLCONF = "controlpanel.urls"
WSGI_APPLICATION = "controlpanel.wsgi.application"

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
                "controlpanel.core.context_processors.roles_context",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": env_str("CONTROL_DB_NAME", "controlpanel"),
        "USER": env_str("CONTROL_DB_USER", "postgres"),
        "PASSWORD": env_str("CONTROL_DB_PASSWORD", ""),
        "HOST": env_str("CONTROL_DB_HOST", "127.0.0.1"),
        "PORT": env_str("CONTROL_DB_PORT", "5432"),
        "CONN_MAX_AGE": env_int("CONTROL_DB_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
# Served over HTTPS unless DEBUG: cookies only over TLS, HTTP redirected, HSTS. HTTPS=0 is for a plain-http
# local demo (`make up` on 127.0.0.1) and the test server; behind a TLS proxy set SECURE_PROXY_SSL_HEADER too.
HTTPS = env_bool("HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = SECURE_SSL_REDIRECT = HTTPS
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000) if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_PRELOAD = HTTPS
if env_bool("BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# A session ends after this long without a request (the middleware slides it at most once a minute).
SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30)
SESSION_COOKIE_AGE = SESSION_IDLE_MINUTES * 60

# Login throttling (django-axes): after AXES_FAILURE_LIMIT failures for one username, or from one address,
# logins are refused for AXES_COOLOFF_TIME hours; every failure, lockout and login is in the audit log.
AUTHENTICATION_BACKENDS = ["controlpanel.core.auth.ThrottledBackend", "django.contrib.auth.backends.ModelBackend"]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_MINUTES", 15) / 60
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "core/locked_out.html"

# --- the panel's own settings -------------------------------------------------------------------
# Where the SQL bundle lives; point it at another team's files to rehearse them.
MIGRATION_BUNDLE_DIR = Path(env_str("MIGRATION_BUNDLE_DIR", str(BASE_DIR / "migrations_sql")))
# The bin directory of the PostgreSQL client programs the rehearsal copies with (pg_dump, psql); empty: PATH.
# pg_dump refuses a server newer than itself: a PostgreSQL 17 target needs 17's client programs here.
PG_BIN_DIR = env_str("PG_BIN_DIR", "")
# The environment variable holding the demo target's DSN, and the DSN `make up` builds it from.
DEMO_TARGET_DSN_VAR = "DEMO_TARGET_DSN"
os.environ.setdefault(DEMO_TARGET_DSN_VAR, "postgresql://postgres@127.0.0.1:5432/processaudit_demo")

# --- Celery -------------------------------------------------------------------------------------
REDIS_URL = env_str("REDIS_URL", "redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = None  # step state lives in the control DB, not in Celery results
CELERY_TASK_IGNORE_RESULT = True
# Steps are long and must run at most once at a time per target:
# - acks_late + reject_on_worker_lost: a message is acknowledged only after the step finished, so a
#   worker killed mid-step leaves the message to be redelivered; the redelivered task then finds the
#   attempt already started (fencing + advisory lock) and marks it for a person instead of re-running.
# - prefetch 1: a worker never reserves a second step it cannot start while busy with a long one.
# - visibility_timeout above the longest step: Redis must not redeliver a step that is still running.
# - a dedicated queue: step execution is never stuck behind health checks or notifications.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
STEP_MAX_SECONDS = env_int("STEP_MAX_SECONDS", 4 * 3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": STEP_MAX_SECONDS + 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_DEFAULT_QUEUE = "default"
STEP_QUEUE = "steps"
CELERY_TASK_ROUTES = {"controlpanel.runs.tasks.execute_step": {"queue": STEP_QUEUE}}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Written into django-celery-beat's tables at every beat start (re-created and re-enabled if removed):
# crash recovery must not depend on a row anyone could delete.
CELERY_BEAT_SCHEDULE = {
    "Mark steps with a stale heartbeat as interrupted": {
        "task": "controlpanel.runs.tasks.reap_stale_steps", "schedule": 5.0, "enabled": True,
    },
}
CELERY_TIMEZONE = TIME_ZONE
# A step whose heartbeat is older than this is considered orphaned (its worker died).
STEP_HEARTBEAT_SECONDS = env_int("STEP_HEARTBEAT_SECONDS", 1)
STEP_STALE_AFTER_SECONDS = env_int("STEP_STALE_AFTER_SECONDS", 15)
# A queued attempt no worker has taken after this long is failed by the reaper (lost message, no step worker).
STEP_QUEUED_TIMEOUT_SECONDS = env_int("STEP_QUEUED_TIMEOUT_SECONDS", 300)
# How long a step waits for the target's migration lock before failing as "another step holds it".
STEP_LOCK_WAIT_SECONDS = env_int("STEP_LOCK_WAIT_SECONDS", 10)
# The lock evidence fails when a session waited on the migration's locks longer than this (seconds).
EVIDENCE_LOCK_WAIT_THRESHOLD_SECONDS = float(env_str("EVIDENCE_LOCK_WAIT_THRESHOLD_SECONDS", "1.0"))

# --- notifications ------------------------------------------------------------------------------
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "controlpanel@localhost")
NOTIFY_EMAILS = [e for e in env_str("NOTIFY_EMAILS", "").split(",") if e]
NOTIFY_WEBHOOK_URL = env_str("NOTIFY_WEBHOOK_URL", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}
WHITENOISE_USE_FINDERS = True  # serve static files in tests and `make up` without a separate server

# How SQL steps treat locks: give up waiting after STEP_LOCK_TIMEOUT_MS, retry with back-off.
STEP_LOCK_TIMEOUT_MS = env_int("STEP_LOCK_TIMEOUT_MS", 3000)
STEP_LOCK_RETRIES = env_int("STEP_LOCK_RETRIES", 5)
STEP_STATEMENT_TIMEOUT_MS = env_int("STEP_STATEMENT_TIMEOUT_MS", 0)
BACKUP_DIR = Path(env_str("BACKUP_DIR", str(BASE_DIR / "var" / "backups")))

# The runbook's success criteria, used by the evidence scorecard and the health checks alike.
RUNBOOK_SLA_MS = env_int("RUNBOOK_SLA_MS", 500)  # typical operations
RUNBOOK_SIZE_BUDGET_PERCENT = env_int("RUNBOOK_SIZE_BUDGET_PERCENT", 10)  # database growth from the migration
# The access diff (controlpanel/evidence/access.py): the schemas the API exposes, who is measured, how long a probe
# may take before its cell reads "cannot measure".
ACCESS_EXPOSED_SCHEMAS = [s for s in env_str("ACCESS_EXPOSED_SCHEMAS", "public").split(",") if s]
ACCESS_ALL_USERS_UP_TO = env_int("ACCESS_ALL_USERS_UP_TO", 500)
ACCESS_SAMPLE_USERS = env_int("ACCESS_SAMPLE_USERS", 200)
# How old a page many people poll may be (core/shared_render.py): the run page (a step changing state renders it
# anew at once; evidence, approvals and gates show within this many seconds) and a step's live fragment (anew at
# every heartbeat, i.e. every second). 0: every request renders its own.
SHARED_RENDER_SECONDS = env_int("SHARED_RENDER_SECONDS", 2)
# Users whose typical operations are timed before Step 1 and again after Step 5 (the SLA line's ratios).
EVIDENCE_TIMED_USERS = env_int("EVIDENCE_TIMED_USERS", 20)
ACCESS_PROBE_TIMEOUT_MS = env_int("ACCESS_PROBE_TIMEOUT_MS", 15000)
# Sessions probing sampled users side by side (the target serves them in parallel); 1 probes one after another.
ACCESS_PROBE_SESSIONS = env_int("ACCESS_PROBE_SESSIONS", 2)
# Monitoring history (controlpanel/monitoring/conf.py reads these).
MONITORING_CHECK_MINUTES = env_int("MONITORING_CHECK_MINUTES", 15)
MONITORING_KEEP_ALL_DAYS = env_int("MONITORING_KEEP_ALL_DAYS", 7)
MONITORING_KEEP_DAYS = env_int("MONITORING_KEEP_DAYS", 90)
MONITORING_CHART_POINTS = env_int("MONITORING_CHART_POINTS", 500)
