from celery import shared_task

from portal.activation import imported_members_tell


@shared_task(name="portal.tell_imported_members", acks_late=True)
def tell_imported_members(program_id: int) -> int:
    return imported_members_tell(program_id=program_id)
