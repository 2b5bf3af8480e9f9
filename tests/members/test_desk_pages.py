"""The clerk desk through Django's test client: what a clerk may see and do, and what they may not."""

import re

import pytest
from django.core import mail
from django.urls import reverse

from loyalty.models import Account, Purchase
from members.models import Member
from members.roles import Role
from members.services import staff_user_create
from tests.factories import ProgramFactory, StoreFactory

pytestmark = pytest.mark.django_db

ENROL = {
    "first_name": "Lotte",
    "last_name": "Janssens",
    "phone": "0470 11 22 33",
    "email": "lotte@example.com",
    "member_type": "roofer",
    "language": "nl",
    "accept_terms": "on",
    "marketing_consent": "on",
}


@pytest.fixture
def desk(client, clerk_user, desk_program):
    client.force_login(clerk_user)
    return client


def test_enrolling_at_the_desk_opens_the_member_with_the_bonus_and_mails_an_activation_link(
    desk, desk_program, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):  # the mail leaves once the enrolment commits
        response = desk.post(reverse("desk:enrol"), {**ENROL, "program": desk_program.pk}, follow=True)
    assert response.status_code == 200
    member = Member.objects.get()
    assert response.redirect_chain[-1][0] == reverse("desk:member", args=[member.member_no])
    page = response.content.decode()
    assert "Welcome bonus: 100 points" in page and "<svg" in page and member.member_no[:4] in page
    assert member.member_type == "roofer" and member.language == "nl"
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["lotte@example.com"]
    assert re.search(r"/accounts/activate/[^/\s]+/", mail.outbox[0].body)


def test_a_duplicate_phone_is_caught_with_a_link_to_the_member(desk, desk_program, counter_enrol):
    existing = counter_enrol(phone="+32470112233").member
    response = desk.post(reverse("desk:enrol"), {**ENROL, "program": desk_program.pk, "email": ""})
    assert response.status_code == 400
    page = response.content.decode()
    assert "A member with this phone already exists" in page
    assert reverse("desk:member", args=[existing.member_no]) in page
    assert Member.objects.count() == 1
    check = desk.get(reverse("desk:duplicates"), {"phone": "0470 112 233"}, headers={"HX-Request": "true"})
    assert "A member with this phone already exists" in check.content.decode()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("phone", "12", "is not a valid phone number"),
        ("accept_terms", "", "must accept the program"),
        ("referral_code", "ZZZZ9999", "is unknown"),
    ],
)
def test_bad_enrolment_input_says_what_to_fix_and_writes_nothing(desk, desk_program, field, value, message):
    desk_program.terms_versions.create(version="1", text="…", effective_on="2026-01-01")
    data = {**ENROL, "program": desk_program.pk, field: value}
    response = desk.post(reverse("desk:enrol"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Member.objects.exists() and not Account.objects.exists()


def test_recording_a_purchase_shows_the_explanation_and_keeps_clerk_and_store(desk, counter_enrol, clerk_user, store):
    account = counter_enrol(phone="0470000001")
    url = reverse("desk:purchase", args=[account.member.member_no])
    data = {"account": account.pk, "amount": "120.00", "receipt_number": "R-1", "request_id": "abc"}
    response = desk.post(url, data)
    assert response.status_code == 200
    assert "120 pts: 1 pt per EUR 1 on EUR 120" in response.content.decode()
    again = desk.post(url, data)  # the clerk presses twice: one purchase
    assert again.status_code == 200 and Purchase.objects.count() == 1
    purchase = Purchase.objects.get()
    assert (purchase.store, purchase.created_by) == (store, clerk_user)


def test_a_wrong_check_digit_is_named_at_the_desk(desk, counter_enrol):
    number = counter_enrol(phone="0470000001").member.member_no
    mistyped = number[:-1] + str((int(number[-1]) + 1) % 10)
    response = desk.get(reverse("desk:home"), {"q": mistyped})
    assert "its check digit is wrong" in response.content.decode()
    found = desk.get(reverse("desk:home"), {"q": number})
    assert reverse("desk:member", args=[number]) in found.content.decode()


def test_a_clerk_of_another_store_can_neither_find_nor_open_nor_act(client, counter_enrol):
    account = counter_enrol(phone="0470000001", last_name="Claes")
    number = account.member.member_no
    other_store = StoreFactory()
    ProgramFactory(slug="theirs").stores.add(other_store)
    outsider = staff_user_create(
        email="olga@example.com", password="x-Pass-12345", role=Role.STORE_CLERK, store=other_store
    )
    client.force_login(outsider)
    results = client.get(reverse("desk:home"), {"q": "Claes"}, headers={"HX-Request": "true"}).content.decode()
    assert "Nobody matches" in results and number not in results
    assert client.get(reverse("desk:member", args=[number])).status_code == 404
    assert client.get(reverse("desk:card", args=[number])).status_code == 404
    posted = client.post(
        reverse("desk:purchase", args=[number]),
        {"account": account.pk, "amount": "10", "receipt_number": "X", "request_id": "x"},
    )
    assert posted.status_code == 404 and not Purchase.objects.exists()


def test_members_and_anonymous_visitors_cannot_use_the_desk(client, member_user):
    assert client.get(reverse("desk:enrol")).status_code == 302
    client.force_login(member_user)
    assert client.get(reverse("desk:enrol")).status_code == 403
    assert client.get(reverse("desk:duplicates"), {"phone": "0470000001"}).status_code == 403


@pytest.mark.parametrize(
    ("blank", "message"),
    [
        (["first_name", "last_name", "company"], "name or their company"),
        (["phone", "email"], "Give a phone or an email, so the member can be found again."),
    ],
)
def test_an_enrolment_without_a_name_or_a_way_to_reach_the_member_is_refused(desk, desk_program, blank, message):
    data = {**ENROL, "program": desk_program.pk, **dict.fromkeys(blank, "")}
    response = desk.post(reverse("desk:enrol"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Member.objects.exists()


def test_the_duplicate_check_names_only_members_the_clerks_store_serves(desk, counter_enrol):
    from tests.factories import MemberFactory

    MemberFactory(first_name="Hidden", last_name="Person", phone="+32470555666")  # in no program of this store
    check = desk.get(reverse("desk:duplicates"), {"phone": "0470 555 666"}, headers={"HX-Request": "true"})
    page = check.content.decode()
    assert "A member with this phone already exists." in page and "Hidden" not in page
