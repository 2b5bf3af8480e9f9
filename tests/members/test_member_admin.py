"""Member admin: search, accounts inline, and the data-rights actions, with their refusals."""

import json

import pytest
from django.urls import reverse

from members.models import Member

pytestmark = pytest.mark.django_db


def test_a_manager_finds_a_member_by_phone_and_sees_their_accounts(client, manager_user, counter_enrol):
    account = counter_enrol(phone="0470 99 88 77", last_name="Wouters")
    client.force_login(manager_user)
    for typed in ["+32470998877", "0470 99 88 77", "Wouters"]:
        listing = client.get(reverse("admin:members_member_changelist"), {"q": typed}).content.decode()
        assert account.member.member_no in listing, typed
    detail = client.get(reverse("admin:members_member_change", args=[account.member.pk])).content.decode()
    assert "Blue Rewards" in detail and "Bronze" in detail


def test_a_manager_downloads_and_anonymises_from_the_admin(client, manager_user, counter_enrol):
    member = counter_enrol(phone="0470998877").member
    client.force_login(manager_user)
    url = reverse("admin:members_member_changelist")
    download = client.post(url, {"action": "download_data", "_selected_action": [member.pk]})
    assert json.loads(download.content)[0]["member"]["member_no"] == member.member_no
    client.post(url, {"action": "anonymise", "_selected_action": [member.pk]})
    member.refresh_from_db()
    assert member.status == "anonymised" and member.phone == ""


def test_an_analyst_may_look_but_not_export_or_anonymise(client, analyst_user, counter_enrol):
    member = counter_enrol(phone="0470998877").member
    client.force_login(analyst_user)
    url = reverse("admin:members_member_changelist")
    assert client.get(url).status_code == 200
    refused = client.post(url, {"action": "anonymise", "_selected_action": [member.pk]})
    assert refused.status_code in {200, 302, 403}
    assert Member.objects.get(pk=member.pk).status == "active"
    download = client.post(url, {"action": "download_data", "_selected_action": [member.pk]})
    assert download.get("Content-Type") != "application/json"
