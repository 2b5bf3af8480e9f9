"""The test suite: PostgreSQL and Redis when reachable (always under CI=true), fast hashing, mail kept in memory."""

import socket
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import BASE_DIR, env

SECRET_KEY = "test-only-secret-key"
DEBUG = False
CI = env.bool("CI", default=False)

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


# The suite runs on PostgreSQL: locks, constraints and concurrency only mean something there.
# Locally, with no PostgreSQL listening, it falls back to SQLite and tests marked `postgres` skip;
# under CI=true that fallback is refused (tests/conftest.py fails the run instead).
_db_url = env.str("DATABASE_URL", default=DEFAULT_TEST_DATABASE_URL)
DATABASE_IS_FALLBACK = not _db_url.startswith("sqlite") and not _reachable(_db_url, 5432) and not CI
if DATABASE_IS_FALLBACK:
    _db_url = f"sqlite:///{BASE_DIR / 'test.sqlite3'}"
DATABASES = {"default": env.db_url_config(_db_url)}
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default="test_loyalty")}

# Redis backs the cache (allauth's rate limits live there) whenever it is configured and up.
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/15")
REDIS_AVAILABLE = bool(REDIS_URL) and _reachable(REDIS_URL, 6379)
if REDIS_AVAILABLE:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "loyalty-test",
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tasks under test run in-process unless a test starts a real worker itself.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = REDIS_URL or None
CELERY_TASK_ALWAYS_EAGER = True

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Static files come straight from the app folders here (runserver and the live test server);
# only production collects them into STATIC_ROOT for WhiteNoise.
STATIC_ROOT = None
