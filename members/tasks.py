"""Celery tasks of the members app: thin wrappers around members.services."""

from celery import shared_task

from members import services


@shared_task(name="members.purge_api_requests")
def purge_api_requests() -> int:
    """Daily: forget idempotent API responses older than 48 hours (keys are honoured at least 24)."""
    return services.api_requests_purge()
