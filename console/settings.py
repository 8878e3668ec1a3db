"""Fleetflow settings, read strictly from the environment (see console/env.py).

- DATABASE_URL unset: an SQLite file (var/fleetflow.sqlite3); set: parsed by dj-database-url (PostgreSQL in production).
- REDIS_URL set: Redis is the Celery broker and the Channels layer; unset: Celery runs tasks in-process and
  Channels uses its in-memory layer (one process only, which is what `make demo` runs).
- DEBUG is off unless asked; SECRET_KEY is required when DEBUG is off.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from console.env import env_bool, env_int, env_list, env_str, redis_url

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = env_bool("DEBUG", False)
_secret = env_str("SECRET_KEY")
if _secret is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is required when DEBUG is off (set DEBUG=1 for local development)"
        )
    _secret = "insecure-development-key-only-used-with-DEBUG-on"  # noqa: S105  (DEBUG only)
SECRET_KEY = _secret

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI / Redoc static files for /api/docs/ (no CDN)
    "channels",
    "django_htmx",
    "processes",
    "processes.operations",
    "servers",
    "console",  # its management commands (run_stack)
    "axes",  # login throttling (AXES_* below)
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
    # Content Security Policy of the console pages: scripts and styles from this origin only.
    "console.security.ContentSecurityPolicyMiddleware",
    # Last, as django-axes asks: answers a locked-out login with 429 before the view runs.
    "axes.middleware.AxesMiddleware",
]

# django-axes checks the lock before the password; ModelBackend then does the usual check.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
# The tenth wrong password in a row (for one user name from one address) locks that pair for
# FLEETFLOW_LOGIN_LOCK_MINUTES; a successful login resets the count.
AXES_FAILURE_LIMIT = 10
AXES_COOLOFF_TIME = timedelta(minutes=env_int("FLEETFLOW_LOGIN_LOCK_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# The client address is REMOTE_ADDR only: a forwarded-for header is the client's to forge.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
AXES_VERBOSE = False

# Transport hardening when DEBUG is off (each can be turned off for a plain-HTTP lab setup):
# cookies only over HTTPS, HSTS on HTTPS responses, no MIME sniffing. Behind a TLS-terminating
# proxy set SECURE_PROXY_SSL_HEADER_NAME (e.g. HTTP_X_FORWARDED_PROTO) so requests count as secure.
SESSION_COOKIE_SECURE = env_bool("FLEETFLOW_SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SESSION_COOKIE_HTTPONLY = True
SECURE_HSTS_SECONDS = 0 if DEBUG else env_int("FLEETFLOW_HSTS_SECONDS", 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = False  # other services on sibling hosts may not speak HTTPS
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = env_bool("FLEETFLOW_SSL_REDIRECT", False)
_proxy_ssl_header = env_str("SECURE_PROXY_SSL_HEADER_NAME")
if _proxy_ssl_header:
    SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header, "https")

ROOT_URLCONF = "console.urls"

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
                "console.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "console.wsgi.application"
ASGI_APPLICATION = "console.asgi.application"

_database_url = env_str("DATABASE_URL")
if _database_url is None:
    DATABASES = {
        "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "var" / "fleetflow.sqlite3"}
    }
else:
    try:
        DATABASES = {"default": dict(dj_database_url.parse(_database_url, conn_max_age=60))}
    except (ValueError, dj_database_url.UnknownSchemeError) as error:
        raise ImproperlyConfigured(f"DATABASE_URL is malformed: {error}") from None

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns at start-up if it is missing
WHITENOISE_USE_FINDERS = True  # serve app and project static files without a collectstatic step

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"  # the dashboard
LOGOUT_REDIRECT_URL = "/accounts/login/"

REDIS_URL = redis_url()

# Celery: Redis when configured; otherwise tasks run in-process, eagerly, right after the
# transaction that queued them commits (the demo has no broker to run).
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = REDIS_URL is None
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env_int("CELERY_TASK_TIME_LIMIT", 120, minimum=1)
# A message a worker took but never acknowledged (killed) goes back to the queue after this many
# seconds; operations are leased in the database, so a redelivered copy finds its work done.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("CELERY_VISIBILITY_TIMEOUT", 300, minimum=10)
}
CELERY_TASK_REJECT_ON_WORKER_LOST = True  # a task whose worker died is re-queued, not dropped
# Periodic tasks (run the worker with --beat, or a separate `celery beat`): the operations sweeper
# re-queues operations whose worker died or whose message was lost (processes.operations.tasks).
CELERY_BEAT_SCHEDULE = {
    "operations-sweep": {
        "task": "operations.sweep",
        "schedule": float(env_int("FLEETFLOW_OPERATION_SWEEP_SECONDS", 15, minimum=1)),
    },
}

if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, the same 5 s channels_redis blocks
            # in BZPOPMIN waiting for a message: a quiet websocket then died with "Timeout reading"
            # every few seconds (tests/console/test_live.py). Reads may take longer than the pop.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # TokenAuthentication plus a token_used audit row per request (processes/auth_audit.py)
        "processes.auth_audit.AuditedTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "processes.api.schema.FleetflowAutoSchema",
    # JSON only: the API's clients are dashboards and scripts; humans use /api/docs/.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # One error body for every 4xx/5xx: {"error": {"code", "message", "details"}} (issue 11).
    "EXCEPTION_HANDLER": "processes.api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Fleetflow API",
    "VERSION": "1.0.0",
    "DESCRIPTION": "Process instances, incidents, servers and operator actions across Zeebe clusters. "
    'Keys are decimal strings. Errors: {"error": {"code", "message", "details"}}.',
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Several models name their choice field "state" or "action": one schema enum per choice class.
    "ENUM_NAME_OVERRIDES": {
        "InstanceStateEnum": "processes.choices.InstanceState",
        "ApiInstanceStateEnum": ["active", "completed", "canceled"],
        "IncidentStateEnum": "processes.choices.IncidentState",
        "JobStateEnum": "processes.choices.JobState",
        "ClusterStateEnum": "processes.choices.ClusterState",
        "ServerStateEnum": "servers.choices.ServerState",
        "OperationStateEnum": "processes.operations.choices.OperationState",
        "OperationActionEnum": "processes.operations.choices.OperationAction",
        "BatchStateEnum": "processes.operations.choices.BatchState",
        "BatchActionEnum": ["retry", "resolve_incident", "cancel", "set_variables"],
        "HealthEnum": ["up", "down", "unknown"],
    },
}

# Fleetflow's own settings.
# The process variable that links an instance to a server in the inventory (DESIGN §5).
FLEETFLOW_SERVER_VARIABLE = env_str("FLEETFLOW_SERVER_VARIABLE", "serverSn")
# Variables larger than this (bytes of JSON text) are stored with a preview; the full value on demand.
FLEETFLOW_VARIABLE_PREVIEW_BYTES = env_int("FLEETFLOW_VARIABLE_PREVIEW_BYTES", 8192, minimum=256)
# The gateway proxy's --state-dir: the console reads its metrics.json (cluster health, job-type polls).
FLEETFLOW_PROXY_STATE_DIR = env_str("FLEETFLOW_PROXY_STATE_DIR")
# The gateway proxy's gRPC address (host:port): deploy and start from the console go through it, so
# deployments reach every cluster and new instances are placed (issue 19). Empty: not offered.
FLEETFLOW_GATEWAY_PROXY_ADDRESS = env_str("FLEETFLOW_GATEWAY_PROXY_ADDRESS")
# Operations (DESIGN §6): how long a task holds an operation before another may take it over (a
# killed worker's operations wait this long), and the longest backoff for an unreachable cluster.
FLEETFLOW_OPERATION_LEASE_SECONDS = env_int("FLEETFLOW_OPERATION_LEASE_SECONDS", 60, minimum=2)
FLEETFLOW_OPERATION_RETRY_MAX_SECONDS = env_int("FLEETFLOW_OPERATION_RETRY_MAX_SECONDS", 30, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["stderr"], "level": env_str("LOG_LEVEL", "INFO")},
}
