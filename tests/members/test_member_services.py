"""Members: card numbers with a check digit, E.164 phones, duplicates, consent, referrals, invitations,
anonymisation — through the services, on PostgreSQL."""

import datetime

import pytest
from django.utils import timezone

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, LedgerEntry, TermsAcceptance
from members import numbers
from members.models import ConsentRecord, Member
from members.services import member_anonymise, member_consent_set, phone_normalise
from tests.factories import EarnRuleFactory, ProgramFactory, StoreFactory

pytestmark = pytest.mark.django_db


def test_issued_numbers_carry_a_check_digit_that_catches_typos():
    number = numbers.generate()
    assert numbers.looks_issued(number) and numbers.check_digit_ok(number)
    wrong_digit = number[:-2] + str((int(number[-2]) + 1) % 10) + number[-1]
    assert not numbers.check_digit_ok(wrong_digit)
    for i in range(len(number) - 1):  # every swap of two neighbours, but Luhn's one blind spot (09 <-> 90)
        pair = number[i : i + 2]
        if pair[0] != pair[1] and pair not in ("09", "90"):
            swapped = number[:i] + pair[::-1] + number[i + 2 :]
            assert not numbers.check_digit_ok(swapped), swapped


@pytest.mark.parametrize(
    "typed", ["0470 12 34 56", "+32 470 12 34 56", "0032470123456", "+32470123456", "0470/12.34.56"]
)
def test_phones_are_stored_in_e164_whatever_the_format(typed):
    assert phone_normalise(typed) == "+32470123456"


def test_an_invalid_phone_is_refused_and_nothing_is_written(counter_enrol):
    with pytest.raises(ApplicationError) as refused:
        counter_enrol(phone="12345", email="jo@example.com")
    assert refused.value.extra["field"] == "phone" and "12345" in refused.value.message
    assert not Member.objects.exists() and not Account.objects.exists()


def test_counter_enrolment_issues_a_card_credits_the_welcome_bonus_and_records_who(counter_enrol, clerk_user, store):
    account = counter_enrol(phone="0470 12 34 56", email="Jo@Example.com", marketing_consent=True)
    member = account.member
    assert numbers.check_digit_ok(member.member_no) and numbers.looks_issued(member.member_no)
    assert member.phone == "+32470123456" and member.email == "Jo@example.com"
    assert (member.enrolment_channel, member.enrolled_by, member.enrolled_at_store) == ("counter", clerk_user, store)
    assert account.balance + account.pending == 100
    welcome = account.entries.get()
    assert welcome.reason == "100 pts: welcome bonus" and welcome.created_by == clerk_user
    consent = ConsentRecord.objects.get(member=member)
    assert consent.granted and consent.channel == "counter" and consent.recorded_by == clerk_user
    assert member.referral_code and len(member.referral_code) == 8


def test_a_duplicate_email_or_phone_is_caught_whatever_its_case_or_format(counter_enrol):
    first = counter_enrol(phone="0470 12 34 56", email="jo@example.com").member
    with pytest.raises(ApplicationError) as by_phone:
        counter_enrol(phone="+32 470 123 456", first_name="Other")
    assert by_phone.value.code == "duplicate_member" and by_phone.value.extra["member"] == first
    assert "phone" in by_phone.value.message
    with pytest.raises(ApplicationError) as by_email:
        counter_enrol(email="JO@EXAMPLE.COM")
    assert by_email.value.extra["field"] == "email"
    assert Member.objects.count() == 1 and Account.objects.count() == 1


def test_the_database_itself_refuses_two_active_members_with_one_phone(counter_enrol):
    from django.db import IntegrityError, transaction

    member = counter_enrol(phone="0470123456").member
    clone = Member(member_no="X1", last_name="Clone", phone=member.phone)
    with pytest.raises(IntegrityError), transaction.atomic():
        clone.save()
    member.status = Member.Status.CLOSED
    member.save()
    clone.save()  # a closed member's phone may be reused


def test_terms_must_be_accepted_and_the_acceptance_is_recorded(counter_enrol, desk_program, clerk_user):
    desk_program.terms_versions.create(version="2026.1", text="…", effective_on=datetime.date(2026, 1, 1))
    with pytest.raises(ApplicationError) as refused:
        counter_enrol(phone="0470123456", accept_terms=False)
    assert refused.value.code == "terms_not_accepted" and "2026.1" in refused.value.message
    assert not Member.objects.exists()
    account = counter_enrol(phone="0470123456")
    acceptance = TermsAcceptance.objects.get(account=account)
    assert (acceptance.terms.version, acceptance.channel, acceptance.recorded_by) == ("2026.1", "counter", clerk_user)


def test_a_store_enrols_only_into_programs_it_runs(counter_enrol):
    other = ProgramFactory(slug="other")
    with pytest.raises(ApplicationError) as refused:
        counter_enrol(program=other, phone="0470123456")
    assert refused.value.code == "store_not_in_program"
    assert not Member.objects.exists()


def test_invitation_only_programs_need_a_valid_unused_unexpired_code(counter_enrol, desk_program):
    desk_program.enrolment_mode = "invitation"
    desk_program.save()
    with pytest.raises(ApplicationError) as missing:
        counter_enrol(phone="0470000001")
    assert missing.value.code == "invalid_invitation"
    expired = services.invitation_create(program=desk_program)
    expired.expires_at = timezone.now() - datetime.timedelta(days=1)
    expired.save()
    with pytest.raises(ApplicationError) as late:
        counter_enrol(phone="0470000001", invitation_code=expired.code)
    assert late.value.code == "invitation_expired"
    invitation = services.invitation_create(program=desk_program)
    counter_enrol(phone="0470000001", invitation_code=invitation.code.lower())
    with pytest.raises(ApplicationError) as used:
        counter_enrol(phone="0470000002", invitation_code=invitation.code)
    assert used.value.code == "invitation_used"
    assert Member.objects.count() == 1
    invitation.refresh_from_db()
    assert invitation.uses == 1


def test_a_pilot_stops_at_its_cap(counter_enrol, desk_program):
    desk_program.enrolment_mode, desk_program.pilot_member_cap = "pilot", 1
    desk_program.save()
    counter_enrol(phone="0470000001")
    with pytest.raises(ApplicationError) as full:
        counter_enrol(phone="0470000002")
    assert full.value.code == "pilot_full"
    assert Member.objects.count() == 1  # the refused enrolment left no member behind


def test_referral_rewards_the_referrer_on_enrolment_and_the_referee_on_first_purchase(counter_enrol, desk_program, buy):
    EarnRuleFactory(
        program=desk_program,
        name="Referral",
        activity_type="referral",
        calculation="fixed",
        rate=250,
        apply_tier_multiplier=False,
        qualifying=False,
        referral_party="referrer",
        referral_trigger="enrolment",
    )
    EarnRuleFactory(
        program=desk_program,
        name="Welcome friend",
        activity_type="referral",
        calculation="fixed",
        rate=50,
        apply_tier_multiplier=False,
        qualifying=False,
        referral_party="referee",
        referral_trigger="first_purchase",
    )
    referrer = counter_enrol(phone="0470000001")
    referee = counter_enrol(phone="0470000002", first_name="Kim", referral_code=referrer.member.referral_code.lower())
    assert referee.member.referred_by == referrer.member
    referrer.refresh_from_db()
    assert referrer.balance == 100 + 250
    assert referrer.entries.filter(rule__name="Referral").get().reason.startswith("250 pts")
    assert referee.balance == 100  # the referee's reward waits for a first purchase

    buy(referee, "10.00")
    buy(referee, "10.00")  # a second purchase rewards nothing more
    rewarded = LedgerEntry.objects.filter(account=referee, rule__name="Welcome friend")
    assert rewarded.count() == 1 and rewarded.get().points == 50


def test_no_self_referral_and_unknown_codes_are_refused(counter_enrol):
    referrer = counter_enrol(phone="0470000001", email="me@example.com")
    with pytest.raises(ApplicationError) as own:
        counter_enrol(email="ME@example.com", referral_code=referrer.member.referral_code)
    assert own.value.code == "self_referral"
    with pytest.raises(ApplicationError) as unknown:
        counter_enrol(phone="0470000002", referral_code="NOSUCH99")
    assert unknown.value.code == "unknown_referral_code" and "NOSUCH99" in unknown.value.message
    assert Member.objects.count() == 1


def test_consent_changes_are_kept_as_history(counter_enrol):
    member = counter_enrol(phone="0470000001").member
    member_consent_set(member=member, granted=True, channel="online")
    member_consent_set(member=member, granted=True, channel="online")  # no change, no record
    member_consent_set(member=member, granted=False, channel="online")
    assert list(member.consent_records.order_by("pk").values_list("granted", flat=True)) == [False, True, False]


def test_anonymising_erases_the_person_and_keeps_the_ledger(counter_enrol, buy, member_user):
    account = counter_enrol(phone="0470000001", email=member_user.email)
    member = account.member
    member.user = member_user
    member.save()
    buy(account, "42.00")
    points_before = list(account.entries.order_by("pk").values_list("points", flat=True))

    member_anonymise(member=member)

    member.refresh_from_db()
    member_user.refresh_from_db()
    assert (member.first_name, member.email, member.phone, member.status) == ("", "", "", "anonymised")
    assert member.user is None and not member_user.is_active and "example.com" not in member_user.email
    assert list(account.entries.order_by("pk").values_list("points", flat=True)) == points_before


def test_a_store_that_does_not_run_the_program_sees_none_of_its_members(counter_enrol):
    from loyalty import selectors

    member = counter_enrol(phone="0470000001", last_name="Maes").member
    elsewhere = StoreFactory()
    assert selectors.desk_member_search(store=elsewhere, query="Maes") == []
    assert selectors.desk_member(store=elsewhere, member_no=member.member_no) is None
    assert selectors.desk_member(store=member.enrolled_at_store, member_no=member.member_no) == member


@pytest.mark.parametrize("typed", ["0470 00", "+32470", "Mae", "jo.maes@", "{prefix}"])
def test_desk_search_finds_by_the_beginning_of_phone_email_name_or_card(counter_enrol, store, typed):
    from loyalty import selectors

    member = counter_enrol(phone="0470000001", last_name="Maes", email="jo.maes@example.com").member
    query = typed.format(prefix=member.member_no[:5])
    assert selectors.desk_member_search(store=store, query=query) == [member]


def test_desk_search_finds_a_legacy_card_number_with_letters(counter_enrol, store):
    from loyalty import selectors

    member = counter_enrol(phone="0470000001", member_no="LG-004512").member
    assert selectors.desk_member_search(store=store, query="lg-0045") == [member]  # as printed, any case
    assert selectors.desk_member(store=store, member_no="LG-004512") == member
    assert selectors.desk_member(store=store, member_no="lg-004512") == member
