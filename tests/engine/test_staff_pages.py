"""The engine's staff pages: who may open what, and every form's refusals."""

from decimal import Decimal

import pytest
from django.utils import timezone

from loyalty import services
from loyalty.models import Activity, ActivityType, EarnRule, LedgerEntry, Tier
from tests.factories import EarnRuleFactory

pytestmark = pytest.mark.django_db


def _url(program, page=""):
    return f"/staff/programs/{program.slug}/{page}"


@pytest.mark.parametrize(
    ("who", "page", "status"),
    [
        ("manager_user", "", 200),
        ("manager_user", "tiers/", 200),
        ("manager_user", "claims/", 200),
        ("manager_user", "adjust/", 200),
        ("analyst_user", "", 200),
        ("analyst_user", "tiers/", 403),
        ("analyst_user", "claims/", 403),
        ("analyst_user", "adjust/", 403),
        ("clerk_user", "", 403),
        ("member_user", "", 403),
    ],
)
def test_who_may_open_each_program_page(client, request, program, who, page, status):
    client.force_login(request.getfixturevalue(who))

    assert client.get(_url(program, page)).status_code == status


def test_an_analyst_cannot_post_an_adjustment_either(client, analyst_user, program, enrol):
    account = enrol(program)
    client.force_login(analyst_user)

    response = client.post(
        _url(program, "adjust/"), {"member_no": account.member.member_no, "points": 50, "reason": "x"}
    )

    assert response.status_code == 403
    assert not LedgerEntry.objects.filter(kind="adjust").exists()


def test_the_overview_shows_the_ladder_rules_and_totals(client, manager_user, program, enrol, buy):
    buy(enrol(program), "1500.00")
    client.force_login(manager_user)

    html = client.get(_url(program)).content.decode()

    for text in ["Bronze", "Silver", "Gold", "Platinum", "Base earning", "1,500"]:
        assert text in html


def test_the_program_list_counts_members_and_points(client, manager_user, program, enrol, buy):
    buy(enrol(program), "40.00")
    enrol(program)
    client.force_login(manager_user)

    response = client.get("/staff/programs/")

    program_row = next(p for p in response.context["programs"] if p.pk == program.pk)
    assert (program_row.member_count, program_row.outstanding) == (2, 40)


def _ladder_post(rows):
    data = {"form-TOTAL_FORMS": len(rows), "form-INITIAL_FORMS": 0}
    for i, (rank, name, threshold, multiplier, benefits) in enumerate(rows):
        data |= {
            f"form-{i}-rank": rank,
            f"form-{i}-name": name,
            f"form-{i}-threshold": threshold,
            f"form-{i}-earn_multiplier": multiplier,
            f"form-{i}-colour": "#aa8800",
            f"form-{i}-benefits": benefits,
        }
    return data


def test_the_ladder_editor_saves_thresholds_multipliers_and_benefits(client, manager_user, program):
    client.force_login(manager_user)
    rows = [
        (1, "Bronze", 0, "1", ""),
        (2, "Silver", 800, "1.2", "Free delivery"),
        (3, "Gold", 4000, "1.5", "Free delivery\nPriority support"),
        (4, "Platinum", 12000, "2", "Personal advisor"),
    ]

    response = client.post(_url(program, "tiers/"), _ladder_post(rows))

    assert response.status_code == 302
    gold = Tier.objects.get(program=program, name="Gold")
    assert (gold.threshold, gold.earn_multiplier) == (4000, Decimal("1.50"))
    assert [b.text for b in gold.benefits.all()] == ["Free delivery", "Priority support"]


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, "Bronze", 0, "1", ""), (2, "Silver", 0, "1", "")], "Exactly one tier must start at threshold 0"),
        ([(1, "Bronze", 0, "1", ""), (2, "Silver", 5000, "1", ""), (3, "Gold", 4000, "1", "")], "tiers would overlap"),
        ([(1, "Bronze", 100, "1", ""), (2, "Silver", 5000, "1", "")], "Exactly one tier must start at threshold 0"),
        ([(1, "Bronze", 0, "1", ""), (2, "bronze", 500, "1", "")], "same name"),
    ],
)
def test_a_ladder_that_would_overlap_is_refused_with_the_reason_and_nothing_changes(
    client, manager_user, program, rows, message
):
    client.force_login(manager_user)
    before = list(Tier.objects.filter(program=program).values_list("rank", "name", "threshold"))

    response = client.post(_url(program, "tiers/"), _ladder_post(rows))

    assert response.status_code == 400
    assert message in response.content.decode()
    assert list(Tier.objects.filter(program=program).values_list("rank", "name", "threshold")) == before


def test_a_tier_members_hold_cannot_be_removed(client, manager_user, program, enrol):
    account = enrol(program)
    services.adjust(account=account, points=20000, reason="Top", created_by=None, qualifying=True)
    client.force_login(manager_user)

    response = client.post(
        _url(program, "tiers/"), _ladder_post([(1, "Bronze", 0, "1", ""), (2, "Silver", 1000, "1", "")])
    )

    assert response.status_code == 400
    assert "Members hold Platinum" in response.content.decode()
    assert program.tiers.count() == 4


def test_the_previewer_answers_with_points_and_explanation_as_an_htmx_fragment(client, analyst_user, program):
    client.force_login(analyst_user)
    gold = program.tiers.get(name="Gold")

    response = client.post(
        _url(program, "preview/"),
        {"activity_type": "purchase", "amount": "80", "tier": gold.pk, "quantity": "1"},
        headers={"HX-Request": "true"},
    )

    html = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in html  # a fragment, swapped into the page
    assert "120 pts: 1 pt per EUR 1 on EUR 80, x1.5 Gold (Base earning)" in html
    assert not LedgerEntry.objects.exists()


def test_the_previewer_says_when_the_member_number_is_unknown(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(
        _url(program, "preview/"),
        {"activity_type": "purchase", "amount": "80", "member_no": "000"},
        headers={"HX-Request": "true"},
    )

    assert "No member 000 in this program" in response.content.decode()


def test_claims_are_approved_or_rejected_from_the_queue(client, manager_user, program, enrol):
    EarnRuleFactory(
        program=program,
        name="Training",
        activity_type=ActivityType.TRAINING_HOURS,
        calculation=EarnRule.Calculation.PER_QUANTITY,
        rate=Decimal("40"),
        requires_approval=True,
    )
    account = enrol(program)
    claims = [
        services.earn_for_activity(
            account=account,
            activity_type="training_hours",
            quantity=2,
            occurred_at=timezone.now(),
            idempotency_key=f"claim-{n}",
        ).activity
        for n in range(2)
    ]
    client.force_login(manager_user)
    assert "Training hours" in client.get(_url(program, "claims/")).content.decode()

    client.post(_url(program, f"claims/{claims[0].pk}/approve/"))
    client.post(_url(program, f"claims/{claims[1].pk}/reject/"), {"reason": "No certificate attached"})

    account.refresh_from_db()
    assert account.balance == 80
    claims[1].refresh_from_db()
    assert (claims[1].status, claims[1].rejection_reason) == (Activity.Status.REJECTED, "No certificate attached")
    assert claims[0].entries.get().created_by == manager_user


def test_a_rejection_without_a_reason_is_refused(client, manager_user, program, enrol):
    EarnRuleFactory(
        program=program,
        name="Review",
        activity_type=ActivityType.REVIEW,
        calculation=EarnRule.Calculation.FIXED,
        rate=Decimal("10"),
        requires_approval=True,
    )
    claim = services.earn_for_activity(
        account=enrol(program), activity_type="review", occurred_at=timezone.now(), idempotency_key="c1"
    ).activity
    client.force_login(manager_user)

    response = client.post(_url(program, f"claims/{claim.pk}/reject/"), {"reason": ""}, follow=True)

    assert "Say why the claim is rejected" in response.content.decode()
    claim.refresh_from_db()
    assert claim.status == Activity.Status.PENDING_REVIEW


def test_an_adjustment_is_recorded_with_who_made_it(client, manager_user, program, enrol):
    account = enrol(program)
    client.force_login(manager_user)

    response = client.post(
        _url(program, "adjust/"),
        {"member_no": account.member.member_no, "points": 75, "reason": "Receipt lost by the till"},
        follow=True,
    )

    assert "new balance 75" in response.content.decode()
    entry = account.entries.get(kind="adjust")
    assert (entry.points, entry.created_by, entry.reason) == (75, manager_user, "Receipt lost by the till")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"member_no": "nope", "points": 5, "reason": "x"}, "No member with this number"),
        ({"points": -50, "reason": "Correction"}, "below zero"),
        ({"points": 5, "reason": ""}, "This field is required"),
        ({"points": 0, "reason": "Correction"}, "other than zero"),
    ],
)
def test_bad_adjustments_say_what_to_fix_and_write_nothing(client, manager_user, program, enrol, data, message):
    account = enrol(program)
    data.setdefault("member_no", account.member.member_no)
    client.force_login(manager_user)

    response = client.post(_url(program, "adjust/"), data)

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not account.entries.exists()
