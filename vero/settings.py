"""Vero settings: one file, every value from the environment (see .env.example)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import django_stubs_ext
import environ
from django.core.exceptions import ImproperlyConfigured

# Lets `ModelAdmin[Model]` and friends be subscripted at run time, as the type stubs expect.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists():
    env.read_env(str(env_file))

DEBUG: bool = env.bool("DEBUG", default=False)


def _local_secret_key() -> str:
    """Return a key generated once for this checkout (var/secret_key), for single-host use."""
    from django.core.management.utils import get_random_secret_key

    path = BASE_DIR / "var" / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process won the race
            pass
        else:
            with os.fdopen(fd, "w") as fh:
                fh.write(get_random_secret_key())
    return path.read_text().strip()


# Several hosts must share one SECRET_KEY; a single host may let Vero generate its own.
SECRET_KEY: str = env.str("SECRET_KEY", default="") or _local_secret_key()

ALLOWED_HOSTS: list[str] = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS: list[str] = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "channels",
    "django_htmx",
    "rest_framework",
    "allauth",
    "allauth.account",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.google",
    "allauth.socialaccount.providers.github",
    "allauth.socialaccount.providers.openid_connect",
    "accounts",
    "models_registry",
    "byok",
    "ratelimit",
    "realtime",
    "archive",
    "tools",
    "chats",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before anything reads request.POST (the CSRF check is the first).
    "vero.middleware.FormBodyMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "vero.middleware.TabOriginMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.GuestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "allauth.account.middleware.AccountMiddleware",
]

ROOT_URLCONF = "vero.urls"
ASGI_APPLICATION = "vero.asgi.application"

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
                "accounts.context_processors.actor",
                "models_registry.context_processors.tier",
                "chats.context_processors.sidebar",
                "realtime.context_processors.cache_key",
            ],
        },
    },
]

# Database: PostgreSQL only (ltree). `make run`/`make test` provide one when DATABASE_URL is unset.
DATABASES = {"default": env.db("DATABASE_URL", default="postgres://vero@127.0.0.1:54329/vero")}
# Threads that run requests' synchronous part (middleware and view: vero/handler.py); a request
# holds at most one connection, so more threads than pooled connections only wait.
REQUEST_THREADS: int = env.int("REQUEST_THREADS", default=16)
# A pool per process (psycopg_pool), shared by the request threads and the generation loop's
# short database visits; 0 turns it off.
DB_POOL_MAX_SIZE: int = env.int("DB_POOL_MAX_SIZE", default=20)
if DB_POOL_MAX_SIZE > 0:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": 1,
        "max_size": DB_POOL_MAX_SIZE,
        "timeout": env.float("DB_POOL_TIMEOUT_SECONDS", default=30.0),
    }
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
# The realtime listener's own connection (LISTEN needs a session of its own, which a pooler in
# transaction mode such as PgBouncer does not keep): a direct URL to the same database when
# DATABASE_URL goes through a pooler; unset, the listener connects as DATABASE_URL says.
DATABASE_URL_UNPOOLED: str = env.str("DATABASE_URL_UNPOOLED", default="")

# Channels: in-memory in one process; Redis when REDIS_URL is set (needed for several processes).
REDIS_URL: str = env.str("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            # redis-py reads with a 5 s socket timeout by default, the very time channels_redis
            # blocks in BZPOPMIN waiting for a message: a quiet channel then failed with
            # redis.exceptions.TimeoutError after 5 s, ending its reader for good.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}]},
        }
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Realtime sockets (/ws/, realtime/consumers.py). Connects a user (or, for refused attempts,
# an address) may open per minute in each process; more are closed with code 4429.
SOCKET_CONNECTS_PER_MINUTE: int = env.int("SOCKET_CONNECTS_PER_MINUTE", default=30)
# The listener checks its connection (SELECT 1) after this many seconds without a notification,
# and reconnects when the check gets no answer within SOCKET_LISTENER_CHECK_TIMEOUT_SECONDS.
SOCKET_LISTENER_CHECK_SECONDS: float = env.float("SOCKET_LISTENER_CHECK_SECONDS", default=15.0)
SOCKET_LISTENER_CHECK_TIMEOUT_SECONDS: float = env.float(
    "SOCKET_LISTENER_CHECK_TIMEOUT_SECONDS", default=5.0
)

# Accounts
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "allauth.account.auth_backends.AuthenticationBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "/"
ACCOUNT_LOGOUT_REDIRECT_URL = "/"
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_EMAIL_VERIFICATION = env.str("ACCOUNT_EMAIL_VERIFICATION", default="none")
ACCOUNT_LOGOUT_ON_GET = False
ACCOUNT_SESSION_REMEMBER = True
ACCOUNT_LOGIN_ON_PASSWORD_RESET = True
ACCOUNT_ADAPTER = "accounts.adapter.AccountAdapter"
SOCIALACCOUNT_ADAPTER = "accounts.adapter.SocialAccountAdapter"
ACCOUNT_FORMS = {"add_email": "accounts.forms.AddEmailForm"}
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Vero] "  # not the host, which a proxy may hide
SOCIALACCOUNT_ONLY = False
SOCIALACCOUNT_LOGIN_ON_GET = False
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True

# OAuth/SSO: a provider is offered only when its credentials are set; the others' URLs answer
# 404 (accounts.adapter.SocialAccountAdapter).
SOCIAL_LOGIN_ENABLED: bool = env.bool("SOCIAL_LOGIN_ENABLED", default=True)
_social: dict[str, dict[str, object]] = {}
if env.str("GOOGLE_CLIENT_ID", default="") and env.str("GOOGLE_CLIENT_SECRET", default=""):
    _social["google"] = {
        "APPS": [
            {"client_id": env.str("GOOGLE_CLIENT_ID"), "secret": env.str("GOOGLE_CLIENT_SECRET")}
        ],
        "SCOPE": ["profile", "email"],
    }
if env.str("GITHUB_CLIENT_ID", default="") and env.str("GITHUB_CLIENT_SECRET", default=""):
    _social["github"] = {
        "APPS": [
            {"client_id": env.str("GITHUB_CLIENT_ID"), "secret": env.str("GITHUB_CLIENT_SECRET")}
        ],
        "SCOPE": ["user:email"],
    }
if env.str("OIDC_SERVER_URL", default="") and env.str("OIDC_CLIENT_ID", default=""):
    _social["openid_connect"] = {
        "APPS": [
            {
                "provider_id": "oidc",
                "name": env.str("OIDC_NAME", default="Single sign-on"),
                "client_id": env.str("OIDC_CLIENT_ID"),
                "secret": env.str("OIDC_CLIENT_SECRET", default=""),
                "settings": {"server_url": env.str("OIDC_SERVER_URL")},
            }
        ]
    }
SOCIALACCOUNT_PROVIDERS = _social if SOCIAL_LOGIN_ENABLED else {}

# Guests: a signed, expiring cookie names the guest; the row is created on the first write.
GUEST_SECRET: str = env.str("GUEST_SECRET", default="") or SECRET_KEY
GUEST_COOKIE_NAME = "vero_guest"
GUEST_TOKEN_MAX_AGE_DAYS: int = env.int("GUEST_TOKEN_MAX_AGE_DAYS", default=30)
COOKIE_DOMAIN: str | None = env.str("COOKIE_DOMAIN", default="") or None
# Secure cookies unless DEBUG; `make run` (plain HTTP on loopback) turns them off explicitly.
SECURE_COOKIES: bool = (
    env.bool("SECURE_COOKIES") if env.str("SECURE_COOKIES", default="") else not DEBUG
)
SESSION_COOKIE_DOMAIN = COOKIE_DOMAIN
CSRF_COOKIE_DOMAIN = COOKIE_DOMAIN
SESSION_COOKIE_SECURE = SECURE_COOKIES
CSRF_COOKIE_SECURE = SECURE_COOKIES
# The page's script reads the token from the cookie at each request (static/js/requests.js),
# so a token rotated by a login in another tab is used at once: the cookie must stay readable.
CSRF_COOKIE_HTTPONLY = False
CSRF_FAILURE_VIEW = "vero.views.csrf_failure"
SESSION_COOKIE_SAMESITE = "Lax"


def _base_url(value: str) -> str:
    """Return APP_BASE_URL without its trailing slash; refuse anything but scheme and host."""
    parts = urlsplit(value.strip())
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or parts.username is not None
    ):
        raise ImproperlyConfigured(
            f"APP_BASE_URL must be a scheme and host, like https://chat.example.com (got {value!r})"
        )
    return f"{parts.scheme}://{parts.netloc}"


# Where people reach the site. Links in mail are built from the request's scheme and host
# (with BEHIND_PROXY, the proxy's X-Forwarded-Proto); set it when a proxy hides them.
APP_BASE_URL: str = (
    _base_url(env.str("APP_BASE_URL")) if env.str("APP_BASE_URL", default="") else ""
)
# allauth forces this scheme on the links it builds only when it is https: links otherwise
# follow the request, so a plain-HTTP server mails http:// links.
ACCOUNT_DEFAULT_HTTP_PROTOCOL = "https" if APP_BASE_URL.startswith("https:") else "http"

ADMIN_EMAIL: str = env.str("ADMIN_EMAIL", default="")
ADMIN_USER_ID: str = env.str("ADMIN_USER_ID", default="")

# Mail: console by default (password reset links appear in the server's output).
_email = env.email_url("EMAIL_URL", default="consolemail://")
_mailer: dict[str, object] = {"BACKEND": _email["EMAIL_BACKEND"]}
if _email["EMAIL_BACKEND"].endswith("console.EmailBackend"):
    _mailer["BACKEND"] = "vero.mail.ConsoleEmailBackend"  # decoded text: links copy whole
if _email["EMAIL_BACKEND"].endswith("smtp.EmailBackend"):
    _mailer["OPTIONS"] = {
        "host": _email.get("EMAIL_HOST") or "localhost",
        "port": _email.get("EMAIL_PORT") or None,
        "username": _email.get("EMAIL_HOST_USER") or None,
        "password": _email.get("EMAIL_HOST_PASSWORD") or None,
        "use_tls": bool(_email.get("EMAIL_USE_TLS")),
        "use_ssl": bool(_email.get("EMAIL_USE_SSL")),
    }
MAILERS = {"default": _mailer}
DEFAULT_FROM_EMAIL: str = env.str("DEFAULT_FROM_EMAIL", default="Vero <noreply@localhost>")

# Behind a TLS-terminating proxy, trust its X-Forwarded-Proto.
if env.bool("BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
if DEBUG:
    STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
WHITENOISE_USE_FINDERS = DEBUG
MEDIA_ROOT = env.path("MEDIA_ROOT", default=str(BASE_DIR / "var" / "media"))
# Attachments in S3-compatible object storage when a bucket is named (docs/attachments.md);
# else on the filesystem under MEDIA_ROOT. Private objects, read through signed requests only:
# the download view streams them to their owner.
ATTACHMENT_S3_BUCKET: str = env.str("ATTACHMENT_S3_BUCKET", default="")
ATTACHMENT_S3_ENDPOINT_URL: str = env.str("ATTACHMENT_S3_ENDPOINT_URL", default="")
ATTACHMENT_S3_REGION: str = env.str("ATTACHMENT_S3_REGION", default="")
ATTACHMENT_S3_ACCESS_KEY_ID: str = env.str("ATTACHMENT_S3_ACCESS_KEY_ID", default="")
ATTACHMENT_S3_SECRET_ACCESS_KEY: str = env.str("ATTACHMENT_S3_SECRET_ACCESS_KEY", default="")
if ATTACHMENT_S3_BUCKET:
    STORAGES["default"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": ATTACHMENT_S3_BUCKET,
            "endpoint_url": ATTACHMENT_S3_ENDPOINT_URL or None,
            "region_name": ATTACHMENT_S3_REGION or None,
            "access_key": ATTACHMENT_S3_ACCESS_KEY_ID or None,
            "secret_key": ATTACHMENT_S3_SECRET_ACCESS_KEY or None,
            "default_acl": "private",
            "querystring_auth": True,
            # Names are content addresses: the same name is the same bytes.
            "file_overwrite": True,
        },
    }

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

# Chats: limits, generation and the reaper.
MAX_MESSAGE_LENGTH: int = env.int("MAX_MESSAGE_LENGTH", default=16_000)
# Default cap on an answer's length; a model's own max output, when lower, wins.
MAX_OUTPUT_TOKENS: int = env.int("MAX_OUTPUT_TOKENS", default=4096)
# The small model that titles new chats (a model id); empty: the chat's own model.
TITLE_MODEL: str = env.str("TITLE_MODEL", default="")
GENERATION_CHECKPOINT_SECONDS: float = env.float("GENERATION_CHECKPOINT_SECONDS", default=1.0)
# A `streaming` answer whose heartbeat is older than this is marked `interrupted`.
STREAM_STALE_SECONDS: float = env.float("STREAM_STALE_SECONDS", default=60)
STREAM_REAPER_INTERVAL_SECONDS: int = env.int("STREAM_REAPER_INTERVAL_SECONDS", default=30)
# A stream with nothing to say writes a comment at least this often (proxies drop connections
# idle for 30 to 60 s).
STREAM_KEEPALIVE_SECONDS: float = env.float("STREAM_KEEPALIVE_SECONDS", default=10.0)
CHAT_LIST_PAGE_SIZE: int = env.int("CHAT_LIST_PAGE_SIZE", default=50)
# Messages of a chat's route a page shows at once; older ones load as the user scrolls up.
CHAT_WINDOW_MESSAGES: int = env.int("CHAT_WINDOW_MESSAGES", default=50)
# At most this many of a route's newest messages are sent to the model (also bounded by the
# model's context window), so a very long chat costs the same to continue as a short one.
CONTEXT_MAX_MESSAGES: int = env.int("CONTEXT_MAX_MESSAGES", default=500)
# Tools and memory (docs/tools.md): the bounded tool loop, pinned archive entries, run_code.
TOOL_MAX_STEPS: int = env.int("TOOL_MAX_STEPS", default=8)
TOOL_TIMEOUT_SECONDS: float = env.float("TOOL_TIMEOUT_SECONDS", default=30.0)
TOOL_RESULT_CHAR_LIMIT: int = env.int("TOOL_RESULT_CHAR_LIMIT", default=20_000)
PINNED_MEMORY_CHAR_LIMIT: int = env.int("PINNED_MEMORY_CHAR_LIMIT", default=20_000)
ARCHIVE_PAGE_SIZE: int = env.int("ARCHIVE_PAGE_SIZE", default=30)
SANDBOX_MEMORY_MB: int = env.int("SANDBOX_MEMORY_MB", default=64)
SANDBOX_TIME_SECONDS: float = env.float("SANDBOX_TIME_SECONDS", default=5.0)
SANDBOX_OUTPUT_CHARS: int = env.int("SANDBOX_OUTPUT_CHARS", default=20_000)
SANDBOX_WORKERS: int = env.int("SANDBOX_WORKERS", default=2)
SANDBOX_FETCH_BYTES: int = env.int("SANDBOX_FETCH_BYTES", default=1_000_000)
SANDBOX_FETCH_TIMEOUT_SECONDS: float = env.float("SANDBOX_FETCH_TIMEOUT_SECONDS", default=5.0)
SANDBOX_FETCHES: int = env.int("SANDBOX_FETCHES", default=10)
WEATHER_API_BASE: str = env.str("WEATHER_API_BASE", default="https://api.open-meteo.com")
WEATHER_GEOCODING_BASE: str = env.str(
    "WEATHER_GEOCODING_BASE", default="https://geocoding-api.open-meteo.com"
)
# Attachments (docs/attachments.md): sizes, quotas, cleanup, image decoding.
ATTACHMENT_MAX_BYTES: int = env.int("ATTACHMENT_MAX_BYTES", default=25 * 1024 * 1024)
ATTACHMENT_MESSAGE_MAX_BYTES: int = env.int(
    "ATTACHMENT_MESSAGE_MAX_BYTES", default=50 * 1024 * 1024
)
ATTACHMENTS_PER_MESSAGE: int = env.int("ATTACHMENTS_PER_MESSAGE", default=10)
GUEST_STORAGE_QUOTA_BYTES: int = env.int("GUEST_STORAGE_QUOTA_BYTES", default=50 * 1024 * 1024)
USER_STORAGE_QUOTA_BYTES: int = env.int("USER_STORAGE_QUOTA_BYTES", default=1024 * 1024 * 1024)
ATTACHMENT_UNSENT_HOURS: float = env.float("ATTACHMENT_UNSENT_HOURS", default=24.0)
ATTACHMENT_MAX_IMAGE_PIXELS: int = env.int("ATTACHMENT_MAX_IMAGE_PIXELS", default=64_000_000)
# Import LiteLLM in the background when the server starts, so no request waits for it.
LLM_PRELOAD: bool = env.bool("LLM_PRELOAD", default=True)

# Heavy imports must never touch the network (LiteLLM reads its bundled cost map).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

# Model registry (models_registry): provider keys, built-in model defaults, LLM timeouts.
# Keys stored by an admin (encrypted with SECRETS_ENCRYPTION_KEYS) override these env keys.
SECRETS_ENCRYPTION_KEYS: list[str] = env.list("SECRETS_ENCRYPTION_KEYS", default=[])
OPENAI_API_KEY: str = env.str("OPENAI_API_KEY", default="")
GOOGLE_API_KEY: str = env.str("GOOGLE_API_KEY", default="") or env.str(
    "GOOGLE_GENERATIVE_AI_API_KEY", default=""
)
OPENROUTER_API_KEY: str = env.str("OPENROUTER_API_KEY", default="")
XAI_API_KEY: str = env.str("XAI_API_KEY", default="")
OLLAMA_BASE_URL: str = env.str("OLLAMA_BASE_URL", default="")
# The model new chats start with (else the user's first allowed one). GUEST_MODELS and
# REGULAR_MODELS apply only while the tier rows are missing, so the app boots cold.
DEFAULT_CHAT_MODEL: str = env.str("DEFAULT_CHAT_MODEL", default="openai:gpt-6-luna")
GUEST_MODELS: list[str] = env.list(
    "GUEST_MODELS",
    default=["openai:gpt-6-luna", "google:gemini-3.5-flash-lite", "anthropic:claude-haiku-5.5"],
)
REGULAR_MODELS: list[str] = env.list(
    "REGULAR_MODELS",
    default=[
        "openai:gpt-6-luna",
        "openai:gpt-6.1-terra",
        "openai:gpt-5.2",
        "google:gemini-3.5-flash-lite",
        "google:gemini-3.8-flash",
        "anthropic:claude-haiku-5.5",
        "anthropic:claude-sonnet-5.5",
        "xai:grok-4.7",
    ],
)
LLM_CONNECT_TIMEOUT_SECONDS: float = env.float("LLM_CONNECT_TIMEOUT_SECONDS", default=15.0)
# How long a process keeps registry reads (model resolution, tiers); writes in the same
# process clear them at once (models_registry/cache.py).
REGISTRY_CACHE_SECONDS: float = env.float("REGISTRY_CACHE_SECONDS", default=5.0)
LLM_IDLE_TIMEOUT_SECONDS: float = env.float("LLM_IDLE_TIMEOUT_SECONDS", default=120.0)

# Rate limits (ratelimit): token buckets. The "platform" bucket (generation on platform models)
# is configured per tier in the admin; these configure the other two. A bucket holds CAPACITY
# tokens and gains REFILL_AMOUNT every REFILL_INTERVAL_SECONDS (whole refills, never above
# CAPACITY). Own keys get their own bucket so platform quotas never throttle them; it only
# guards the server against runaway clients.
GENERATION_COST: int = env.int("GENERATION_COST", default=1)
BYOK_BUCKET_CAPACITY: int = env.int("BYOK_BUCKET_CAPACITY", default=60)
BYOK_REFILL_AMOUNT: int = env.int("BYOK_REFILL_AMOUNT", default=10)
BYOK_REFILL_INTERVAL_SECONDS: int = env.int("BYOK_REFILL_INTERVAL_SECONDS", default=60)
SYNC_BUCKET_CAPACITY: int = env.int("SYNC_BUCKET_CAPACITY", default=120)
SYNC_REFILL_AMOUNT: int = env.int("SYNC_REFILL_AMOUNT", default=60)
SYNC_REFILL_INTERVAL_SECONDS: int = env.int("SYNC_REFILL_INTERVAL_SECONDS", default=60)

# The browser cache (realtime): POST /api/cache/sync and POST /api/cache/key. Deleted chats and
# messages leave tombstones for SYNC_TOMBSTONE_RETENTION_DAYS; a client that last synced before
# that starts over. A sync page stops adding chats (and splits a long chat) past SYNC_PAGE_BYTES
# of JSON. The cache key is HKDF of the session's id salted with CACHE_ENCRYPTION_SECRET
# (derived from SECRET_KEY when unset; changing it makes every browser cache unreadable).
SYNC_TOMBSTONE_RETENTION_DAYS: int = env.int("SYNC_TOMBSTONE_RETENTION_DAYS", default=30)
SYNC_PAGE_BYTES: int = env.int("SYNC_PAGE_BYTES", default=512 * 1024)
CACHE_ENCRYPTION_SECRET: str = env.str("CACHE_ENCRYPTION_SECRET", default="")

# BYOK (byok): users' own keys and OpenAI-compatible endpoints. A custom endpoint's URL may by
# default only reach public addresses (checked when saved and before every call). Set
# BYOK_ALLOW_PRIVATE_NETWORKS to let users reach self-hosted servers (Ollama, vLLM) on
# loopback, private (10/8, 172.16/12, 192.168/16), CGNAT and IPv6 unique-local addresses, or
# list chosen networks in BYOK_ALLOWED_NETWORKS (CIDRs, e.g. 10.0.0.5/32). Link-local,
# multicast, reserved and cloud metadata addresses are always refused.
BYOK_ALLOW_PRIVATE_NETWORKS: bool = env.bool("BYOK_ALLOW_PRIVATE_NETWORKS", default=False)
BYOK_ALLOWED_NETWORKS: list[str] = env.list("BYOK_ALLOWED_NETWORKS", default=[])
