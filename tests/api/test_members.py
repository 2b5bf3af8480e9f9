"""/api/v1/members/: exact lookup (never fuzzy), enrolment at the till, and a member's balances."""

import pytest
from django.utils import timezone

from members.models import Member
from tests.api.conftest import error_of, replayed

pytestmark = pytest.mark.django_db

MEMBERS = "/api/v1/members/"


# --- lookup -----------------------------------------------------------------------------------


def test_lookup_by_card_phone_or_email_finds_exactly_that_member(api, customer):
    lotte = customer(phone="+32470112233", email="Lotte@Example.com")
    customer(phone="+32470999999", email="other@example.com")
    card = lotte.member.member_no

    typed_card = f"{card[:4]} {card[4:]}"  # as printed on the card, with its space
    for query in ({"card": card}, {"card": typed_card}, {"phone": "0470 11 22 33"}, {"email": "lotte@example.COM"}):
        response = api.get(MEMBERS, query)

        assert response.status_code == 200, (query, response.content)
        results = response.json()["results"]
        assert [row["member_no"] for row in results] == [card], query
        assert results[0]["last_name"] == lotte.member.last_name


def test_lookup_is_exact_not_a_search(api, customer):
    lotte = customer(phone="+32470112233")

    for query in ({"card": lotte.member.member_no[:-1]}, {"email": "lotte"}, {"phone": "0470 11 22"}):
        response = api.get(MEMBERS, query)

        assert response.status_code == 200
        assert response.json()["results"] == [], query


def test_lookup_without_a_criterion_says_what_to_give(api):
    response = api.get(MEMBERS)

    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid"
    assert "card" in error["fields"]


def test_lookup_never_finds_another_stores_members(api, elsewhere):
    response = api.get(MEMBERS, {"email": elsewhere.member.email})

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_lookup_results_are_paginated(api, shop, enrol):
    # The same person's suspended records (an email is unique among active members only) are found too.
    enrol(shop, email="family@example.com")
    old = [enrol(shop).member_id for _ in range(2)]
    Member.objects.filter(pk__in=old).update(status=Member.Status.SUSPENDED, email="family@example.com")

    response = api.get(MEMBERS, {"email": "family@example.com", "page_size": 2})

    body = response.json()
    assert body["count"] == 3
    assert len(body["results"]) == 2
    assert body["next"]


# --- enrolment --------------------------------------------------------------------------------


def test_enrolment_at_the_till_creates_the_member_with_the_welcome_bonus(api, store):
    response = api.post(
        MEMBERS,
        {"first_name": "Lotte", "last_name": "Janssens", "phone": "0470 11 22 33", "accept_terms": True},
        format="json",
    )

    assert response.status_code == 201, response.content
    body = response.json()
    member = Member.objects.get(member_no=body["member_no"])
    assert (member.phone, member.enrolment_channel, member.home_store) == ("+32470112233", "api", store)
    assert [(a["program"], a["balance"], a["tier"]) for a in body["accounts"]] == [("blue", 100, "Bronze")]


def test_enrolment_retried_with_its_key_enrols_once(api):
    body = {"first_name": "Lotte", "last_name": "Janssens", "email": "lotte@example.com", "accept_terms": True}

    first = api.post_keyed(MEMBERS, body, key="enrol-1")
    again = api.post_keyed(MEMBERS, body, key="enrol-1")

    assert first.status_code == again.status_code == 201
    assert replayed(again) and again.json() == first.json()
    assert Member.objects.filter(email="lotte@example.com").count() == 1


@pytest.mark.parametrize(
    ("fields", "code", "status", "field"),
    [
        ({"accept_terms": False}, "terms_not_accepted", 422, "accept_terms"),
        ({"email": "not-an-email"}, "invalid", 400, "email"),
        ({"language": "de"}, "invalid", 400, "language"),
        ({"accept_terms": None}, "invalid", 400, "accept_terms"),
        ({"program": "green"}, "program_required", 422, "program"),
        ({"phone": "12"}, "invalid_phone", 422, "phone"),
        ({"email": "", "phone": ""}, "invalid", 400, "phone"),  # found by the schemathesis run
        ({"first_name": "", "last_name": "", "company": ""}, "invalid", 400, "last_name"),
    ],
)
def test_bad_enrolments_are_refused_and_write_nothing(api, shop, rows_written, fields, code, status, field):
    from tests.factories import TermsVersionFactory

    TermsVersionFactory(program=shop)
    before = rows_written()
    body = {"first_name": "Lotte", "last_name": "Janssens", "email": "lotte@example.com", "accept_terms": True}

    response = api.post(MEMBERS, body | fields, format="json")

    assert response.status_code == status, response.content
    error = error_of(response)
    assert error["code"] == code
    assert field in error["fields"], error
    assert rows_written() == before


def test_enrolling_someone_already_a_member_is_a_conflict(api, customer, rows_written):
    customer(email="lotte@example.com", phone="+32470112233")
    before = rows_written()

    response = api.post(
        MEMBERS,
        {"first_name": "Lotte", "last_name": "J", "email": "LOTTE@example.com", "accept_terms": True},
        format="json",
    )

    assert response.status_code == 409
    assert error_of(response)["code"] == "duplicate_member"
    assert rows_written() == before


# --- a member's balances ----------------------------------------------------------------------


def test_member_detail_gives_balance_pending_tier_progress_and_expiring_points(api, customer, shop, buy):
    shop.expiry_policy = "months_after_earn"
    shop.expiry_months = 2
    shop.save()
    account = customer()
    buy(account, "250.00")

    response = api.get(f"{MEMBERS}{account.member.member_no}/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["member_no"] == account.member.member_no
    [summary] = body["accounts"]
    assert (summary["program"], summary["balance"], summary["pending"], summary["tier"]) == ("blue", 100, 250, "Bronze")
    progress = summary["tier_progress"]
    assert (progress["tier"], progress["next_tier"]) == ("Bronze", "Silver")
    assert progress["missing"] == 1000 - 250, progress  # the welcome bonus does not qualify
    assert progress["percent"] == 25
    assert [row["points"] for row in summary["expiring"]] == [100]  # pending points are not expiring yet


def test_member_detail_of_an_unknown_or_foreign_card_is_not_found(api, elsewhere):
    for member_no in ("8000000000", elsewhere.member.member_no):
        response = api.get(f"{MEMBERS}{member_no}/")

        assert response.status_code == 404
        assert error_of(response)["code"] == "member_not_found"


def test_an_anonymised_member_is_not_found(api, customer):
    account = customer()
    Member.objects.filter(pk=account.member_id).update(status=Member.Status.ANONYMISED)

    response = api.get(f"{MEMBERS}{account.member.member_no}/")

    assert response.status_code == 404


def test_member_detail_costs_a_fixed_number_of_queries(api, customer, buy, django_assert_max_num_queries):
    account = customer()
    buy(account, "20.00", occurred_at=timezone.now())

    with django_assert_max_num_queries(12):
        response = api.get(f"{MEMBERS}{account.member.member_no}/")

    assert response.status_code == 200


def test_points_of_a_suspended_member_are_refused_with_a_clear_code(api, customer):
    account = customer()
    Member.objects.filter(pk=account.member_id).update(status=Member.Status.SUSPENDED)

    response = api.post_keyed(
        "/api/v1/purchases/",
        {
            "member": account.member.member_no,
            "amount": "10.00",
            "currency": "EUR",
            "receipt_number": "S-1",
            "occurred_at": timezone.now().isoformat(),
        },
    )

    assert response.status_code == 422, response.content
    assert error_of(response)["code"] == "member_not_active"
