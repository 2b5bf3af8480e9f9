"""Shared pieces of idempotent writes: a request's fingerprint and the refusal of a reused key (the insert
that yields to a row already holding one of its unique keys is loyalty.core.rows.insert_unless_taken)."""

import hashlib
import json

from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError


def fingerprint(**content) -> str:
    """A stable digest of what a request asked for: the same key must come with the same content."""
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def key_reused_error() -> ApplicationError:
    return ApplicationError(
        _("This idempotency key was already used for a different request. Use a new key for a new request."),
        code="idempotency_key_reused",
    )
