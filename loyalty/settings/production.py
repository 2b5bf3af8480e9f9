"""Production: every secret from the environment, HTTPS only, persistent connections.

`DJANGO_SETTINGS_MODULE=loyalty.settings.production python manage.py check --deploy` is clean.
"""

from .base import *  # noqa: F403
from .base import DATABASES, PRIVATE_MEDIA_ROOT, env

DEBUG = False
# No silent fallbacks in production: no SQLite file, no per-process cache, no mail to the console.
SECRET_KEY = env.str("SECRET_KEY")
for _required in ("DATABASE_URL", "REDIS_URL", "EMAIL_URL"):
    env.str(_required)  # raises ImproperlyConfigured, naming the variable, when it is missing

# Behind N reverse proxies: the client's address is the Nth from the right in X-Forwarded-For,
# so allauth's per-address rate limits count each visitor, not the proxy.
ALLAUTH_TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=1)

# Keep database connections open across requests, and check them before use.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Claim evidence and other personal files: never under MEDIA_URL, served only by views that check
    # who asks (the member's own claim page, the staff claims queue).
    "private": {
        "BACKEND": "loyalty.core.storage.PrivateFileSystemStorage",
        "OPTIONS": {"location": PRIVATE_MEDIA_ROOT},
    },
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}
