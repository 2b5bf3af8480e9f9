"""Store keys: created by a command, a staff page or the admin, shown once, hashed at rest, revocable
by program managers only; idempotency records forgotten after 48 hours, never before 24."""

import datetime
import io
import re

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from loyalty.models import LedgerEntry
from members.models import APIRequest, StoreAPIKey
from tests.api.conftest import client_for, replayed

pytestmark = pytest.mark.django_db


def _works(key: str, account) -> bool:
    return client_for(key).get(f"/api/v1/members/{account.member.member_no}/").status_code == 200


def _assert_hashed_at_rest(key: str):
    api_key = StoreAPIKey.objects.get(prefix=key.split(".")[0])
    assert key.split(".")[1] not in api_key.hashed_key
    assert api_key.is_valid(key)


def test_the_command_prints_a_working_key_once_and_keeps_only_its_hash(shop, store, customer):
    out, err = io.StringIO(), io.StringIO()

    call_command("create_api_key", "--store", store.code, "--name", "Till 2", stdout=out, stderr=err)

    key = out.getvalue().strip()
    assert "." in key and len(key) > 30
    assert "not shown again" in err.getvalue()
    _assert_hashed_at_rest(key)
    assert StoreAPIKey.objects.get().name == "Till 2"
    assert _works(key, customer())


def test_the_command_names_the_known_stores_when_the_code_is_wrong(store):
    with pytest.raises(CommandError, match=store.code):
        call_command("create_api_key", "--store", "NOPE", "--name", "Till", stdout=io.StringIO())
    assert not StoreAPIKey.objects.exists()


def test_a_manager_creates_a_key_on_the_staff_page_sees_it_once_and_revokes_it(client, manager_user, store, customer):
    account = customer()
    client.force_login(manager_user)

    created = client.post(reverse("api_keys:list"), {"store": store.pk, "name": "Web shop"})

    assert created.status_code == 200
    assert created["Cache-Control"] == "no-store"
    key = created.context["key"]
    assert key in created.content.decode()
    _assert_hashed_at_rest(key)
    assert _works(key, account)
    listing = client.get(reverse("api_keys:list")).content.decode()
    api_key = StoreAPIKey.objects.get()
    assert api_key.prefix in listing and key not in listing

    revoked = client.post(reverse("api_keys:revoke", args=[api_key.pk]), follow=True)

    assert "revoked" in revoked.content.decode()
    assert not _works(key, account)


def test_the_staff_page_says_what_to_fix_in_a_bad_form(client, manager_user):
    client.force_login(manager_user)

    response = client.post(reverse("api_keys:list"), {"store": "", "name": ""})

    assert response.status_code == 400
    assert response.context["form"].errors.keys() == {"store", "name"}
    assert not StoreAPIKey.objects.exists()


def test_analysts_clerks_and_members_may_not_manage_keys(client, analyst_user, clerk_user, member_user, store_key):
    api_key = store_key[0]
    for user in (analyst_user, clerk_user, member_user):
        client.force_login(user)

        listing = client.get(reverse("api_keys:list"))
        created = client.post(reverse("api_keys:list"), {"store": api_key.store.pk, "name": "Mine"})
        revoked = client.post(reverse("api_keys:revoke", args=[api_key.pk]))

        assert (listing.status_code, created.status_code, revoked.status_code) == (403, 403, 403), user
    api_key.refresh_from_db()
    assert not api_key.revoked
    assert StoreAPIKey.objects.count() == 1


def test_a_manager_creates_a_key_in_the_admin_and_is_shown_it_once(client, manager_user, store, customer):
    client.force_login(manager_user)

    response = client.post(reverse("admin:members_storeapikey_add"), {"store": store.pk, "name": "Till 3"}, follow=True)

    assert response.status_code == 200
    shown = " ".join(str(m) for m in response.context["messages"])
    [key] = re.findall(r"\b[A-Za-z0-9]{8}\.[A-Za-z0-9]{32}\b", shown)
    _assert_hashed_at_rest(key)
    assert StoreAPIKey.objects.get().created_by == manager_user
    assert _works(key, customer())


# --- idempotency records ----------------------------------------------------------------------


def test_idempotency_records_are_honoured_for_a_day_and_purged_after_two(api, customer, run_job):
    account = customer()
    body = {
        "member": account.member.member_no,
        "amount": "10.00",
        "currency": "EUR",
        "receipt_number": "P-1",
        "occurred_at": timezone.now().isoformat(),
    }
    first = api.post_keyed("/api/v1/purchases/", body, key="old").json()
    start = timezone.now()

    with time_machine.travel(start + datetime.timedelta(hours=30)):
        api.post_keyed("/api/v1/purchases/", body | {"receipt_number": "P-2"}, key="recent")
        retry = api.post_keyed("/api/v1/purchases/", body, key="old")
        assert retry.status_code == 201 and replayed(retry)  # a day later: still the same answer
        assert run_job("members.purge_api_requests").rows == 0  # nothing is 48 hours old yet

    with time_machine.travel(start + datetime.timedelta(hours=49)):
        assert run_job("members.purge_api_requests").rows == 1

    assert list(APIRequest.objects.values_list("key", flat=True)) == ["recent"]
    # Forgotten here, the key is still the engine's idempotency key of the earn: nothing earns twice.
    late = api.post_keyed("/api/v1/purchases/", body, key="old")
    assert (late.status_code, late.json()["id"], late.json()["points"]) == (201, first["id"], 10)
    assert LedgerEntry.objects.filter(kind="earn", purchase__isnull=False).count() == 2
