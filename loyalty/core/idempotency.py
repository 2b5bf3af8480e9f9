"""Shared pieces of idempotent writes: a request's fingerprint, the refusal of a reused key, and an insert
that yields to a row already holding one of its unique keys."""

import hashlib
import json

from django.db import connection
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


def insert_unless_taken(row) -> bool:
    """Insert a new `row` unless one of its table's unique keys already holds its values: one statement
    (`INSERT … ON CONFLICT DO NOTHING`), no savepoint. Sets its pk and returns True when inserted. A
    concurrent twin waits on the unique index until the first commits, then is not inserted."""
    opts = type(row)._meta
    fields = [f for f in opts.concrete_fields if not f.primary_key]
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(opts.db_table)} ({', '.join(quote(f.column) for f in fields)})"
            f" VALUES ({', '.join(['%s'] * len(fields))}) ON CONFLICT DO NOTHING RETURNING {quote(opts.pk.column)}",
            [f.get_db_prep_save(f.pre_save(row, True), connection) for f in fields],
        )
        inserted = cursor.fetchone()
    if inserted is None:
        return False
    row.pk = inserted[0]
    row._state.adding, row._state.db = False, connection.alias
    return True
