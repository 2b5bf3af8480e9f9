"""The reward catalogue: what staff may save, what each member is offered (and why not), and the
reads that must cost the same number of queries whatever the catalogue or history size."""

import datetime
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from loyalty import services as engine_services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account
from rewards import selectors, services
from rewards.models import Redemption, Reward
from tests.conftest import tier
from tests.factories import ProgramFactory, TierFactory

pytestmark = pytest.mark.django_db

A_VOUCHER = {"name": "EUR 5 voucher", "kind": "voucher_amount", "points_cost": 100, "value": 5, "fulfilment": "voucher"}


def _as_pages_load_it(account) -> Account:
    """The account as a page hands it to the catalogue: program, member and tier already joined."""
    return Account.objects.select_related("program", "member", "tier").get(pk=account.pk)


def _redeem(account, reward, key):
    return services.redeem(account=account, reward=reward, idempotency_key=key, channel="online")


# --- saving a reward ----------------------------------------------------------------------------


def test_staff_save_a_voucher_reward_and_change_it_later(program):
    reward = services.reward_save(program=program, **A_VOUCHER, stock=10)

    changed = services.reward_save(program=program, reward=reward, points_cost=120, stock=8)

    reward.refresh_from_db()
    assert changed.pk == reward.pk
    assert (reward.name, reward.points_cost, reward.value, reward.stock) == ("EUR 5 voucher", 120, Decimal("5"), 8)


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"value": None}, "value", "Give the voucher's value."),
        ({"kind": "voucher_percent", "value": 150}, "value", "A percentage discount is at most 100."),
        ({"fulfilment": "manual"}, "fulfilment", "A voucher reward issues its voucher code at once"),
        ({"limit_per_member": 2}, "limit_period", "Give both the limit per member and its period, or neither."),
        ({"limit_period": "month"}, "limit_period", "Give both the limit per member and its period, or neither."),
        (
            {"valid_from": datetime.date(2030, 3, 31), "valid_until": datetime.date(2030, 3, 1)},
            "valid_until",
            "The end date comes before the start date.",
        ),
        ({"points_cost": 0}, "points_cost", "greater than or equal to 1"),
    ],
    ids=[
        "voucher without value",
        "percent over 100",
        "voucher fulfilled by hand",
        "limit without period",
        "period without limit",
        "ends before it starts",
        "costs no points",
    ],
)
def test_a_reward_that_makes_no_sense_is_refused_with_what_to_fix_and_nothing_is_saved(
    program, rows_written, change, field, message
):
    before = rows_written()

    with pytest.raises(ApplicationError) as refused:
        services.reward_save(program=program, **{**A_VOUCHER, **change})

    assert message in refused.value.message
    assert "Constraint" not in refused.value.message  # the staff's words, not the database's
    assert refused.value.code == "invalid"
    assert refused.value.extra["field"] == field
    assert rows_written() == before


def test_a_minimum_tier_of_another_program_is_refused_and_nothing_is_saved(program, rows_written):
    other_gold = TierFactory(program=ProgramFactory(), name="Gold", rank=3)
    before = rows_written()

    with pytest.raises(ApplicationError, match="Choose a tier of this reward's program") as refused:
        services.reward_save(program=program, **A_VOUCHER, min_tier=other_gold)

    assert refused.value.extra["field"] == "min_tier"
    assert rows_written() == before


def test_a_reward_of_another_program_cannot_be_changed_through_this_one(program, make_reward):
    foreign = make_reward(program=ProgramFactory(), points_cost=100)

    with pytest.raises(ApplicationError, match="belongs to another program"):
        services.reward_save(program=program, reward=foreign, points_cost=1)

    foreign.refresh_from_db()
    assert foreign.points_cost == 100


def test_an_invalid_change_leaves_the_saved_reward_as_it_was(program, make_reward):
    reward = make_reward(points_cost=100, limit_per_member=1, limit_period="month")

    with pytest.raises(ApplicationError, match="Give both"):
        services.reward_save(program=program, reward=reward, limit_period="")

    reward.refresh_from_db()
    assert (reward.limit_per_member, reward.limit_period) == (1, "month")


# --- what a member is offered --------------------------------------------------------------------


def test_the_catalogue_shows_what_the_member_can_do_something_about_and_hides_what_is_not_for_them(
    program, member_with, make_reward
):
    account = member_with(180)
    voucher = make_reward(name="Coffee voucher", points_cost=100)
    short = make_reward(name="Drill", kind="merchandise", value=None, fulfilment="manual", points_cost=500)
    gold_only = make_reward(name="Lounge", points_cost=50, min_tier=tier(program, "Gold"))
    sold_out = make_reward(name="Cap", points_cost=20, stock=0)
    make_reward(name="Retired", is_active=False)
    make_reward(name="For Flanders", regions=["Flanders"])
    make_reward(name="For contractors", member_types=["contractor"])
    make_reward(name="Last year", valid_until=datetime.date(2000, 12, 31))

    offers = selectors.catalogue_for_account(account=_as_pages_load_it(account))

    shown = {offer.reward: (offer.refusal.code if offer.refusal else None) for offer in offers}
    assert shown == {voucher: None, short: "insufficient_points", gold_only: "needs_tier", sold_out: "out_of_stock"}
    refusals = {offer.reward.name: offer.refusal.message for offer in offers if offer.refusal}
    assert refusals == {"Drill": "320 more points", "Lounge": "Needs Gold", "Cap": "Out of stock"}


def test_the_catalogue_lists_featured_rewards_first_then_those_redeemable_now_then_by_cost(member_with, make_reward):
    account = member_with(150)
    make_reward(name="Cheap", points_cost=50)
    make_reward(name="Dear", points_cost=400)
    make_reward(name="Featured and dear", points_cost=900, featured=True)
    make_reward(name="Middle", points_cost=150)
    make_reward(name="Featured and cheap", points_cost=10, featured=True)

    offers = selectors.catalogue_for_account(account=_as_pages_load_it(account))

    assert [offer.reward.name for offer in offers] == [
        "Featured and cheap",
        "Featured and dear",
        "Cheap",
        "Middle",
        "Dear",
    ]


def test_the_catalogue_says_limit_reached_after_the_members_redemptions_of_this_month(member_with, make_reward):
    account = member_with(1000)
    twice_a_month = make_reward(name="Car wash", points_cost=10, limit_per_member=2, limit_period="month")
    other = make_reward(name="Coffee", points_cost=10, limit_per_member=2, limit_period="month")
    _redeem(account, twice_a_month, "r1")
    _redeem(account, twice_a_month, "r2")
    _redeem(account, other, "r3")

    offers = {offer.reward: offer for offer in selectors.catalogue_for_account(account=_as_pages_load_it(account))}

    assert offers[twice_a_month].refusal.code == "limit_reached"
    assert offers[twice_a_month].refusal.message == "Limit reached: 2 per member per month"
    assert offers[other].available


def test_a_cancelled_redemption_does_not_count_toward_the_limit_in_the_catalogue(member_with, make_reward):
    account = member_with(1000)
    once = make_reward(points_cost=10, limit_per_member=1, limit_period="year")
    services.redemption_cancel(redemption=_redeem(account, once, "r1").redemption, reason="Mistake", cancelled_by=None)

    [offer] = selectors.catalogue_for_account(account=_as_pages_load_it(account))

    assert offer.available


def test_what_the_catalogue_offers_redeeming_accepts_and_what_it_refuses_redeeming_refuses(member_with, make_reward):
    account = member_with(300)
    for cost in (100, 300, 301, 1000):
        make_reward(name=f"Costs {cost}", points_cost=cost)

    for offer in selectors.catalogue_for_account(account=_as_pages_load_it(account)):
        if offer.available:
            assert _redeem(account, offer.reward, f"k{offer.reward.pk}").redemption.points == offer.reward.points_cost
            engine_services.adjust(account=account, points=offer.reward.points_cost, reason="Back", created_by=None)
        else:
            with pytest.raises(ApplicationError) as refused:
                _redeem(account, offer.reward, f"k{offer.reward.pk}")
            assert (refused.value.code, refused.value.message) == (offer.refusal.code, offer.refusal.message)


def test_the_catalogue_costs_the_same_queries_for_thirty_rewards_and_forty_redemptions_as_for_one(
    program, member_with, make_reward
):
    def queries_for_catalogue(reward_count: int, redemption_count: int) -> int:
        account = member_with(100_000)
        gold = tier(program, "Gold")
        rewards = [
            make_reward(
                points_cost=10 + n,
                min_tier=gold if n % 3 == 2 else None,
                limit_per_member=5 if n % 2 else None,
                limit_period="month" if n % 2 else "",
            )
            for n in range(reward_count)
        ]
        redeemable = [reward for reward in rewards if reward.min_tier is None]
        for n in range(redemption_count):
            _redeem(account, redeemable[n % len(redeemable)], f"{account.pk}-{n}")
        loaded = _as_pages_load_it(account)
        with CaptureQueriesContext(connection) as queries:
            offers = selectors.catalogue_for_account(account=loaded)
        assert len(offers) == reward_count
        return len(queries)

    one = queries_for_catalogue(reward_count=1, redemption_count=1)
    Reward.objects.all().update(is_active=False)
    many = queries_for_catalogue(reward_count=30, redemption_count=40)

    assert Redemption.objects.count() == 41
    assert many == one == 2


def test_upcoming_rewards_are_the_redeemable_and_the_nearest_ones_featured_first(member_with, make_reward):
    account = member_with(200)
    make_reward(name="Far", points_cost=5000)
    make_reward(name="Near", points_cost=250)
    make_reward(name="Now", points_cost=150)
    make_reward(name="Featured far", points_cost=3000, featured=True)
    make_reward(name="Sold out", points_cost=10, stock=0)

    upcoming = selectors.upcoming_rewards(account=_as_pages_load_it(account), limit=3)

    assert [offer.reward.name for offer in upcoming] == ["Featured far", "Now", "Near"]
    assert upcoming[2].refusal.points_missing == 50


def test_staff_summaries_count_live_redemptions_and_those_awaiting_fulfilment(member_with, make_reward):
    account = member_with(1000)
    voucher = make_reward(name="Voucher", points_cost=10)
    drill = make_reward(name="Drill", kind="merchandise", value=None, fulfilment="manual", points_cost=10)
    _redeem(account, voucher, "v1")
    cancelled = _redeem(account, voucher, "v2").redemption
    services.redemption_cancel(redemption=cancelled, reason="Mistake", cancelled_by=None)
    _redeem(account, drill, "d1")
    shipped = _redeem(account, drill, "d2").redemption
    services.redemption_fulfil(redemption=shipped, fulfilled_by=None)

    summaries = {
        reward.name: (reward.redeemed, reward.awaiting)
        for reward in selectors.reward_summaries(program=account.program)
    }

    assert summaries == {"Voucher": (1, 0), "Drill": (2, 1)}
