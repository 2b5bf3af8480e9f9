"""The weekly warning of expiring points: one email per member, in their language, once for each lot."""

import datetime

import pytest
import time_machine
from django.core import mail
from django.utils import timezone

from loyalty import services
from loyalty.models import Program

pytestmark = pytest.mark.django_db


@pytest.fixture
def monthly_program(program):
    """Points expire one month after they were earned: short enough to see lots come and go."""
    Program.objects.filter(pk=program.pk).update(
        expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN, expiry_months=1, points_name="miles"
    )
    program.refresh_from_db()
    return program


def test_a_member_is_told_in_their_language_which_points_expire_and_when(monthly_program, enrol, buy):
    account = enrol(monthly_program, email="zoe@example.com", first_name="Zoé", language="fr")
    buy(account, "120.00")
    expires = timezone.localtime(account.entries.get(kind="earn").expires_at).date()

    result = services.expiry_warnings_send(program=monthly_program, as_of=timezone.now() + datetime.timedelta(days=5))

    assert (result.rows, result.points) == (1, 120)
    [message] = mail.outbox
    assert message.to == ["zoe@example.com"]
    assert message.subject == f"120 miles expirent le {expires.day} {_french_month(expires.month)} {expires.year}"
    assert "Bonjour Zoé," in message.body
    assert "http://127.0.0.1:8000/me/rewards/" in message.body


def _french_month(month: int) -> str:
    return ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
            "novembre", "décembre"][month - 1]  # fmt: skip


def test_each_lot_is_warned_of_once_and_a_later_lot_in_its_own_warning(monthly_program, enrol, buy):
    account = enrol(monthly_program, email="max@example.com", first_name="Max")
    start = timezone.now()
    buy(account, "50.00")  # lot A expires in a month

    first = services.expiry_warnings_send(program=monthly_program, as_of=start + datetime.timedelta(days=5))
    again = services.expiry_warnings_send(program=monthly_program, as_of=start + datetime.timedelta(days=6))
    with time_machine.travel(start + datetime.timedelta(days=7)):
        buy(account, "30.00")  # lot B, earned after the warning
    later = services.expiry_warnings_send(program=monthly_program, as_of=start + datetime.timedelta(days=8))

    assert (first.rows, first.points) == (1, 50)
    assert again.rows == 0  # lot A was in the first warning
    assert (later.rows, later.points) == (1, 30)  # only lot B
    assert [message.subject.split(" ")[0] for message in mail.outbox] == ["50", "30"]


def test_no_warning_for_points_beyond_30_days_spent_points_or_members_without_an_email(
    monthly_program, program, enrol, buy
):
    far = enrol(monthly_program, email="far@example.com")
    buy(far, "40.00")
    spent = enrol(monthly_program, email="spent@example.com")
    buy(spent, "25.00")
    services.spend(account=spent, points=25, reason="Reward", idempotency_key="spend-all")
    no_email = enrol(monthly_program, email="")
    buy(no_email, "60.00")

    too_early = services.expiry_warnings_send(
        program=monthly_program, as_of=timezone.now() - datetime.timedelta(days=5)
    )
    in_window = services.expiry_warnings_send(
        program=monthly_program, as_of=timezone.now() + datetime.timedelta(days=5)
    )

    assert too_early.rows == 0  # 35 days or more before the points expire
    assert (in_window.rows, [m.to for m in mail.outbox]) == (1, [["far@example.com"]])


def test_the_weekly_job_sends_the_warnings(monthly_program, enrol, buy, run_job):
    account = enrol(monthly_program, email="job@example.com")
    buy(account, "70.00")

    run = run_job("loyalty.warn_expiring_points", as_of=timezone.now() + datetime.timedelta(days=5))

    assert (run.status, run.rows, run.points) == ("succeeded", 1, 70)
    assert len(mail.outbox) == 1
