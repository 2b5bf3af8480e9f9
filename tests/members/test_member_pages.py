"""The member's own pages: dashboard (fixed queries), statement, claims with evidence, referrals,
profile, data download and closing — and the 404s for anything that is another member's."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.models import Activity
from members.models import Member
from members.services import member_user_create

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 100
PDF = b"%PDF-1.4\n" + b"0" * 100


@pytest.fixture
def ann(counter_enrol, member_user):
    """Ann: enrolled at the counter, then signed in with the same (verified) email: the two are linked."""
    return counter_enrol(first_name="Ann", phone="0470000001", email=member_user.email)


@pytest.fixture
def me(client, member_user, ann):
    client.force_login(member_user)
    return client


@pytest.fixture
def bob(counter_enrol):
    account = counter_enrol(first_name="Bob", phone="0470000002", email="bob@example.com")
    user = member_user_create(email="bob@example.com", password="b0b-Secret-pass", email_verified=True)
    Member.objects.filter(pk=account.member.pk).update(user=user)
    return account


def test_a_verified_email_links_the_counter_member_instead_of_duplicating(me, ann, member_user):
    response = me.get(reverse("me:dashboard"))
    assert response.status_code == 200
    ann.member.refresh_from_db()
    assert ann.member.user == member_user and Member.objects.count() == 1
    assert "Blue Rewards" in response.content.decode()


def test_an_unverified_email_does_not_link(client, counter_enrol):
    cara = counter_enrol(first_name="Cara", phone="0470000005", email="cara@example.com").member
    stranger = member_user_create(email="CARA@example.com", password="s-Tr4nger-pass", email_verified=False)
    client.force_login(stranger)
    assert client.get(reverse("me:dashboard")).url == reverse("me:join")
    cara.refresh_from_db()
    assert cara.user is None


def test_the_dashboard_shows_progress_and_issues_a_fixed_number_of_queries(me, ann, buy):
    buy(ann, "900.00")
    me.get(reverse("me:dashboard"))  # the first visit links the sign-in to the member
    with CaptureQueriesContext(connection) as short:
        page = me.get(reverse("me:dashboard")).content.decode()
    assert "100 more qualifying points to reach Silver" in page and 'aria-valuenow="90"' in page
    for n in range(30):
        buy(ann, "1.00", receipt_number=f"more-{n}")
    with CaptureQueriesContext(connection) as long:
        me.get(reverse("me:dashboard"))
    assert len(long) == len(short)


def test_another_members_statement_claim_evidence_answers_404(me, bob):
    claim = Activity.objects.create(
        program=bob.program,
        account=bob,
        activity_type="training_hours",
        quantity=2,
        occurred_at=bob.enrolled_at,
        status="pending_review",
        idempotency_key="k",
        fingerprint="f",
        evidence=SimpleUploadedFile("x.pdf", PDF),
    )
    assert me.get(reverse("me:statement", args=[bob.pk])).status_code == 404
    assert me.get(reverse("me:claim_evidence", args=[claim.pk])).status_code == 404


def test_the_statement_filters_and_paginates(me, ann, buy):
    for n in range(30):
        buy(ann, "2.00", receipt_number=f"s-{n}")
    url = reverse("me:statement", args=[ann.pk])
    first = me.get(url).content.decode()
    assert "Page 1 of 2" in first
    welcome_only = me.get(url, {"kind": "earn", "to": "2000-01-01"}).content.decode()
    assert "Nothing yet." in welcome_only


def test_a_member_claims_training_with_evidence_and_it_waits_for_staff(me, ann):
    data = {
        "account": ann.pk,
        "activity_type": "training_hours",
        "quantity": "3",
        "occurred_on": "2026-11-02",
        "description": "Flat roofs course",
        "evidence": SimpleUploadedFile("cert.pdf", PDF),
        "request_id": "r1",
    }
    response = me.post(reverse("me:claims"), data)
    assert response.status_code == 302
    claim = Activity.objects.get()
    assert (claim.status, claim.account, claim.description) == ("pending_review", ann, "Flat roofs course")
    assert ann.entries.count() == 1  # only the welcome bonus: nothing before approval
    assert me.get(reverse("me:claim_evidence", args=[claim.pk])).status_code == 200


@pytest.mark.parametrize(
    ("upload", "message"),
    [
        (SimpleUploadedFile("virus.exe", b"MZ\x90\x00" + b"0" * 100), "Send a PDF, JPEG or PNG file"),
        (SimpleUploadedFile("huge.png", PNG + b"0" * (5 * 1024 * 1024)), "The file is too large"),
    ],
)
def test_a_wrong_type_or_oversized_evidence_file_is_refused(me, ann, upload, message):
    data = {
        "account": ann.pk,
        "activity_type": "certification",
        "quantity": "1",
        "occurred_on": "2026-11-02",
        "description": "Cert",
        "evidence": upload,
        "request_id": "r2",
    }
    response = me.post(reverse("me:claims"), data)
    assert response.status_code == 400 and message in response.content.decode()
    assert not Activity.objects.exists()


def test_the_referral_page_shows_the_code_and_the_people_referred(me, ann, counter_enrol):
    counter_enrol(first_name="Kim", phone="0470000009", referral_code=ann.member.referral_code)
    page = me.get(reverse("me:referrals")).content.decode()
    assert ann.member.referral_code in page and "Kim" in page


def test_the_profile_changes_contact_consent_and_language(me, ann, bob):
    data = {"email": "ann.new@example.com", "phone": "+32 470 00 00 07", "language": "fr", "marketing_consent": "on"}
    response = me.post(reverse("me:profile"), data)
    assert response.status_code == 302
    member = Member.objects.get(pk=ann.member.pk)
    assert (member.email, str(member.phone), member.language, member.marketing_consent) == (
        "ann.new@example.com",
        "+32470000007",
        "fr",
        True,
    )
    me.cookies.pop("django_language")
    taken = me.post(reverse("me:profile"), {**data, "email": "BOB@example.com", "language": "en"})
    assert taken.status_code == 400 and "Another member already uses this email" in taken.content.decode()


def test_the_member_downloads_their_data_with_formula_cells_escaped(me, ann):
    Member.objects.filter(pk=ann.member.pk).update(last_name="=HYPERLINK(1)")
    data = json.loads(me.get(reverse("me:data", args=["json"])).content)
    assert data["member"]["member_no"] == ann.member.member_no
    assert data["accounts"][0]["ledger"][0]["points"] == 100
    csv_text = me.get(reverse("me:data", args=["csv"])).content.decode("utf-8-sig")
    assert "welcome bonus" in csv_text
    from portal.member_data import spreadsheet_safe

    assert [spreadsheet_safe(v) for v in ["=1+1", "+1", "-2", "@x", "\tx", "ok", 5]] == [
        "'=1+1",
        "'+1",
        "'-2",
        "'@x",
        "'\tx",
        "ok",
        5,
    ]
    assert io.StringIO(csv_text).readline().startswith("program,date,kind,points")


def test_closing_the_membership_erases_the_person_and_signs_out(me, ann, member_user):
    refused = me.post(reverse("me:close"), {"confirm": "nope"})
    assert refused.status_code == 400
    response = me.post(reverse("me:close"), {"confirm": ann.member.member_no})
    assert response.status_code == 302
    member = Member.objects.get(pk=ann.member.pk)
    assert member.status == "anonymised" and member.email == "" and member.user is None
    assert me.get(reverse("me:dashboard")).status_code == 302  # signed out
    assert ann.entries.count() == 1  # the ledger is the program's books: kept


def test_joining_online_with_an_invitation_only_program(client, desk_program):
    from loyalty import services

    desk_program.enrolment_mode = "invitation"
    desk_program.save()
    user = member_user_create(email="new@example.com", password="N3w-member-pass", email_verified=True)
    client.force_login(user)
    data = {
        "program": desk_program.pk,
        "first_name": "Nel",
        "last_name": "Wouters",
        "member_type": "consumer",
        "accept_terms": "on",
    }
    refused = client.post(reverse("me:join"), data)
    assert refused.status_code == 400 and "not valid" in refused.content.decode()
    invitation = services.invitation_create(program=desk_program)
    assert client.post(reverse("me:join"), {**data, "invitation_code": invitation.code}).status_code == 302
    member = Member.objects.get(user=user)
    assert (member.email, member.enrolment_channel) == ("new@example.com", "online")


def test_evidence_is_private_and_only_reviewers_can_open_it(me, ann, client, manager_user, analyst_user):
    import re

    data = {
        "account": ann.pk,
        "activity_type": "review",
        "quantity": "1",
        "occurred_on": "2026-11-02",
        "description": "Review of the drill",
        "evidence": SimpleUploadedFile("my review.png", PNG),
        "request_id": "r3",
    }
    me.post(reverse("me:claims"), data)
    claim = Activity.objects.get()
    assert re.fullmatch(r"evidence/\d{4}/\d{2}/[0-9a-f]{32}\.png", claim.evidence.name)
    with pytest.raises(ValueError):
        claim.evidence.url  # noqa: B018 - private storage has no public URL
    url = reverse("programs:claim_evidence", args=[ann.program.slug, claim.pk])
    client.force_login(analyst_user)
    assert client.get(url).status_code == 403
    client.force_login(manager_user)
    response = client.get(url)
    assert response.status_code == 200 and b"".join(response.streaming_content) == PNG


def test_a_suspended_member_is_refused_the_portal_and_cannot_join_again(me, ann):
    Member.objects.filter(pk=ann.member.pk).update(status="suspended")
    assert me.get(reverse("me:dashboard")).status_code == 403
    assert me.get(reverse("me:join")).url == reverse("me:dashboard")
    assert Member.objects.count() == 1


def test_joining_online_does_not_name_the_member_who_owns_a_phone(client, desk_program, counter_enrol):
    counter_enrol(first_name="Secret", last_name="Owner", phone="0470000001")
    user = member_user_create(email="curious@example.com", password="Cur10us-pass", email_verified=True)
    client.force_login(user)
    data = {
        "program": desk_program.pk,
        "first_name": "Cu",
        "last_name": "Rious",
        "member_type": "consumer",
        "phone": "0470000001",
        "accept_terms": "on",
    }
    response = client.post(reverse("me:join"), data)
    page = response.content.decode()
    assert response.status_code == 400 and "A member with this phone already exists." in page
    assert "Owner" not in page


def test_an_event_claim_with_evidence_shows_among_my_claims(me, ann):
    data = {
        "account": ann.pk,
        "activity_type": "event_attendance",
        "quantity": "1",
        "occurred_on": "2026-11-02",
        "description": "Trade fair",
        "evidence": SimpleUploadedFile("badge.pdf", PDF),
        "request_id": "r9",
    }
    assert me.post(reverse("me:claims"), data).status_code == 302
    assert "Trade fair" in me.get(reverse("me:claims")).content.decode()
