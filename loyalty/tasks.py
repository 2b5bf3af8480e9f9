from celery import shared_task

from loyalty.legacy.runs import legacy_import_run


@shared_task(name="loyalty.run_legacy_import", acks_late=True)
def run_legacy_import(import_id: int) -> str:
    """Check or import one uploaded legacy file (a retry after a crash finds it done, or runs it again:
    nothing of a failed import was written)."""
    return legacy_import_run(import_id=import_id).status
