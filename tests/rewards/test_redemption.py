"""Redeeming points for rewards: what it spends and issues, who may redeem what and when, limits per
member, idempotent retries, cancellation and manual fulfilment. A refusal writes nothing."""

import datetime
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone
from django.utils.formats import date_format

from loyalty import services as engine_services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, LedgerEntry
from members.models import Member
from rewards import selectors, services
from rewards.models import Redemption, Voucher
from tests.conftest import tier
from tests.factories import ProgramFactory, RewardFactory

pytestmark = pytest.mark.django_db


def _local(*args) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(*args))


def _redeem(account, reward, key="r1", **kwargs):
    kwargs.setdefault("channel", "online")
    return services.redeem(account=account, reward=reward, idempotency_key=key, **kwargs)


def _balance(account) -> tuple[int, int]:
    account.refresh_from_db()
    return account.balance, account.lifetime_redeemed


def _refused(account, reward, key="r1") -> ApplicationError:
    with pytest.raises(ApplicationError) as refused:
        _redeem(account, reward, key)
    return refused.value


# --- redeeming --------------------------------------------------------------------------------------


def test_redeeming_a_voucher_reward_spends_its_points_takes_one_from_stock_and_issues_the_voucher_at_once(
    member_with, make_reward, store, clerk_user
):
    account = member_with(500)
    reward = make_reward(name="EUR 10 voucher", points_cost=300, value=Decimal("10.00"), stock=5, voucher_valid_days=30)

    result = _redeem(account, reward, "till-1", channel="desk", store=store, created_by=clerk_user)

    redemption = result.redemption
    assert not result.replayed
    assert (redemption.status, redemption.points, redemption.channel) == ("fulfilled", 300, "desk")
    assert redemption.fulfilled_at is not None
    assert _balance(account) == (200, 300)
    reward.refresh_from_db()
    assert reward.stock == 4
    entry = LedgerEntry.objects.get(kind="redeem")
    assert (entry.points, entry.source, entry.reason) == (-300, redemption, "Redeemed: EUR 10 voucher")
    assert redemption.entry == entry
    voucher = Voucher.objects.get()
    assert result.voucher == voucher
    assert (voucher.account, voucher.amount, voucher.percent, voucher.currency) == (
        account,
        Decimal("10.00"),
        None,
        "EUR",
    )
    assert (voucher.status, voucher.description) == ("active", "EUR 10 voucher")
    today = timezone.localdate()
    assert (voucher.valid_from, voucher.valid_until) == (today, today + datetime.timedelta(days=29))


def test_a_reward_without_stock_is_unlimited_and_keeps_no_count(member_with, make_reward):
    account = member_with(1000)
    reward = make_reward(points_cost=100, stock=None)

    for n in range(3):
        _redeem(account, reward, f"r{n}")

    reward.refresh_from_db()
    assert reward.stock is None
    assert Redemption.objects.count() == 3


def test_an_unknown_channel_is_refused_and_nothing_is_written(member_with, make_reward, rows_written):
    account, reward = member_with(500), make_reward()
    before = rows_written()

    with pytest.raises(ApplicationError, match="Unknown channel"):
        _redeem(account, reward, channel="fax")

    assert rows_written() == before


def test_a_suspended_members_redemption_is_refused_whole_leaving_no_redemption_without_its_points(
    member_with, make_reward, rows_written
):
    account = member_with(500)
    reward = make_reward(points_cost=100, stock=3)
    Member.objects.filter(pk=account.member_id).update(status=Member.Status.SUSPENDED)
    before = rows_written()

    refused = _refused(account, reward)

    assert refused.code == "member_not_active"
    assert rows_written() == before
    assert _balance(account) == (500, 0)


# --- who may redeem what ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("qualifying_points", "tier_name", "allowed"),
    [(0, "Bronze", False), (1000, "Silver", False), (5000, "Gold", True), (15000, "Platinum", True)],
)
def test_a_reward_for_gold_and_above_needs_gold(
    program, member_with, make_reward, rows_written, qualifying_points, tier_name, allowed
):
    account = member_with(500)
    if qualifying_points:
        engine_services.adjust(
            account=account, points=qualifying_points, reason="Qualifying", created_by=None, qualifying=True
        )
    assert Account.objects.get(pk=account.pk).tier.name == tier_name
    reward = make_reward(points_cost=100, min_tier=tier(program, "Gold"))
    before = rows_written()

    if allowed:
        assert _redeem(account, reward).redemption.status == "fulfilled"
    else:
        refused = _refused(account, reward)
        assert (refused.code, refused.message) == ("needs_tier", "Needs Gold")
        assert rows_written() == before


def test_a_reward_for_one_region_is_not_offered_to_members_elsewhere(member_with, make_reward, rows_written):
    reward = make_reward(regions=["Flanders", "Wallonia"])
    brussels, flanders = member_with(500, region="Brussels"), member_with(500, region="Flanders")
    before = rows_written()

    refused = _refused(brussels, reward)

    assert refused.code == "not_offered"
    assert refused.message == "This reward is not offered in your region."
    assert rows_written() == before
    assert _redeem(flanders, reward, "r2").redemption.status == "fulfilled"


def test_a_reward_for_contractors_is_not_offered_to_consumers(member_with, make_reward, rows_written):
    reward = make_reward(member_types=["contractor"])
    consumer, contractor = member_with(500, member_type="consumer"), member_with(500, member_type="contractor")
    before = rows_written()

    refused = _refused(consumer, reward)

    assert refused.code == "not_offered"
    assert refused.message == "This reward is not offered to your type of membership."
    assert rows_written() == before
    assert _redeem(contractor, reward, "r2").redemption.status == "fulfilled"


def test_a_reward_is_offered_from_its_first_day_through_its_last_day_and_not_the_day_after(member_with, make_reward):
    reward = make_reward(valid_from=datetime.date(2030, 3, 1), valid_until=datetime.date(2030, 3, 31))

    def offered_in_catalogue(account) -> bool:
        return reward in [offer.reward for offer in selectors.catalogue_for_account(account=account)]

    with time_machine.travel(_local(2030, 2, 28, 23, 59), tick=False) as clock:
        account = member_with(1000)
        early = _refused(account, reward, "r1")
        assert (early.code, early.message) == ("not_available", "This reward is offered from 1 March 2030.")
        assert not offered_in_catalogue(account)

        clock.move_to(_local(2030, 3, 1, 0, 1))
        assert offered_in_catalogue(account)
        _redeem(account, reward, "r2")

        clock.move_to(_local(2030, 3, 31, 23, 59))
        assert offered_in_catalogue(account)
        _redeem(account, reward, "r3")

        clock.move_to(_local(2030, 4, 1, 0, 1))
        late = _refused(account, reward, "r4")
        assert (late.code, late.message) == ("not_available", "This reward was offered until 31 March 2030.")
        assert not offered_in_catalogue(account)

    assert Redemption.objects.count() == 2


def test_an_inactive_reward_is_refused_and_nothing_is_written(member_with, make_reward, rows_written):
    account, reward = member_with(500), make_reward(is_active=False)
    before = rows_written()

    refused = _refused(account, reward)

    assert (refused.code, refused.message) == ("not_available", "This reward is not offered any more.")
    assert rows_written() == before


def test_a_reward_of_another_program_is_refused_and_nothing_is_written(member_with, rows_written):
    account = member_with(500)
    foreign = RewardFactory(program=ProgramFactory(name="Green Club"), points_cost=10)
    before = rows_written()

    refused = _refused(account, foreign)

    assert refused.code == "not_available"
    assert rows_written() == before
    assert _balance(account) == (500, 0)


def test_an_out_of_stock_reward_is_refused_and_nothing_is_written(member_with, make_reward, rows_written):
    account, reward = member_with(500), make_reward(stock=0)
    before = rows_written()

    refused = _refused(account, reward)

    assert (refused.code, refused.message) == ("out_of_stock", "Out of stock")
    assert rows_written() == before


def test_too_few_points_are_refused_with_how_many_are_missing_and_nothing_is_written(
    member_with, make_reward, rows_written
):
    account = member_with(180)
    reward = make_reward(points_cost=500, stock=2)
    before = rows_written()

    refused = _refused(account, reward)

    assert refused.code == "insufficient_points"
    assert refused.message == "320 more points"
    assert refused.extra == {"points_missing": 320}
    assert rows_written() == before
    assert _balance(account) == (180, 0)


def test_one_point_short_says_one_more_point(member_with, make_reward):
    refused = _refused(member_with(99), make_reward(points_cost=100))

    assert (refused.message, refused.extra) == ("1 more point", {"points_missing": 1})


# --- limits per member --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("period", "first", "later_same_period", "next_period"),
    [
        ("day", (2030, 1, 16, 9), (2030, 1, 16, 23, 59), (2030, 1, 17, 0, 1)),
        ("week", (2030, 1, 16, 9), (2030, 1, 20, 23, 59), (2030, 1, 21, 0, 1)),  # Wednesday, Sunday, Monday
        ("month", (2030, 1, 16, 9), (2030, 1, 31, 23, 59), (2030, 2, 1, 0, 1)),
        ("year", (2030, 1, 16, 9), (2030, 12, 31, 23, 59), (2031, 1, 1, 0, 1)),
    ],
)
def test_a_limit_per_period_refuses_within_the_period_and_allows_again_in_the_next(
    member_with, make_reward, rows_written, period, first, later_same_period, next_period
):
    reward = make_reward(points_cost=10, limit_per_member=1, limit_period=period)
    with time_machine.travel(_local(*first), tick=False) as clock:
        account = member_with(100)
        _redeem(account, reward, "first")

        clock.move_to(_local(*later_same_period))
        before = rows_written()
        refused = _refused(account, reward, "again")
        assert refused.code == "limit_reached"
        assert refused.message == f"Limit reached: 1 per member per {period}"
        assert rows_written() == before

        clock.move_to(_local(*next_period))
        assert _redeem(account, reward, "next").redemption.status == "fulfilled"


def test_a_limit_counts_only_this_members_redemptions_of_this_reward(member_with, make_reward):
    limited = make_reward(points_cost=10, limit_per_member=2, limit_period="month")
    other_reward = make_reward(points_cost=10)
    account, neighbour = member_with(100), member_with(100)
    _redeem(neighbour, limited, "n1")
    _redeem(neighbour, limited, "n2")
    _redeem(account, other_reward, "o1")

    _redeem(account, limited, "a1")
    _redeem(account, limited, "a2")

    refused = _refused(account, limited, "a3")
    assert refused.message == "Limit reached: 2 per member per month"


def test_a_once_ever_limit_holds_years_later_until_the_redemption_is_cancelled(member_with, make_reward):
    reward = make_reward(points_cost=10, limit_per_member=1, limit_period="ever")
    with time_machine.travel(_local(2030, 1, 16, 9), tick=False) as clock:
        account = member_with(100)
        first = _redeem(account, reward, "first").redemption

        clock.move_to(_local(2037, 6, 1, 12))
        assert _refused(account, reward, "years later").code == "limit_reached"

        services.redemption_cancel(redemption=first, reason="Returned unused", cancelled_by=None)
        assert _redeem(account, reward, "after cancel").redemption.status == "fulfilled"


def test_a_cancelled_redemption_gives_its_room_back_within_the_period(member_with, make_reward, manager_user):
    reward = make_reward(points_cost=10, limit_per_member=1, limit_period="month")
    account = member_with(100)
    first = _redeem(account, reward, "first").redemption
    assert _refused(account, reward, "second").code == "limit_reached"

    services.redemption_cancel(redemption=first, reason="Wrong reward chosen", cancelled_by=manager_user)

    assert _redeem(account, reward, "third").redemption.status == "fulfilled"


# --- idempotency ---------------------------------------------------------------------------------


def test_a_retry_with_the_same_key_returns_the_first_redemption_and_spends_nothing_more(
    member_with, make_reward, rows_written
):
    account = member_with(500)
    reward = make_reward(points_cost=100, stock=5)
    first = _redeem(account, reward, "app-retry-1")
    after_first = rows_written()

    retry = _redeem(account, reward, "app-retry-1")

    assert retry.replayed
    assert retry.redemption.pk == first.redemption.pk
    assert retry.voucher == first.voucher
    assert rows_written() == after_first
    assert _balance(account) == (400, 100)


def test_the_same_key_for_another_reward_is_refused_clearly_and_nothing_is_written(
    member_with, make_reward, rows_written
):
    account = member_with(500)
    first_reward, second_reward = make_reward(points_cost=100), make_reward(points_cost=50)
    _redeem(account, first_reward, "key-1")
    before = rows_written()

    refused = _refused(account, second_reward, "key-1")

    assert refused.code == "idempotency_key_reused"
    assert "Use a new key for a new request" in refused.message
    assert rows_written() == before
    assert _balance(account) == (400, 100)


def test_the_same_key_from_another_member_is_refused_and_does_not_return_the_first_members_redemption(
    member_with, make_reward, rows_written
):
    reward = make_reward(points_cost=100)
    ann, bob = member_with(500), member_with(500)
    _redeem(ann, reward, "key-1")
    before = rows_written()

    refused = _refused(bob, reward, "key-1")

    assert refused.code == "idempotency_key_reused"
    assert rows_written() == before
    assert _balance(bob) == (500, 0)


@pytest.mark.parametrize("key", ["", "   ", None, "k" * 129])
def test_a_redemption_without_a_usable_idempotency_key_is_refused(member_with, make_reward, rows_written, key):
    account, reward = member_with(500), make_reward()
    before = rows_written()

    refused = _refused(account, reward, key)

    assert refused.code == "idempotency_key_required"
    assert rows_written() == before


# --- cancellation --------------------------------------------------------------------------------


def test_cancelling_gives_every_point_back_to_the_lots_they_came_from_and_the_item_back_to_stock(
    member_with, make_reward, manager_user
):
    account = member_with(500)
    reward = make_reward(name="EUR 10 voucher", points_cost=300, stock=5)
    lot = LedgerEntry.objects.get(account=account, kind="adjust")
    redemption = _redeem(account, reward).redemption
    lot.refresh_from_db()
    assert (lot.remaining, *_balance(account)) == (200, 200, 300)

    cancelled = services.redemption_cancel(
        redemption=redemption, reason="Member changed their mind", cancelled_by=manager_user
    )

    assert (cancelled.status, cancelled.cancelled_by, cancelled.cancel_reason) == (
        "cancelled",
        manager_user,
        "Member changed their mind",
    )
    assert cancelled.cancelled_at is not None
    assert _balance(account) == (500, 0)
    lot.refresh_from_db()
    assert lot.remaining == 500
    refund = LedgerEntry.objects.get(kind="reverse")
    assert (refund.points, refund.reverses, refund.source) == (300, redemption.entry, redemption)
    assert refund.reason == "Cancelled: EUR 10 voucher (Member changed their mind)"
    reward.refresh_from_db()
    assert reward.stock == 5
    assert Voucher.objects.get().status == "cancelled"


def test_cancelling_twice_refunds_once_and_puts_the_item_back_once(member_with, make_reward, manager_user):
    account = member_with(500)
    reward = make_reward(points_cost=300, stock=5)
    redemption = _redeem(account, reward).redemption

    services.redemption_cancel(redemption=redemption, reason="Mistake", cancelled_by=manager_user)
    again = services.redemption_cancel(redemption=redemption, reason="Clicked twice", cancelled_by=manager_user)

    assert (again.status, again.cancel_reason) == ("cancelled", "Mistake")
    assert LedgerEntry.objects.filter(kind="reverse").count() == 1
    assert _balance(account) == (500, 0)
    reward.refresh_from_db()
    assert reward.stock == 5


@pytest.mark.parametrize("reason", ["", "   ", None])
def test_cancelling_without_a_reason_is_refused_and_nothing_is_written(
    member_with, make_reward, manager_user, rows_written, reason
):
    account = member_with(500)
    redemption = _redeem(account, make_reward(points_cost=300, stock=5)).redemption
    before = rows_written()

    with pytest.raises(ApplicationError, match="Give a reason for cancelling") as refused:
        services.redemption_cancel(redemption=redemption, reason=reason, cancelled_by=manager_user)

    assert refused.value.code == "reason_required"
    assert rows_written() == before
    redemption.refresh_from_db()
    assert redemption.status == "fulfilled"
    assert Voucher.objects.get().status == "active"
    assert _balance(account) == (200, 300)


def test_a_redemption_whose_voucher_was_used_at_the_till_cannot_be_cancelled(
    member_with, make_reward, program, store, clerk_user, manager_user, rows_written
):
    program.stores.add(store)
    account = member_with(500)
    result = _redeem(account, make_reward(points_cost=300, stock=5))
    used = services.voucher_redeem(code=result.voucher.code, store=store, redeemed_by=clerk_user)
    before = rows_written()

    with pytest.raises(ApplicationError) as refused:
        services.redemption_cancel(redemption=result.redemption, reason="Wants points back", cancelled_by=manager_user)

    assert refused.value.code == "voucher_already_redeemed"
    assert date_format(timezone.localtime(used.redeemed_at), "DATE_FORMAT") in refused.value.message
    assert store.name in refused.value.message
    assert rows_written() == before
    result.redemption.refresh_from_db()
    assert result.redemption.status == "fulfilled"
    assert Voucher.objects.get().status == "redeemed"
    assert _balance(account) == (200, 300)


def test_the_voucher_of_a_cancelled_redemption_is_refused_at_the_till(
    member_with, make_reward, program, store, clerk_user, manager_user
):
    program.stores.add(store)
    result = _redeem(member_with(500), make_reward(points_cost=300))
    services.redemption_cancel(redemption=result.redemption, reason="Mistake", cancelled_by=manager_user)

    with pytest.raises(ApplicationError, match="This voucher was cancelled") as refused:
        services.voucher_redeem(code=result.voucher.code, store=store, redeemed_by=clerk_user)

    assert refused.value.code == "voucher_cancelled"
    voucher = Voucher.objects.get()
    assert (voucher.status, voucher.redeemed_at, voucher.redeemed_store) == ("cancelled", None, None)


# --- manual fulfilment ---------------------------------------------------------------------------


def _drill(make_reward):
    return make_reward(name="Cordless drill", kind="merchandise", value=None, fulfilment="manual", points_cost=400)


def test_a_reward_fulfilled_by_staff_waits_as_requested_without_a_voucher(program, member_with, make_reward):
    account = member_with(500)

    result = _redeem(account, _drill(make_reward))

    assert (result.redemption.status, result.redemption.fulfilled_at, result.voucher) == ("requested", None, None)
    assert not Voucher.objects.exists()
    assert _balance(account) == (100, 400)
    assert list(selectors.fulfilment_queue(program=program)) == [result.redemption]


def test_staff_fulfil_a_requested_redemption_and_it_leaves_the_queue(program, member_with, make_reward, manager_user):
    redemption = _redeem(member_with(500), _drill(make_reward)).redemption

    fulfilled = services.redemption_fulfil(redemption=redemption, fulfilled_by=manager_user)

    redemption.refresh_from_db()
    assert (redemption.status, redemption.fulfilled_by) == ("fulfilled", manager_user)
    assert redemption.fulfilled_at is not None
    assert fulfilled.fulfilled_at == redemption.fulfilled_at
    assert not selectors.fulfilment_queue(program=program).exists()


def test_fulfilling_twice_keeps_the_first_fulfilment(member_with, make_reward, manager_user, analyst_user):
    redemption = _redeem(member_with(500), _drill(make_reward)).redemption
    first = services.redemption_fulfil(redemption=redemption, fulfilled_by=manager_user)

    services.redemption_fulfil(redemption=redemption, fulfilled_by=analyst_user)

    redemption.refresh_from_db()
    assert (redemption.fulfilled_by, redemption.fulfilled_at) == (manager_user, first.fulfilled_at)


def test_a_cancelled_redemption_cannot_be_fulfilled(program, member_with, make_reward, manager_user):
    account = member_with(500)
    redemption = _redeem(account, _drill(make_reward)).redemption
    services.redemption_cancel(redemption=redemption, reason="Out of production", cancelled_by=manager_user)

    with pytest.raises(ApplicationError, match="was cancelled; it cannot be fulfilled") as refused:
        services.redemption_fulfil(redemption=redemption, fulfilled_by=manager_user)

    assert refused.value.code == "redemption_cancelled"
    redemption.refresh_from_db()
    assert (redemption.status, redemption.fulfilled_at, redemption.fulfilled_by) == ("cancelled", None, None)
    assert _balance(account) == (500, 0)
