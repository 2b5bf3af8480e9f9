"""Who changed a program's configuration, and what it was before (django-simple-history)."""

import pytest

from loyalty.models import EarnRule, Program

pytestmark = pytest.mark.django_db


def test_a_change_in_the_admin_is_recorded_with_who_made_it(client, manager_user, program):
    client.force_login(manager_user)
    rule = program.earn_rules.get()
    data = {
        "program": program.pk,
        "name": "Base earning, doubled",
        "is_active": "on",
        "activity_type": "purchase",
        "calculation": "per_currency_unit",
        "rate": "2",
        "rounding": "down",
        "apply_tier_multiplier": "on",
        "qualifying": "on",
        "stackable": "on",
        "priority": "0",
        "regions": "[]",
        "member_types": "[]",
        "product_categories": "[]",
        "referral_party": "referrer",
        "referral_trigger": "enrolment",
    }

    response = client.post(f"/admin/loyalty/earnrule/{rule.pk}/change/", data)

    assert response.status_code == 302, response.content.decode()[:2000]
    latest, previous = EarnRule.history.filter(id=rule.pk).order_by("-history_date")[:2]
    assert (latest.history_user, latest.rate, previous.rate) == (manager_user, 2, 1)
    assert latest.history_type == "~"


def test_program_history_is_kept_for_every_save(program):
    program.status = Program.Status.CLOSED
    program.save()

    assert list(program.history.values_list("status", flat=True)) == ["closed", "live"]
