"""Celery tasks of the rewards app: thin wrappers around rewards.services."""

from celery import shared_task

from rewards import services


@shared_task(name="rewards.expire_vouchers")
def expire_vouchers() -> int:
    """Daily: mark vouchers past their last day as expired (one set-based statement; safe to run twice)."""
    return services.vouchers_expire()
