"""Celery tasks of campaigns: thin wrappers around campaigns.messaging."""

import time

from celery import shared_task
from django.conf import settings

from campaigns import messaging
from campaigns.models import Message


@shared_task(name="campaigns.send_message", acks_late=True)
def send_message(message_id: int) -> int:
    """Send a message's queued emails batch by batch, then mark it sent. Hands over to a new task after
    JOB_TASK_SECONDS, so no task outlives the worker's time limit; a lost task is safe to run again."""
    message = Message.objects.get(pk=message_id)
    deadline = time.monotonic() + settings.JOB_TASK_SECONDS
    handled = 0
    while done := messaging.message_send_batch(message=message):
        handled += done
        if time.monotonic() > deadline:
            send_message.delay(message_id)
            return handled
    messaging.message_sent_mark(message=message)
    return handled


@shared_task(name="campaigns.send_transition_notices", acks_late=True)
def send_transition_notices(transition_id: int) -> int:
    """Send a transition's queued email notices batch by batch (hands over after JOB_TASK_SECONDS)."""
    from campaigns import transitions
    from campaigns.models import Transition

    transition = Transition.objects.get(pk=transition_id)
    deadline = time.monotonic() + settings.JOB_TASK_SECONDS
    handled = 0
    while done := transitions.notice_emails_send_batch(transition=transition):
        handled += done
        if time.monotonic() > deadline:
            send_transition_notices.delay(transition_id)
            return handled
    return handled
