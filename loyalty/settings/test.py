"""The test suite: PostgreSQL and Redis (required under CI=true), fast hashing, mail kept in memory.

Nothing here touches a developer's own data: the test database and the Redis key prefix are
named after this checkout, and REDIS_URL/.env are ignored in favour of TEST_REDIS_URL.
"""

import hashlib
import os
import socket
from urllib.parse import urlsplit

from .base import *  # noqa: F403
from .base import BASE_DIR, env, prepared_statements

SECRET_KEY = "test-only-secret-key"
DEBUG = False
CI = env.bool("CI", default=False)
CHECKOUT = hashlib.sha1(str(BASE_DIR).encode()).hexdigest()[:8]

DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/loyalty"


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1):
            return True
    except OSError:
        return False


# The suite runs on PostgreSQL: locks, constraints and concurrency only mean something there.
# Only when DATABASE_URL is not set and no local PostgreSQL listens does it fall back to SQLite
# (tests marked `postgres` then skip); under CI=true tests/conftest.py refuses that fallback.
_db_url = os.environ.get("DATABASE_URL") or DEFAULT_TEST_DATABASE_URL
DATABASE_IS_FALLBACK = "DATABASE_URL" not in os.environ and not CI and not _reachable(_db_url, 5432)
if DATABASE_IS_FALLBACK:
    _db_url = f"sqlite:///{BASE_DIR / 'test.sqlite3'}"
# As deployed: server-side parameters, and prepared statements (migrations' multi-command SQL runs once,
# so it is never prepared, as in production).
DATABASES = {"default": prepared_statements(env.db_url_config(_db_url))}
DATABASES["default"]["TEST"] = {"NAME": env.str("TEST_DATABASE_NAME", default=f"test_loyalty_{CHECKOUT}")}

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_AVAILABLE = _reachable(REDIS_URL, 6379)
CACHE_KEY_PREFIX = f"loyalty-test-{CHECKOUT}"
if REDIS_AVAILABLE:
    CACHES = {
        "default": {
            "BACKEND": "loyalty.core.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
# Tasks under test run in-process unless a test starts a real worker itself.
CELERY_BROKER_URL = REDIS_URL if REDIS_AVAILABLE else "memory://"
CELERY_RESULT_BACKEND = REDIS_URL if REDIS_AVAILABLE else None
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_EAGER", default=True)  # the worker a test starts sets it false
# This checkout's own queue: another checkout's worker on the same Redis never takes our tasks.
CELERY_TASK_DEFAULT_QUEUE = f"loyalty-test-{CHECKOUT}"

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    "private": {"BACKEND": "loyalty.core.storage.PrivateInMemoryStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
LOGGING = {"version": 1, "disable_existing_loggers": False}

# Static files come straight from the app folders here (the live test server serves them).
STATIC_ROOT = None
