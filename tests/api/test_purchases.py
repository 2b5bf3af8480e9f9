"""POST /api/v1/purchases/, returns and activities: points with explanations, idempotent retries,
duplicate receipts, and refusals that write nothing."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty.models import Activity, ActivityType, EarnRule, LedgerEntry, Purchase
from tests.api.conftest import error_of, replayed
from tests.factories import EarnRuleFactory

pytestmark = pytest.mark.django_db

PURCHASES = "/api/v1/purchases/"


def purchase(member_no, **fields):
    body = {
        "member": member_no,
        "amount": "120.00",
        "currency": "EUR",
        "receipt_number": "T1-0001",
        "occurred_at": timezone.now().isoformat(),
    }
    return body | fields


def test_a_purchase_earns_points_with_their_explanation_and_returns_the_new_balance(api, customer, store):
    account = customer()

    response = api.post_keyed(PURCHASES, purchase(account.member.member_no))

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points"] == 120
    assert body["receipt_number"] == "T1-0001"
    assert any("Base earning" in text for text in body["explanations"]), body["explanations"]
    assert [entry["points"] for entry in body["entries"]] == [120]
    assert body["balance"] == 100  # the welcome bonus; the purchase is pending through the return window
    assert body["pending"] == 120
    assert body["tier"] == "Bronze"
    assert Purchase.objects.get(pk=body["id"]).store == store
    account.refresh_from_db()
    assert (account.balance, account.pending) == (100, 120)


def test_lines_with_product_categories_reach_the_category_rules(api, customer, shop):
    EarnRuleFactory(program=shop, name="Paint bonus", rate=Decimal("2"), product_categories=["PAINT"])
    account = customer()

    response = api.post_keyed(
        PURCHASES,
        purchase(account.member.member_no, amount="100.00", lines=[{"category": "PAINT", "amount": "40.00"}]),
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert sorted(entry["points"] for entry in body["entries"]) == [80, 100], body
    assert any("Paint bonus" in text for text in body["explanations"]), body["explanations"]


def test_the_idempotency_key_is_required_and_nothing_is_written_without_it(api, customer, rows_written):
    account = customer()
    before = rows_written()

    response = api.post(PURCHASES, purchase(account.member.member_no), format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "idempotency_key_required"
    assert rows_written() == before


def test_a_retry_with_the_same_key_replays_the_first_response_and_earns_once(api, customer):
    account = customer()
    body = purchase(account.member.member_no)

    first = api.post_keyed(PURCHASES, body, key="till1-000042")
    again = api.post_keyed(PURCHASES, body, key="till1-000042")

    assert first.status_code == again.status_code == 201
    assert again.content == first.content  # byte for byte
    assert replayed(again) and not replayed(first)
    assert Purchase.objects.filter(account=account).count() == 1
    assert LedgerEntry.objects.filter(account=account, kind="earn", purchase__isnull=False).count() == 1


def test_a_refusal_is_replayed_too_even_after_the_cause_is_gone(api, customer, shop):
    """The first answer is the answer: a retry must not turn a refused sale into an earn later."""
    account = customer()
    body = purchase(account.member.member_no, currency="USD")

    first = api.post_keyed(PURCHASES, body, key="usd-1")
    shop.currency = "USD"
    shop.save()
    again = api.post_keyed(PURCHASES, body, key="usd-1")

    assert first.status_code == again.status_code == 422
    assert error_of(again)["code"] == "currency_mismatch"
    assert replayed(again)
    assert not Purchase.objects.exists()


def test_the_same_key_with_another_body_is_refused_and_writes_nothing(api, customer, rows_written):
    account = customer()
    api.post_keyed(PURCHASES, purchase(account.member.member_no), key="k-1")
    before = rows_written()

    response = api.post_keyed(PURCHASES, purchase(account.member.member_no, amount="999.00"), key="k-1")

    assert response.status_code == 422
    error = error_of(response)
    assert error["code"] == "idempotency_key_reused"
    assert "Idempotency-Key" in error["message"] or "key" in error["message"].lower()
    assert rows_written() == before


def test_keys_are_per_store_so_two_stores_may_use_the_same_key(api, customer, shop):
    """Tills number their requests from 1: another store's key 'k-1' is another request."""
    from members import services as member_services
    from tests.api.conftest import client_for
    from tests.factories import StoreFactory

    other = StoreFactory(code="antwerp-02")
    shop.stores.add(other)
    other_till = client_for(member_services.api_key_create(store=other, name="Till A")[1])
    account = customer()

    first = api.post_keyed(PURCHASES, purchase(account.member.member_no, receipt_number="B-1"), key="k-1")
    second = other_till.post(
        PURCHASES, purchase(account.member.member_no, receipt_number="A-1"), format="json", HTTP_IDEMPOTENCY_KEY="k-1"
    )

    assert first.status_code == second.status_code == 201, second.content
    assert not replayed(second)
    assert Purchase.objects.filter(account=account).count() == 2


def test_a_receipt_posted_again_under_a_new_key_is_a_duplicate_not_a_second_earn(api, customer, rows_written):
    account = customer()
    api.post_keyed(PURCHASES, purchase(account.member.member_no, receipt_number="R-77"))
    before = rows_written()

    response = api.post_keyed(PURCHASES, purchase(account.member.member_no, receipt_number="R-77"))

    assert response.status_code == 409
    assert error_of(response)["code"] == "duplicate_receipt"
    assert rows_written() == before


@pytest.mark.parametrize(
    ("fields", "code", "status", "field"),
    [
        ({"currency": "USD"}, "currency_mismatch", 422, None),
        ({"occurred_at": (timezone.now() + datetime.timedelta(days=2)).isoformat()}, "occurred_in_future", 422, None),
        ({"occurred_at": "2001-01-01T10:00:00+01:00"}, "occurred_too_long_ago", 422, None),
        ({"amount": "0.00"}, "invalid", 400, "amount"),
        ({"amount": "12.345"}, "invalid", 400, "amount"),
        ({"amount": "ten"}, "invalid", 400, "amount"),
        ({"currency": "euro"}, "invalid", 400, "currency"),
        ({"occurred_at": "yesterday"}, "invalid", 400, "occurred_at"),
        ({"receipt_number": ""}, "invalid", 400, "receipt_number"),
        ({"lines": [{"category": "PAINT", "amount": "-4"}]}, "invalid", 400, "lines.0.amount"),
        ({"member": "8000000000"}, "member_not_found", 404, "member"),
        ({"program": "green"}, "member_not_found", 404, "program"),
    ],
)
def test_bad_purchases_are_refused_with_a_code_that_says_what_to_fix_and_write_nothing(
    api, customer, rows_written, fields, code, status, field
):
    account = customer()
    before = rows_written()

    response = api.post_keyed(PURCHASES, purchase(account.member.member_no, **fields))

    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code
    if field:
        assert field in error["fields"], error
    assert rows_written() == before


def test_a_body_that_is_not_json_gets_a_clear_400(api, customer):
    response = api.generic(
        "POST", PURCHASES, "{not json", content_type="application/json", HTTP_IDEMPOTENCY_KEY="broken-1"
    )

    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_json"


def test_a_member_of_several_programs_at_the_store_needs_the_program_named(api, customer, shop, store, program):
    from loyalty import services as engine_services
    from tests.factories import ProgramFactory, TierFactory

    second = ProgramFactory(name="Pro Club", slug="pro")
    TierFactory(program=second, rank=1, name="Pro", threshold=0)
    second.stores.add(store)
    account = customer()
    engine_services.enrol(member=account.member, program=second)

    ambiguous = api.post_keyed(PURCHASES, purchase(account.member.member_no))
    named = api.post_keyed(PURCHASES, purchase(account.member.member_no, program="blue"))

    assert ambiguous.status_code == 422
    assert error_of(ambiguous)["code"] == "program_required"
    assert named.status_code == 201
    assert Purchase.objects.get().program == shop


# --- returns ----------------------------------------------------------------------------------


def test_a_return_takes_back_points_in_proportion(api, customer):
    account = customer()
    bought = api.post_keyed(PURCHASES, purchase(account.member.member_no, amount="200.00")).json()

    response = api.post_keyed(f"/api/v1/purchases/{bought['id']}/returns/", {"amount": "50.00"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["points_reversed"] == 50
    assert body["points_shortfall"] == 0
    assert body["pending"] == 150
    account.refresh_from_db()
    assert account.pending == 150


def test_a_return_by_lines_adds_their_amounts(api, customer):
    account = customer()
    bought = api.post_keyed(PURCHASES, purchase(account.member.member_no, amount="100.00")).json()

    response = api.post_keyed(
        f"/api/v1/purchases/{bought['id']}/returns/",
        {"lines": [{"category": "PAINT", "amount": "20.00"}, {"category": "TOOLS", "amount": "5.00"}]},
    )

    assert response.status_code == 201, response.content
    assert response.json()["points_reversed"] == 25


def test_a_return_retried_with_its_key_reverses_once(api, customer):
    account = customer()
    bought = api.post_keyed(PURCHASES, purchase(account.member.member_no, amount="100.00")).json()
    url = f"/api/v1/purchases/{bought['id']}/returns/"

    first = api.post_keyed(url, {"amount": "40.00"}, key="ret-1")
    again = api.post_keyed(url, {"amount": "40.00"}, key="ret-1")

    assert again.json() == first.json() and replayed(again)
    account.refresh_from_db()
    assert account.pending == 60


@pytest.mark.parametrize(
    ("body", "code", "status"),
    [
        ({"amount": "150.00"}, "return_exceeds_purchase", 422),
        ({}, "invalid", 400),
        ({"amount": "10.00", "lines": [{"category": "PAINT", "amount": "10.00"}]}, "invalid", 400),
    ],
)
def test_bad_returns_are_refused_and_write_nothing(api, customer, rows_written, body, code, status):
    account = customer()
    bought = api.post_keyed(PURCHASES, purchase(account.member.member_no, amount="100.00")).json()
    before = rows_written()

    response = api.post_keyed(f"/api/v1/purchases/{bought['id']}/returns/", body)

    assert response.status_code == status, response.content
    assert error_of(response)["code"] == code
    assert rows_written() == before


def test_a_return_of_an_unknown_purchase_is_not_found(api, customer):
    response = api.post_keyed("/api/v1/purchases/999999/returns/", {"amount": "1.00"})

    assert response.status_code == 404
    assert error_of(response)["code"] == "purchase_not_found"


# --- activities -------------------------------------------------------------------------------


def test_an_event_attendance_earns_the_event_rule(api, customer, shop):
    EarnRuleFactory(
        program=shop,
        name="Open day",
        activity_type=ActivityType.EVENT_ATTENDANCE,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("250"),
    )
    account = customer()

    response = api.post_keyed(
        "/api/v1/activities/",
        {"member": account.member.member_no, "activity_type": "event_attendance", "code": "open-day-2026"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "approved"
    assert body["points"] == 250
    assert any("Open day" in text for text in body["explanations"])


def test_training_hours_wait_for_staff_like_every_claim_that_needs_evidence(api, customer, shop, store):
    EarnRuleFactory(
        program=shop,
        name="Training",
        activity_type=ActivityType.TRAINING_HOURS,
        calculation=EarnRule.Calculation.PER_QUANTITY,
        rate=Decimal("30"),
    )
    account = customer()

    response = api.post_keyed(
        "/api/v1/activities/",
        {"member": account.member.member_no, "activity_type": "training_hours", "quantity": "3"},
    )

    assert response.status_code == 201, response.content
    body = response.json()
    # Training needs evidence: a claim for staff, no points yet.
    assert (body["status"], body["points"]) == ("pending_review", 0)
    claim = Activity.objects.get(pk=body["id"])
    assert (claim.quantity, claim.store) == (Decimal("3"), store)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"activity_type": "purchase"}, "activity_type"),
        ({"quantity": "0"}, "quantity"),
        ({"code": "no spaces"}, "code"),
    ],
)
def test_bad_activities_are_refused(api, customer, rows_written, fields, field):
    account = customer()
    before = rows_written()

    response = api.post_keyed(
        "/api/v1/activities/", {"member": account.member.member_no, "activity_type": "check_in"} | fields
    )

    assert response.status_code == 400, response.content
    assert field in error_of(response)["fields"]
    assert rows_written() == before


def test_an_address_that_does_not_exist_answers_in_the_api_format(api):
    for url in ("/api/v1/purchases/not-a-number/returns/", "/api/v1/nothing-here/"):
        response = api.post_keyed(url, {})

        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert error_of(response)["code"] == "not_found"


def test_a_purchase_costs_a_fixed_number_of_queries_however_many_lines_and_entries(
    api, customer, shop, django_assert_max_num_queries
):
    """The key's record, the account found and locked by card number in one statement, the purchase
    (inserted unless its key or receipt is taken: no read of earlier purchases, no savepoint), one insert
    for all its ledger entries, the qualifying total, the account and the recorded answer, with the
    savepoints of the test's transaction: 12 queries (24 before bench/api.py's first tuning, then 18
    plus one per entry after the first, then 16, then 13). The rule set and the tier ladder are this
    process's, read again only when the program's rules version (RulesVersion) changes
    (tests/engine/test_rule_cache.py)."""
    for category in ("PAINT", "TOOLS", "GARDEN"):
        EarnRuleFactory(program=shop, name=f"{category} x2", rate=Decimal("2"), product_categories=[category])
    account = customer()
    api.post_keyed(PURCHASES, purchase(account.member.member_no, receipt_number="warm-up"))  # the key's last use
    lines = [{"category": ("PAINT", "TOOLS", "GARDEN", "OTHER")[i % 4], "amount": "10.00"} for i in range(12)]

    with django_assert_max_num_queries(12):  # four entries: base and the three category rules
        response = api.post_keyed(PURCHASES, purchase(account.member.member_no, lines=lines))
    with django_assert_max_num_queries(12):  # one entry
        single = api.post_keyed(PURCHASES, purchase(account.member.member_no, receipt_number="T1-0002"))

    assert response.status_code == 201, response.content
    assert response.json()["points"] == 120 + 2 * 90
    assert single.status_code == 201, single.content
    assert len(single.json()["entries"]) == 1
