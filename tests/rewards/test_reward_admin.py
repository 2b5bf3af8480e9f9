"""Reward admin: the same checks as the staff editor, an audit trail, and read-only books."""

import pytest
from django.urls import reverse

from rewards.models import Redemption, Reward

pytestmark = pytest.mark.django_db

ADD = {
    "name": "EUR 5 voucher",
    "kind": "voucher_amount",
    "points_cost": "500",
    "value": "5",
    "fulfilment": "voucher",
    "voucher_valid_days": "90",
    "regions": "[]",
    "member_types": "[]",
    "is_active": "on",
}


def test_a_manager_adds_a_reward_in_the_admin_with_an_audit_trail(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(reverse("admin:rewards_reward_add"), {**ADD, "program": program.pk})

    assert response.status_code == 302
    reward = Reward.objects.get()
    assert reward.points_cost == 500 and reward.history.first().history_user == manager_user


def test_the_admin_refuses_a_voucher_reward_fulfilled_by_hand_and_says_why(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(reverse("admin:rewards_reward_add"), {**ADD, "program": program.pk, "fulfilment": "manual"})

    assert response.status_code == 200
    assert "A voucher reward issues its voucher code at once" in response.content.decode()
    assert not Reward.objects.exists()


def test_redemptions_and_vouchers_are_read_only_in_the_admin(client, manager_user, analyst_user, program):
    client.force_login(manager_user)
    assert client.get(reverse("admin:rewards_redemption_changelist")).status_code == 200
    assert client.get(reverse("admin:rewards_voucher_changelist")).status_code == 200
    assert client.get(reverse("admin:rewards_redemption_add")).status_code == 403
    client.force_login(analyst_user)
    assert client.get(reverse("admin:rewards_reward_changelist")).status_code == 200
    assert client.post(reverse("admin:rewards_reward_add"), {**ADD, "program": program.pk}).status_code == 403
    assert not Reward.objects.exists() and not Redemption.objects.exists()
