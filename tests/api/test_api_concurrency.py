"""Real concurrent requests on PostgreSQL: a till that retries before its first request has finished,
two tills posting one receipt, and clerks scanning one voucher at the same instant."""

import io
import json

import pytest
from django.core.management import call_command
from django.utils import timezone

from loyalty.models import LedgerEntry, Purchase
from members.models import APIRequest
from tests.api.conftest import client_for, give_voucher, replayed
from tests.engine.test_concurrency import _race

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

PURCHASES = "/api/v1/purchases/"


def _post(key: str, url: str, body: dict | None, idempotency_key: str):
    response = client_for(key).post(url, body, format="json", HTTP_IDEMPOTENCY_KEY=idempotency_key)
    return response.status_code, response.json(), replayed(response)


def _assert_ledger_sound():
    out = io.StringIO()
    call_command("check_ledger", stdout=out)
    assert "every invariant holds" in out.getvalue()


def _sale(member_no, **fields):
    return {
        "member": member_no,
        "amount": "80.00",
        "currency": "EUR",
        "receipt_number": "T1-9",
        "occurred_at": timezone.now().isoformat(),
    } | fields


def test_twenty_copies_of_one_request_at_once_earn_once_and_all_get_the_first_answer(store_key, customer):
    account = customer()
    body = _sale(account.member.member_no)

    outcomes = _race(20, lambda i: _post(store_key[1], PURCHASES, body, "retry-storm"))

    results = [value for _, value in outcomes]
    assert {status for status, _, _ in results} == {201}
    assert [was_replayed for _, _, was_replayed in results].count(False) == 1
    assert len({json.dumps(body) for _, body, _ in results}) == 1
    assert Purchase.objects.count() == 1
    assert LedgerEntry.objects.filter(kind="earn", purchase__isnull=False).count() == 1
    assert APIRequest.objects.count() == 1
    _assert_ledger_sound()


def test_one_key_with_two_bodies_at_once_posts_one_of_them_and_refuses_the_other(store_key, customer):
    account = customer()
    bodies = [_sale(account.member.member_no, amount="80.00"), _sale(account.member.member_no, amount="90.00")]

    outcomes = _race(20, lambda i: _post(store_key[1], PURCHASES, bodies[i % 2], "same-key"))

    purchase = Purchase.objects.get()
    winner = 0 if purchase.amount == 80 else 1
    by_body = {0: [], 1: []}
    for i, (_, (status, body, _)) in enumerate(outcomes):
        by_body[i % 2].append(status if status != 422 else body["error"]["code"])
    assert by_body[winner] == [201] * 10
    assert by_body[1 - winner] == ["idempotency_key_reused"] * 10
    _assert_ledger_sound()


def test_two_tills_posting_one_receipt_at_once_earn_once(store_key, customer):
    account = customer()
    body = _sale(account.member.member_no, receipt_number="SHARED-1")

    outcomes = _race(10, lambda i: _post(store_key[1], PURCHASES, body, f"till-{i}"))

    statuses = sorted(status for _, (status, _, _) in outcomes)
    assert statuses == [201] + [409] * 9
    assert Purchase.objects.count() == 1
    _assert_ledger_sound()


def test_tills_posting_purchases_on_one_card_at_once_lose_no_points(store_key, customer):
    """The till's lookup is the account's lock: concurrent earns on one card take turns."""
    account = customer()

    outcomes = _race(
        10, lambda i: _post(store_key[1], PURCHASES, _sale(account.member.member_no, receipt_number=f"R-{i}"), f"t-{i}")
    )

    assert sorted(status for _, (status, _, _) in outcomes) == [201] * 10
    assert sorted(body["pending"] for _, (_, body, _) in outcomes) == [80 * n for n in range(1, 11)]
    account.refresh_from_db()
    assert account.pending == 800
    _assert_ledger_sound()


def test_clerks_scanning_one_voucher_at_once_accept_it_once(store_key, customer):
    voucher = give_voucher(customer(), "gift-1")
    url = f"/api/v1/vouchers/{voucher.code}/redeem/"

    outcomes = _race(20, lambda i: _post(store_key[1], url, None, f"scan-{i}"))

    statuses = sorted(status for _, (status, _, _) in outcomes)
    assert statuses == [200] + [409] * 19
    voucher.refresh_from_db()
    assert voucher.status == "redeemed"
