"""Developer machine and the `make run` demo: debug on, any SECRET_KEY will do."""

from .base import *  # noqa: F403
from .base import env

DEBUG = env.bool("DEBUG", default=True)
SECRET_KEY = env.str("SECRET_KEY", default="local-only-insecure-key-change-me")

# Static files come straight from the app folders here (runserver and the live test server);
# only production collects them into STATIC_ROOT for WhiteNoise.
STATIC_ROOT = None
