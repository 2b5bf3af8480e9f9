"""Production settings plus the bench's floor endpoint (bench/floor.py); used by bench/api.py only."""

from loyalty.settings.production import *  # noqa: F403

ROOT_URLCONF = "floor"
