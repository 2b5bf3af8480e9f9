"""Celery tasks of campaigns: thin wrappers around campaigns.messaging."""

import time

from celery import shared_task
from django.conf import settings

from campaigns import messaging
from campaigns.models import Message


def _send_batches(send_batch, hand_over) -> tuple[int, bool]:
    """Call `send_batch()` until it handles nothing; after JOB_TASK_SECONDS call `hand_over()` (queue a
    new task) and stop, so no task outlives the worker's time limit. Returns (rows handled, finished)."""
    deadline = time.monotonic() + settings.JOB_TASK_SECONDS
    handled = 0
    while done := send_batch():
        handled += done
        if time.monotonic() > deadline:
            hand_over()
            return handled, False
    return handled, True


@shared_task(name="campaigns.send_message", acks_late=True)
def send_message(message_id: int) -> int:
    """Send a message's queued emails batch by batch, then mark it sent. Hands over to a new task after
    JOB_TASK_SECONDS, so no task outlives the worker's time limit; a lost task is safe to run again."""
    message = Message.objects.get(pk=message_id)
    handled, finished = _send_batches(
        lambda: messaging.message_send_batch(message=message), lambda: send_message.delay(message_id)
    )
    if finished:
        messaging.message_sent_mark(message=message)
    return handled


@shared_task(name="campaigns.send_transition_notices", acks_late=True)
def send_transition_notices(transition_id: int) -> int:
    """Send a transition's queued email notices batch by batch (hands over after JOB_TASK_SECONDS)."""
    from campaigns import transitions
    from campaigns.models import Transition

    transition = Transition.objects.get(pk=transition_id)
    handled, _finished = _send_batches(
        lambda: transitions.notice_emails_send_batch(transition=transition),
        lambda: send_transition_notices.delay(transition_id),
    )
    return handled
