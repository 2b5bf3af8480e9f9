"""Vouchers: codes a clerk can type without error going unnoticed, refusals at the till that reveal
nothing about other programs, expiry, single use, and issuing once per issue key."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django.utils.formats import date_format

from loyalty.core.exceptions import ApplicationError
from members import services as member_services
from members.roles import Role
from rewards import codes, selectors, services
from rewards.models import Voucher
from tests.conftest import PASSWORD
from tests.factories import ProgramFactory, StoreFactory, TierFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def till(program, store):
    """The clerk's store runs the program."""
    program.stores.add(store)
    return store


def _local(*args) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(*args))


def _issue(account, key="campaign:1", *, valid_from=None, valid_until=None, **kwargs) -> Voucher:
    today = timezone.localdate()
    kwargs.setdefault("amount", Decimal("5.00"))
    return services.voucher_issue(
        account=account,
        description=kwargs.pop("description", "EUR 5 welcome voucher"),
        issue_key=key,
        valid_from=valid_from or today,
        valid_until=valid_until or today + 30 * DAY,
        **kwargs,
    )


def _refused_at_till(code, store, clerk) -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        services.voucher_redeem(code=code, store=store, redeemed_by=clerk)
    return refused.value


def _typos(code: str):
    """Every code that differs from `code` in exactly one character of the alphabet."""
    for position, typed in enumerate(code):
        for other in codes.ALPHABET:
            if other != typed:
                yield code[:position] + other + code[position + 1 :]


# --- codes ---------------------------------------------------------------------------------------


def test_codes_are_twelve_characters_of_an_alphabet_without_look_alikes_and_pass_their_own_check():
    generated = [codes.generate() for _ in range(2000)]

    assert all(len(code) == 12 and set(code) <= set(codes.ALPHABET) for code in generated)
    assert all(codes.well_formed(code) for code in generated)
    assert len(set(generated)) == len(generated)
    assert not set("0O1IL5S2Z8BV") & set(codes.ALPHABET)


def test_the_check_character_catches_every_single_mistyped_character():
    for code in [codes.generate() for _ in range(300)]:
        accepted = [typo for typo in _typos(code) if codes.well_formed(typo)]

        assert accepted == [], f"{code}: a one-character typo passes the check"


def test_codes_of_the_wrong_length_or_with_characters_outside_the_alphabet_are_not_well_formed():
    code = codes.generate()

    assert not codes.well_formed(code[:-1])
    assert not codes.well_formed(code + "A")
    assert not codes.well_formed("O" + code[1:])  # a letter O for a zero-like character
    assert not codes.well_formed("")


def test_a_code_with_one_mistyped_character_is_refused_as_invalid_before_any_lookup(
    member_with, till, django_assert_num_queries
):
    voucher = _issue(member_with(0))

    for typo in _typos(voucher.code):
        with django_assert_num_queries(0), pytest.raises(ApplicationError) as refused:
            services.voucher_for_store(code=typo, store=till)
        assert refused.value.code == "voucher_code_invalid"
        assert refused.value.message.startswith("This is not a valid voucher code: a character is mistyped.")


def test_a_code_typed_in_lower_case_in_groups_or_with_spaces_finds_the_voucher(member_with, till):
    voucher = _issue(member_with(0))

    for typed in (codes.display(voucher.code).lower(), " ".join(codes.display(voucher.code).split("-")), voucher.code):
        assert services.voucher_for_store(code=typed, store=till) == voucher


def test_codes_are_shown_in_groups_of_four():
    assert codes.display("ACDEFGHJKMNP") == "ACDE-FGHJ-KMNP"


# --- at the till ---------------------------------------------------------------------------------


def test_redeeming_a_voucher_at_the_till_records_the_store_the_clerk_and_the_moment(member_with, till, clerk_user):
    voucher = _issue(member_with(0))

    with time_machine.travel(timezone.now(), tick=False):
        used = services.voucher_redeem(code=codes.display(voucher.code), store=till, redeemed_by=clerk_user)
        moment = timezone.now()

    voucher.refresh_from_db()
    assert used == voucher
    assert (voucher.status, voucher.redeemed_store, voucher.redeemed_by, voucher.redeemed_at) == (
        "redeemed",
        till,
        clerk_user,
        moment,
    )


def test_an_unknown_well_formed_code_is_not_found(member_with, till, clerk_user):
    _issue(member_with(0))
    unknown = codes.generate()

    refused = _refused_at_till(unknown, till, clerk_user)

    assert refused.code == "voucher_not_found"
    assert refused.message == (
        "No voucher with this code can be used here. Check the code on the member's screen or print-out."
    )


def test_a_voucher_of_a_program_this_store_does_not_run_reads_exactly_like_an_unknown_code(till, clerk_user, enrol):
    other_program = ProgramFactory(name="Green Club")
    other_program.stores.add(StoreFactory(name="Green shop"))
    TierFactory(program=other_program, name="Entry", rank=1, threshold=0)
    foreign = _issue(enrol(other_program))
    unknown = _refused_at_till(codes.generate(), till, clerk_user)

    refused = _refused_at_till(foreign.code, till, clerk_user)

    assert (refused.code, refused.message, refused.extra) == (unknown.code, unknown.message, unknown.extra)
    foreign.refresh_from_db()
    assert foreign.status == "active"


def test_a_voucher_is_accepted_on_its_last_day_and_refused_as_expired_the_day_after_before_the_expiry_job(
    member_with, till, clerk_user
):
    account = member_with(0)
    last_day = datetime.date(2030, 3, 31)
    used_on_last_day = _issue(account, "c:1", valid_from=datetime.date(2030, 3, 1), valid_until=last_day)
    kept = _issue(account, "c:2", valid_from=datetime.date(2030, 3, 1), valid_until=last_day)

    with time_machine.travel(_local(2030, 3, 31, 23, 59), tick=False):
        services.voucher_redeem(code=used_on_last_day.code, store=till, redeemed_by=clerk_user)
    with time_machine.travel(_local(2030, 4, 1, 0, 1), tick=False):
        refused = _refused_at_till(kept.code, till, clerk_user)

    assert (refused.code, refused.message) == ("voucher_expired", "This voucher expired on 31 March 2030.")
    kept.refresh_from_db()
    assert kept.status == "active"  # the nightly job has not run yet


def test_a_voucher_before_its_first_day_is_refused_as_not_yet_valid(member_with, till, clerk_user):
    today = timezone.localdate()
    voucher = _issue(member_with(0), valid_from=today + DAY, valid_until=today + 10 * DAY)

    refused = _refused_at_till(voucher.code, till, clerk_user)

    assert refused.code == "voucher_not_yet_valid"
    assert date_format(today + DAY, "DATE_FORMAT") in refused.message
    voucher.refresh_from_db()
    assert voucher.status == "active"


def test_a_voucher_used_once_is_refused_the_second_time_naming_when_and_where_it_was_used(
    member_with, program, till, clerk_user
):
    other_store = StoreFactory(name="Antwerp Meir")
    program.stores.add(other_store)
    other_clerk = member_services.staff_user_create(
        email="olga.clerk@example.com", password=PASSWORD, role=Role.STORE_CLERK, store=other_store
    )
    voucher = _issue(member_with(0))
    first = services.voucher_redeem(code=voucher.code, store=till, redeemed_by=clerk_user)

    refused = _refused_at_till(voucher.code, other_store, other_clerk)

    assert refused.code == "voucher_already_redeemed"
    when = date_format(timezone.localtime(first.redeemed_at), "DATETIME_FORMAT")
    assert refused.message == f"This voucher was already used on {when} at {till}."
    assert till.name in refused.message
    voucher.refresh_from_db()
    assert (voucher.redeemed_store, voucher.redeemed_by, voucher.redeemed_at) == (till, clerk_user, first.redeemed_at)


# --- the expiry job ------------------------------------------------------------------------------


def test_the_expiry_job_marks_every_lapsed_active_voucher_expired_in_one_statement_and_nothing_else(
    member_with, make_reward, till, clerk_user, manager_user, django_assert_num_queries
):
    account = member_with(1000)
    today = timezone.localdate()
    lapsed = [_issue(account, f"c:{n}", valid_until=today + 10 * DAY) for n in range(3)]
    ends_on_job_day = _issue(account, "c:last", valid_until=today + 100 * DAY)
    used = _issue(account, "c:used", valid_until=today + 10 * DAY)
    services.voucher_redeem(code=used.code, store=till, redeemed_by=clerk_user)
    cancelled = services.redeem(
        account=account,
        reward=make_reward(points_cost=100, voucher_valid_days=30),
        idempotency_key="r1",
        channel="online",
    )
    services.redemption_cancel(redemption=cancelled.redemption, reason="Mistake", cancelled_by=manager_user)
    job_day = today + 100 * DAY  # past every voucher above but one, the cancelled one included

    with django_assert_num_queries(1):
        expired = services.vouchers_expire(as_of=job_day)

    statuses = dict(Voucher.objects.values_list("pk", "status"))
    assert expired == 3
    assert [statuses[voucher.pk] for voucher in lapsed] == ["expired"] * 3
    assert statuses[ends_on_job_day.pk] == "active"
    assert statuses[used.pk] == "redeemed"
    assert statuses[cancelled.voucher.pk] == "cancelled"

    with django_assert_num_queries(1):
        again = services.vouchers_expire(as_of=job_day)

    assert again == 0
    assert dict(Voucher.objects.values_list("pk", "status")) == statuses


def test_an_expired_voucher_is_refused_at_the_till_with_its_last_day(member_with, till, clerk_user):
    today = timezone.localdate()
    voucher = _issue(member_with(0), valid_from=today - 20 * DAY, valid_until=today - DAY)
    services.vouchers_expire()

    refused = _refused_at_till(voucher.code, till, clerk_user)

    voucher.refresh_from_db()
    assert voucher.status == "expired"
    assert refused.code == "voucher_expired"
    assert date_format(today - DAY, "DATE_FORMAT") in refused.message


# --- issuing -------------------------------------------------------------------------------------


def test_a_percentage_voucher_reward_gives_a_voucher_with_its_percent_and_no_amount(member_with, make_reward):
    reward = make_reward(name="15% off paint", kind="voucher_percent", value=Decimal("15"), points_cost=200)

    voucher = services.redeem(account=member_with(500), reward=reward, idempotency_key="r1", channel="online").voucher

    voucher.refresh_from_db()
    assert (voucher.percent, voucher.amount, voucher.description) == (Decimal("15.00"), None, "15% off paint")


def test_issuing_twice_with_one_issue_key_returns_the_first_voucher(member_with):
    account = member_with(0)
    first = _issue(account, "campaign:7:member:1", amount=Decimal("5.00"))

    again = _issue(account, "campaign:7:member:1", amount=Decimal("5.00"))

    assert again.pk == first.pk
    assert again.code == first.code
    assert Voucher.objects.count() == 1


def test_a_voucher_that_would_end_before_it_starts_is_not_issued(member_with):
    today = timezone.localdate()

    with pytest.raises(ApplicationError, match="would end before it starts"):
        _issue(member_with(0), valid_from=today, valid_until=today - DAY)

    assert not Voucher.objects.exists()


def test_a_voucher_with_both_a_value_and_a_percentage_is_not_issued(member_with):
    with pytest.raises(ApplicationError, match="a value or a percentage, not both"):
        _issue(member_with(0), amount=Decimal("5"), percent=Decimal("10"))

    assert not Voucher.objects.exists()


def test_a_member_sees_usable_vouchers_first_soonest_to_lapse_first_then_the_used_ones(member_with, till, clerk_user):
    account = member_with(0)
    today = timezone.localdate()
    later = _issue(account, "c:later", valid_until=today + 60 * DAY)
    used = _issue(account, "c:used", valid_until=today + 5 * DAY)
    sooner = _issue(account, "c:sooner", valid_until=today + 20 * DAY)
    services.voucher_redeem(code=used.code, store=till, redeemed_by=clerk_user)
    _issue(member_with(0), "c:someone else")

    assert list(selectors.member_vouchers(member=account.member)) == [sooner, later, used]
