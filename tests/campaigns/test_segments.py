"""Segments: each criterion on a small hand-built set of members, criteria combined, value deciles
checked by hand, one query whatever the criteria, and the refusals of the save and delete services."""

import datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from campaigns import segments
from campaigns.models import Campaign, Segment
from loyalty import services as engine_services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account
from members.models import Member, MemberType
from tests.conftest import tier
from tests.factories import MemberFactory, ProgramFactory, StoreFactory, TierFactory

DAY = datetime.timedelta(days=1)


def days_ago(days: int) -> datetime.datetime:
    return timezone.now() - days * DAY


def local_noon(days: int) -> datetime.datetime:
    """Noon, local time, `days` calendar days ago: its local date is today's minus `days` at any hour,
    which now - days is not late in the evening across a change of summer time."""
    day = timezone.localdate() - days * DAY
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time(12)))


@pytest.fixture
def stores(program):
    north, south = StoreFactory(name="North", region="Flanders"), StoreFactory(name="South", region="Wallonia")
    program.stores.add(north, south)
    return north, south


@pytest.fixture
def people(program, buy, stores):
    """Five members of `program` (first names are their keys) and one suspended member who matches everything.

    | name | tier     | region   | type       | store | consent | enrolled | last activity | spend (90 days)   | balance |
    | ann  | Gold     | Flanders | contractor | North | yes     | 400 d    | 10 d          | 300               | 300     |
    | bob  | Bronze   | Brussels | consumer   | South | no      | 200 d    | 120 d         | 0 (50 at 120 d)   | 50      |
    | cat  | Platinum | Wallonia | consumer   | —     | yes     | 30 d     | 30 d          | 0                 | 0       |
    | dan  | Silver   | Flanders | contractor | North | no      | 300 d    | 5 d           | 250 (400 - 150)   | 250     |
    | eve  | Bronze   | Brussels | roofer     | South | yes     | 100 d    | 100 d         | 0                 | 0       |
    """
    MemberType.objects.get_or_create(code="contractor", defaults={"name": "Contractor"})
    MemberType.objects.get_or_create(code="roofer", defaults={"name": "Roofer"})
    north, south = stores
    specs = {
        "ann": ("Gold", "Flanders", "contractor", north, True, 400),
        "bob": ("Bronze", "Brussels", "consumer", south, False, 200),
        "cat": ("Platinum", "Wallonia", "consumer", None, True, 30),
        "dan": ("Silver", "Flanders", "contractor", north, False, 300),
        "eve": ("Bronze", "Brussels", "roofer", south, True, 100),
        "zed": ("Gold", "Flanders", "contractor", north, True, 400),
    }
    accounts = {}
    for name, (_tier, region, member_type, home_store, consent, enrolled) in specs.items():
        member = MemberFactory(
            first_name=name,
            region=region,
            member_type=member_type,
            home_store=home_store,
            marketing_consent=consent,
        )
        accounts[name] = engine_services.enrol(member=member, program=program, at=days_ago(enrolled))
    buy(accounts["ann"], Decimal("300"), occurred_at=days_ago(10))
    buy(accounts["bob"], Decimal("50"), occurred_at=days_ago(120))
    returned = buy(accounts["dan"], Decimal("400"), occurred_at=days_ago(5)).purchase
    engine_services.reverse_purchase(purchase=returned, amount=Decimal("150"), idempotency_key="dan-return")
    buy(accounts["zed"], Decimal("900"), occurred_at=days_ago(3))
    # Tiers and the last activity as the table says (set directly: test data, not what is under test).
    for name, (tier_name, *_rest) in specs.items():
        Account.objects.filter(pk=accounts[name].pk).update(tier=tier(program, tier_name))
    Account.objects.filter(pk=accounts["bob"].pk).update(last_activity_at=days_ago(120))
    for name, (*_rest, enrolled) in specs.items():  # enrolment criteria are calendar dates
        Account.objects.filter(pk=accounts[name].pk).update(enrolled_at=local_noon(enrolled))
    Member.objects.filter(first_name="zed").update(status=Member.Status.SUSPENDED)
    return accounts


def matching(program, **criteria) -> list[str]:
    """First names the criteria select, saved (read in SQL) and as a draft (ids carried along) alike,
    after the nightly ranking that spend and points are read from."""
    as_of = criteria.pop("as_of", None)
    engine_services.account_values_refresh(program=program, as_of=as_of)
    saved = segments.segment_save(program=program, name="Test", created_by=None, **criteria)
    found = sorted(
        segments.segment_accounts(program=program, segment=saved, as_of=as_of).values_list(
            "member__first_name", flat=True
        )
    )
    draft = segments.segment_draft(program=program, **criteria)
    from_draft = sorted(
        segments.segment_accounts(program=program, segment=draft, as_of=as_of).values_list(
            "member__first_name", flat=True
        )
    )
    assert found == from_draft
    saved.delete()
    return found


# --- each criterion --------------------------------------------------------------------------------


def test_no_segment_means_every_active_member_of_the_program(program, people, enrol):
    other = ProgramFactory(slug="other")
    TierFactory(program=other, rank=1, name="Base")
    enrol(other, first_name="outsider")

    accounts = segments.segment_accounts(program=program)

    assert sorted(accounts.values_list("member__first_name", flat=True)) == ["ann", "bob", "cat", "dan", "eve"]


def test_a_segment_without_criteria_selects_every_active_member(program, people):
    assert matching(program) == ["ann", "bob", "cat", "dan", "eve"]


def test_suspended_and_closed_members_are_never_selected(program, people):
    Member.objects.filter(first_name="ann").update(status=Member.Status.CLOSED)

    assert matching(program, tiers=[tier(program, "Gold")]) == []
    assert "zed" not in matching(program)


def test_tier(program, people):
    assert matching(program, tiers=[tier(program, "Gold"), tier(program, "Platinum")]) == ["ann", "cat"]


def test_home_store(program, people, stores):
    north, south = stores
    assert matching(program, stores=[north]) == ["ann", "dan"]
    assert matching(program, stores=[north, south]) == ["ann", "bob", "dan", "eve"]


def test_region_and_member_type(program, people):
    assert matching(program, regions=["Flanders", "Wallonia"]) == ["ann", "cat", "dan"]
    assert matching(program, member_types=["roofer", "contractor"]) == ["ann", "dan", "eve"]


def test_enrolment_dates_include_both_ends(program, people):
    today = timezone.localdate()
    assert matching(program, enrolled_from=today - 200 * DAY) == ["bob", "cat", "eve"]
    assert matching(program, enrolled_until=today - 300 * DAY) == ["ann", "dan"]
    assert matching(program, enrolled_from=today - 300 * DAY, enrolled_until=today - 100 * DAY) == [
        "bob",
        "dan",
        "eve",
    ]


def test_active_within_and_inactive_for(program, people):
    assert matching(program, active_within_days=30) == ["ann", "dan"]
    assert matching(program, inactive_for_days=90) == ["bob", "eve"]
    # Lapsing: active in the last 180 days but not in the last 90.
    assert matching(program, active_within_days=180, inactive_for_days=90) == ["bob", "eve"]


def test_inactivity_counts_from_enrolment_when_an_account_never_had_activity(program, people):
    Account.objects.filter(member__first_name="cat").update(last_activity_at=None)  # as some imports leave it

    assert "cat" not in matching(program, inactive_for_days=60)  # enrolled 30 days ago
    assert "cat" in matching(program, inactive_for_days=20)


def test_spend_in_the_period_is_net_of_returns_and_counts_no_purchase_as_zero(program, people):
    assert matching(program, period_days=90, spend_min=Decimal("200")) == ["ann", "dan"]
    assert matching(program, period_days=90, spend_min=Decimal("260")) == ["ann"]  # dan: 400 - 150 returned
    assert matching(program, period_days=90, spend_max=Decimal("100")) == ["bob", "cat", "eve"]
    assert matching(program, period_days=90, spend_min=Decimal("0"), spend_max=Decimal("250")) == [
        "bob",
        "cat",
        "dan",
        "eve",
    ]
    assert matching(program, period_days=365, spend_min=Decimal("10"), spend_max=Decimal("100")) == ["bob"]


def test_points_earned_in_the_period(program, people):
    # 1 pt per EUR at Bronze (everyone was Bronze when buying): ann 300, dan 400 (a return is not an
    # earn entry), bob 50 at 120 days.
    assert matching(program, period_days=90, points_min=350) == ["dan"]
    assert matching(program, period_days=90, points_min=1, points_max=300) == ["ann"]
    assert matching(program, period_days=90, points_max=0) == ["bob", "cat", "eve"]
    assert matching(program, period_days=365, points_min=40, points_max=60) == ["bob"]


def test_balance_range(program, people):
    assert matching(program, balance_min=100) == ["ann", "dan"]
    assert matching(program, balance_max=50) == ["bob", "cat", "eve"]
    assert matching(program, balance_min=300, balance_max=300) == ["ann"]


def test_marketing_consent(program, people):
    assert matching(program, consent=Segment.Consent.GIVEN) == ["ann", "cat", "eve"]
    assert matching(program, consent=Segment.Consent.NOT_GIVEN) == ["bob", "dan"]


def test_criteria_are_all_required(program, people, stores):
    north, _south = stores
    assert matching(
        program,
        regions=["Flanders"],
        stores=[north],
        consent=Segment.Consent.GIVEN,
        active_within_days=30,
        period_days=90,
        spend_min=Decimal("100"),
    ) == ["ann"]
    assert matching(program, tiers=[tier(program, "Bronze")], regions=["Flanders"]) == []


def test_as_of_moves_every_window(program, people):
    later = timezone.now() + 30 * DAY
    assert matching(program, active_within_days=30, as_of=later) == []
    assert matching(program, inactive_for_days=30, as_of=later) == ["ann", "bob", "cat", "dan", "eve"]


# --- value deciles ---------------------------------------------------------------------------------


@pytest.fixture
def twelve_spenders(program, buy, enrol):
    """Twelve members: m01 spent 1,000 over 12 months, m02 900, ... m10 100; m11 and m12 nothing.
    m03 also spent 5,000 but returned 4,950 of it; m10 also spent 5,000 fourteen months ago (out of
    the window); a suspended member spent 9,000 (never ranked)."""
    accounts = {}
    for n in range(1, 13):
        accounts[n] = enrol(program, first_name=f"m{n:02d}")
    for n in range(1, 11):
        buy(accounts[n], Decimal(1100 - 100 * n), occurred_at=days_ago(30 + n))
    big = buy(accounts[3], Decimal("5000"), occurred_at=days_ago(200)).purchase
    engine_services.reverse_purchase(purchase=big, amount=Decimal("4950"), idempotency_key="m03-return")
    buy(accounts[10], Decimal("5000"), occurred_at=days_ago(360))  # 14 months before as_of below
    suspended = enrol(program, first_name="rich")
    buy(suspended, Decimal("9000"), occurred_at=days_ago(10))
    Member.objects.filter(pk=suspended.member_id).update(status=Member.Status.SUSPENDED)
    return accounts


def deciles(program, best, worst, as_of) -> list[str]:
    engine_services.account_values_refresh(program=program, as_of=as_of)  # what the nightly job does
    segment = segments.segment_draft(program=program, decile_best=best, decile_worst=worst)
    accounts = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
    return sorted(accounts.values_list("member__first_name", flat=True))


def test_deciles_rank_spend_over_twelve_months_with_no_spend_at_the_bottom(program, twelve_spenders):
    as_of = timezone.now() + 60 * DAY  # m10's old purchase is now 14 months old
    # NTILE(10) of 12 members: deciles 1 and 2 take two members each, the other eight one each.
    # Ranked by spend: m01 1000, m02 900, m03 850 (800 + 50 kept of 5,000), m04 700, ... m10 100, m11 0, m12 0.
    assert deciles(program, 1, 1, as_of) == ["m01", "m02"]
    assert deciles(program, 2, 2, as_of) == ["m03", "m04"]
    assert deciles(program, 1, 2, as_of) == ["m01", "m02", "m03", "m04"]
    assert deciles(program, 8, 8, as_of) == ["m10"]
    # No spend ranks last; between equals the older account comes first.
    assert deciles(program, 9, 10, as_of) == ["m11", "m12"]
    assert deciles(program, 10, 10, as_of) == ["m12"]


def test_a_purchase_returned_in_full_leaves_the_member_where_no_spend_ranks(program, twelve_spenders):
    as_of = timezone.now() + 60 * DAY
    purchase = twelve_spenders[1].purchases.get(amount=Decimal("1000"))
    engine_services.reverse_purchase(purchase=purchase, amount=Decimal("1000"), idempotency_key="m01-return")

    assert deciles(program, 1, 1, as_of) == ["m02", "m03"]
    assert "m01" in deciles(program, 8, 10, as_of)


def test_decile_ranks_the_whole_program_not_only_members_matching_other_criteria(program, twelve_spenders):
    as_of = timezone.now() + 60 * DAY
    engine_services.account_values_refresh(program=program, as_of=as_of)
    segment = segments.segment_draft(program=program, decile_best=1, decile_worst=1, balance_max=950)
    found = segments.segment_accounts(program=program, segment=segment, as_of=as_of)

    assert sorted(found.values_list("member__first_name", flat=True)) == ["m02"]


# --- one query --------------------------------------------------------------------------------------


def test_counting_a_segment_with_every_criterion_is_one_query(program, people, stores, django_assert_num_queries):
    segment = segments.segment_save(
        program=program,
        name="Everything",
        created_by=None,
        tiers=[tier(program, "Gold")],
        stores=list(stores),
        regions=["Flanders"],
        member_types=["contractor"],
        enrolled_from=timezone.localdate() - 500 * DAY,
        enrolled_until=timezone.localdate(),
        active_within_days=60,
        inactive_for_days=1,
        period_days=90,
        spend_min=Decimal("100"),
        spend_max=Decimal("1000"),
        points_max=5000,
        balance_min=1,
        consent=Segment.Consent.GIVEN,
        decile_best=1,
        decile_worst=3,
    )
    segment = Segment.objects.get(pk=segment.pk)
    engine_services.account_values_refresh(program=program)

    with django_assert_num_queries(1):
        count = segments.segment_count(program=program, segment=segment)

    assert count == 1  # ann


def test_the_accounts_can_be_materialised_with_insert_select(program, people):
    from django.db import connection

    segment = segments.segment_save(program=program, name="Flanders", created_by=None, regions=["Flanders"])
    sql, params = (
        segments.segment_accounts(program=program, segment=segment).order_by().values_list("pk").query.sql_with_params()
    )
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE picked (account_id bigint)")
        cursor.execute(f"INSERT INTO picked (account_id) {sql}", params)
        cursor.execute("SELECT COUNT(*) FROM picked")
        assert cursor.fetchone()[0] == 2
        cursor.execute("DROP TABLE picked")


def test_count_and_sample(program, people):
    segment = segments.segment_draft(program=program, consent=Segment.Consent.GIVEN)

    assert segments.segment_count(program=program, segment=segment) == 3
    sample = segments.segment_sample(program=program, segment=segment, size=2)
    assert [account.member.first_name for account in sample] == ["ann", "cat"]
    assert sample[0].tier.name == "Gold"


# --- how a segment reads ----------------------------------------------------------------------------


def test_a_segment_reads_as_sentences(program, people, stores):
    north, _south = stores
    segment = segments.segment_save(
        program=program,
        name="Lapsing best",
        created_by=None,
        tiers=[tier(program, "Platinum"), tier(program, "Gold")],
        stores=[north],
        member_types=["contractor"],
        inactive_for_days=90,
        period_days=90,
        spend_min=Decimal("100"),
        spend_max=Decimal("1500.5"),
        balance_min=500,
        consent=Segment.Consent.GIVEN,
        decile_best=1,
        decile_worst=2,
    )

    assert segments.segment_describe(segment) == [
        "Tier: Gold or Platinum",
        "Home store: North",
        "Member type: Contractor",
        "Inactive for at least 90 days",
        "Spent between EUR 100.00 and EUR 1,500.50 in the last 90 days",
        "Balance at least 500 points",
        "Gave marketing consent",
        "Value deciles 1 to 2 (1 is the tenth who spent most over 12 months)",
    ]


def test_an_empty_segment_reads_as_every_member(program):
    assert segments.segment_describe(Segment(program=program)) == ["Every active member of the program"]


# --- saving and deleting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("criteria", "field", "message"),
    [
        ({"decile_best": 3, "decile_worst": 1}, "decile_worst", "Decile 1 is the best"),
        ({"decile_best": 11}, "decile_best", "Deciles go from 1"),
        ({"spend_min": Decimal("500"), "spend_max": Decimal("100")}, "spend_max", "below the minimum"),
        ({"points_min": 10, "points_max": 5}, "points_max", "below the minimum"),
        ({"balance_min": -5}, "balance_min", "Give 0 or more"),
        ({"active_within_days": 30, "inactive_for_days": 90}, "inactive_for_days", "No member can be active"),
        ({"active_within_days": 0}, "active_within_days", "at least 1 day"),
        ({"enrolled_from": datetime.date(2025, 5, 1), "enrolled_until": datetime.date(2025, 1, 1)}, "enrolled_until",
         "end date comes before"),
        ({"period_days": 0}, "period_days", ""),
        ({"period_days": 45}, "period_days", "not a valid choice"),
        ({"name": ""}, "name", ""),
    ],
)  # fmt: skip
def test_contradictory_or_impossible_criteria_are_refused_naming_the_field(program, criteria, field, message):
    criteria = {"name": "Refused", **criteria}

    with pytest.raises(ApplicationError) as refused:
        segments.segment_save(program=program, created_by=None, **criteria)

    assert refused.value.extra["field"] == field
    assert message in refused.value.message
    assert not Segment.objects.exists()


def test_a_draft_is_refused_like_a_save(program):
    with pytest.raises(ApplicationError, match="Decile 1 is the best"):
        segments.segment_draft(program=program, decile_best=5, decile_worst=2)


def test_tiers_and_stores_must_be_the_programs(program, stores):
    other = ProgramFactory(slug="other")
    foreign_tier = TierFactory(program=other, rank=1, name="Elsewhere")
    foreign_store = StoreFactory(name="Elsewhere")

    with pytest.raises(ApplicationError, match="tiers of this program") as refused:
        segments.segment_save(program=program, name="A", created_by=None, tiers=[foreign_tier])
    assert refused.value.extra["field"] == "tiers"
    with pytest.raises(ApplicationError, match="stores that run this program"):
        segments.segment_save(program=program, name="A", created_by=None, stores=[foreign_store])


def test_names_are_unique_within_a_program(program):
    segments.segment_save(program=program, name="Best", created_by=None)

    with pytest.raises(ApplicationError, match="already called “Best”"):
        segments.segment_save(program=program, name="Best", created_by=None, consent="given")
    other = ProgramFactory(slug="other")
    assert segments.segment_save(program=other, name="Best", created_by=None).pk


def test_saving_changes_only_the_fields_given(program, manager_user):
    segment = segments.segment_save(
        program=program, name="Gold", created_by=manager_user, tiers=[tier(program, "Gold")], balance_min=10
    )

    segment = segments.segment_save(program=program, segment=segment, created_by=None, name="Gold, rich")

    segment.refresh_from_db()
    assert (segment.name, segment.balance_min, segment.created_by) == ("Gold, rich", 10, manager_user)
    assert list(segment.tiers.all()) == [tier(program, "Gold")]


def test_a_segment_a_campaign_used_cannot_be_deleted(program):
    segment = segments.segment_save(program=program, name="Used", created_by=None)
    Campaign.objects.create(
        program=program,
        name="Spring",
        segment=segment,
        starts_on=datetime.date(2026, 3, 1),
        ends_on=datetime.date(2026, 3, 31),
        mechanic=Campaign.Mechanic.ANNOUNCEMENT,
    )

    with pytest.raises(ApplicationError, match="The campaign “Spring” targeted this segment"):
        segments.segment_delete(segment=segment)
    assert Segment.objects.filter(pk=segment.pk).exists()


def test_an_unused_segment_is_deleted(program):
    segment = segments.segment_save(program=program, name="Unused", created_by=None)

    segments.segment_delete(segment=segment)

    assert not Segment.objects.exists()
