"""Reward pages through Django's test client: the member catalogue and vouchers, the clerk desk's
redemption and voucher check, the staff catalogue; who may open what, and every refusal."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from loyalty import services as engine
from loyalty.models import LedgerEntry
from members.roles import Role
from members.services import member_user_create, staff_user_create
from rewards import codes
from rewards import services as reward_services
from rewards.models import Redemption, Reward, Voucher
from tests.conftest import PASSWORD
from tests.factories import ProgramFactory, StoreFactory, TierFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def member_account(signed_in_member):
    """Ann, signed in online, enrolled at the clerk's store, with 600 points."""
    return signed_in_member("600.00")


def _reward(program, **fields):
    fields = {
        "name": "EUR 5 voucher",
        "kind": "voucher_amount",
        "points_cost": 500,
        "value": Decimal("5"),
        "fulfilment": "voucher",
        **fields,
    }
    return reward_services.reward_save(program=program, **fields)


def _voucher(account, **fields):
    reward = _reward(account.program, **fields)
    return reward_services.redeem(account=account, reward=reward, idempotency_key="seed", channel="online").voucher


# --- the member ---------------------------------------------------------------------------------------


def test_the_catalogue_shows_what_the_member_can_redeem_and_why_not_otherwise(client, member_user, member_account):
    program = member_account.program
    _reward(program, name="EUR 5 voucher")
    _reward(program, name="Big voucher", points_cost=920, value=Decimal("10"))
    _reward(
        program,
        name="Gold lounge",
        kind="experience",
        value=None,
        points_cost=50,
        min_tier=program.tiers.get(name="Gold"),
    )
    _reward(program, name="Sold out mug", kind="merchandise", value=None, points_cost=10, stock=0, fulfilment="manual")
    _reward(program, name="Walloon only", points_cost=10, regions=["Wallonia"])
    client.force_login(member_user)

    html = client.get(reverse("me:rewards")).content.decode()

    assert "EUR 5 voucher" in html and "You can redeem this" in html
    assert "320 more points" in html  # 920 - 600
    assert "Needs Gold" in html
    assert "Out of stock" in html
    assert "Walloon only" not in html  # not offered in the member's region: not shown at all


def test_a_member_redeems_after_confirming_and_lands_on_the_voucher(client, member_user, member_account):
    reward = _reward(member_account.program)
    client.force_login(member_user)
    url = reverse("me:reward", args=[reward.pk])

    confirm = client.get(url + "?confirm=1", headers={"HX-Request": "true"})
    assert confirm.status_code == 200
    assert "Confirm your redemption" in confirm.content.decode() and "<html" not in confirm.content.decode()
    response = client.post(url, {"request_id": "r-1"})

    voucher = Voucher.objects.get()
    assert response.status_code == 302 and response.url == reverse("me:voucher", args=[voucher.code])
    page = client.get(response.url).content.decode()
    assert codes.display(voucher.code) in page and "<svg" in page and "Ready to use" in page
    member_account.refresh_from_db()
    assert member_account.balance == 100


def test_an_htmx_redemption_answers_with_a_redirect_header(client, member_user, member_account):
    reward = _reward(member_account.program)
    client.force_login(member_user)

    response = client.post(
        reverse("me:reward", args=[reward.pk]), {"request_id": "r-1"}, headers={"HX-Request": "true"}
    )

    assert response.status_code == 204
    assert response["HX-Redirect"] == reverse("me:voucher", args=[Voucher.objects.get().code])


def test_a_double_submitted_confirmation_redeems_once(client, member_user, member_account):
    reward = _reward(member_account.program, points_cost=100)
    client.force_login(member_user)
    url = reverse("me:reward", args=[reward.pk])

    client.post(url, {"request_id": "same-click"})
    client.post(url, {"request_id": "same-click"})

    assert Redemption.objects.count() == 1
    member_account.refresh_from_db()
    assert member_account.balance == 500


def test_a_refused_redemption_says_why_and_writes_nothing(client, member_user, member_account):
    reward = _reward(member_account.program, points_cost=900, value=Decimal("9"))
    client.force_login(member_user)

    response = client.post(reverse("me:reward", args=[reward.pk]), {"request_id": "r-1"})

    assert response.status_code == 400
    assert "300 more points" in response.content.decode()
    assert not Redemption.objects.exists() and not LedgerEntry.objects.filter(kind="redeem").exists()


def test_a_member_cannot_see_or_redeem_what_is_not_theirs(client, member_user, member_account, enrol):
    other_program = ProgramFactory(slug="other")
    TierFactory(program=other_program, rank=1, name="Base", threshold=0)
    foreign_reward = _reward(other_program)
    walloon_reward = _reward(member_account.program, name="Walloon only", regions=["Wallonia"])
    stranger = enrol(member_account.program)
    engine.adjust(account=stranger, points=1000, reason="gift", created_by=None)
    strangers_voucher = _voucher(stranger, name="Stranger's voucher")
    client.force_login(member_user)

    assert client.get(reverse("me:reward", args=[foreign_reward.pk])).status_code == 404
    assert client.post(reverse("me:reward", args=[foreign_reward.pk]), {"request_id": "x"}).status_code == 404
    assert client.get(reverse("me:reward", args=[walloon_reward.pk])).status_code == 404
    assert client.get(reverse("me:voucher", args=[strangers_voucher.code])).status_code == 404
    assert strangers_voucher.code not in client.get(reverse("me:vouchers")).content.decode()
    assert Redemption.objects.count() == 1  # the stranger's own


def test_my_vouchers_lists_usable_ones_and_keeps_used_ones_apart(
    client, member_user, member_account, clerk_user, store
):
    voucher = _voucher(member_account, points_cost=100)
    used = reward_services.redeem(
        account=member_account, reward=voucher.redemption.reward, idempotency_key="second", channel="online"
    ).voucher
    reward_services.voucher_redeem(code=used.code, store=store, redeemed_by=clerk_user)
    client.force_login(member_user)

    response = client.get(reverse("me:vouchers"))

    usable = [v.code for v in response.context["usable"]]
    past = [v.code for v in response.context["past"]]
    assert usable == [voucher.code] and past == [used.code]
    assert store.name in response.content.decode()


def test_the_dashboard_shows_rewards_within_reach_and_vouchers(client, member_user, member_account):
    _reward(member_account.program, name="Cheap coffee", kind="merchandise", value=None, points_cost=50)
    _reward(member_account.program, name="Big voucher", points_cost=900, value=Decimal("9"))
    _voucher(member_account, name="Held voucher", points_cost=100)
    client.force_login(member_user)

    html = client.get(reverse("me:dashboard")).content.decode()

    assert "Rewards within reach" in html and "Cheap coffee" in html and "400 more points" in html
    assert "Held voucher" in html


# --- the clerk desk -----------------------------------------------------------------------------------


def test_a_clerk_redeems_a_reward_for_the_customer_and_hands_over_the_code(client, clerk_user, store, member_account):
    reward = _reward(member_account.program)
    client.force_login(clerk_user)
    member_no = member_account.member.member_no

    response = client.post(reverse("desk:redeem", args=[member_no]), {"reward": reward.pk, "request_id": "d-1"})

    assert response.status_code == 200
    redemption = Redemption.objects.get()
    assert redemption.channel == "desk" and redemption.store == store and redemption.created_by == clerk_user
    assert codes.display(redemption.voucher.code) in response.content.decode()


def test_the_desk_offers_only_rewards_the_customer_can_redeem(client, clerk_user, member_account):
    _reward(member_account.program, name="Affordable")
    too_dear = _reward(member_account.program, name="Too dear", points_cost=5000, value=Decimal("50"))
    client.force_login(clerk_user)
    member_no = member_account.member.member_no

    html = client.get(reverse("desk:member", args=[member_no])).content.decode()
    refused = client.post(reverse("desk:redeem", args=[member_no]), {"reward": too_dear.pk, "request_id": "d-1"})

    assert "Affordable" in html and "Too dear" not in html
    assert refused.status_code == 400 and not Redemption.objects.exists()


def test_a_clerk_checks_a_code_uses_it_and_a_second_use_names_the_first(client, clerk_user, store, member_account):
    voucher = _voucher(member_account)
    client.force_login(clerk_user)
    typed = codes.display(voucher.code).lower().replace("-", " ")  # as a person types it

    checked = client.get(reverse("desk:vouchers"), {"code": typed})
    assert checked.status_code == 200
    assert "Valid: it can be used now" in checked.content.decode() and "Ann Smets" in checked.content.decode()

    used = client.post(reverse("desk:vouchers"), {"code": typed}, follow=True)
    assert "used" in used.content.decode() and Voucher.objects.get().status == "redeemed"

    again = client.post(reverse("desk:vouchers"), {"code": voucher.code})
    voucher.refresh_from_db()
    when = timezone.localtime(voucher.redeemed_at)
    assert again.status_code == 400
    html = again.content.decode()
    assert "already used on" in html and store.name in html and str(when.year) in html


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("", "This field is required."),
        ("AAAA-AAAA-AAAC", "a character is mistyped"),
        ("HELLO", "a character is mistyped"),
    ],
)
def test_a_mistyped_code_is_refused_with_a_clear_message(client, clerk_user, member_account, typed, message):
    client.force_login(clerk_user)

    response = client.post(reverse("desk:vouchers"), {"code": typed})

    assert response.status_code == 400 and message in response.content.decode()


def test_a_clerk_of_a_store_outside_the_program_learns_nothing_about_a_code(client, member_account):
    voucher = _voucher(member_account)
    elsewhere = staff_user_create(
        email="eve@example.com", password=PASSWORD, role=Role.STORE_CLERK, store=StoreFactory(code="FAR-01")
    )
    unknown = codes.generate()
    client.force_login(elsewhere)

    foreign = client.post(reverse("desk:vouchers"), {"code": voucher.code}).content.decode()
    missing = client.post(reverse("desk:vouchers"), {"code": unknown}).content.decode()

    assert "No voucher with this code can be used here" in foreign and "Ann" not in foreign
    assert foreign.replace(voucher.code, "").count("No voucher with this code") == missing.count(
        "No voucher with this code"
    )
    assert Voucher.objects.get().status == "active"


def test_an_expired_voucher_is_refused_at_the_desk_with_its_date(client, clerk_user, member_account):
    voucher = _voucher(member_account, voucher_valid_days=1)
    client.force_login(clerk_user)

    tomorrow = timezone.now() + datetime.timedelta(days=2)
    import time_machine

    with time_machine.travel(tomorrow):
        response = client.post(reverse("desk:vouchers"), {"code": voucher.code})

    assert response.status_code == 400 and "This voucher expired on" in response.content.decode()
    assert Voucher.objects.get().status == "active"


def test_members_and_staff_cannot_use_the_voucher_desk(client, member_user, manager_user, member_account):
    voucher = _voucher(member_account)
    for user in (member_user, manager_user):
        client.force_login(user)
        assert client.post(reverse("desk:vouchers"), {"code": voucher.code}).status_code == 403
    assert Voucher.objects.get().status == "active"


# --- program staff ------------------------------------------------------------------------------------


def _staff_url(program, page=""):
    return f"/staff/programs/{program.slug}/rewards/{page}"


@pytest.mark.parametrize(
    ("who", "page", "status"),
    [
        ("manager_user", "", 200),
        ("manager_user", "new/", 200),
        ("manager_user", "redemptions/", 200),
        ("analyst_user", "", 200),
        ("analyst_user", "redemptions/", 200),
        ("analyst_user", "new/", 403),
        ("clerk_user", "", 403),
        ("member_user", "", 403),
    ],
)
def test_who_may_open_each_reward_staff_page(client, request, program, who, page, status):
    client.force_login(request.getfixturevalue(who))

    assert client.get(_staff_url(program, page)).status_code == status


REWARD_FORM = {
    "name": "EUR 10 voucher",
    "kind": "voucher_amount",
    "points_cost": "950",
    "value": "10",
    "fulfilment": "voucher",
    "voucher_valid_days": "90",
    "regions": "Flanders, Brussels",
    "is_active": "on",
}


def test_a_manager_adds_a_reward_and_sees_it_with_its_stock(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(_staff_url(program, "new/"), {**REWARD_FORM, "stock": "3"})

    assert response.status_code == 302
    reward = Reward.objects.get()
    assert reward.regions == ["Flanders", "Brussels"] and reward.stock == 3 and reward.points_cost == 950
    listing = client.get(_staff_url(program)).content.decode()
    assert "EUR 10 voucher" in listing and f'data-testid="stock-{reward.pk}"' in listing
    assert reward.history.first().history_user == manager_user  # the audit trail names who changed it


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"value": ""}, "Give the voucher&#x27;s value."),
        ({"kind": "voucher_percent", "value": "150"}, "A percentage discount is at most 100."),
        ({"limit_per_member": "2"}, "Give both the limit per member and its period, or neither."),
        ({"valid_from": "2026-12-31", "valid_until": "2026-12-01"}, "The end date comes before the start date."),
        ({"points_cost": "0"}, "Ensure this value is greater than or equal to 1."),
        ({"fulfilment": "manual"}, "A voucher reward issues its voucher code at once"),
    ],
)
def test_a_bad_reward_is_refused_with_what_to_fix_and_nothing_is_saved(client, manager_user, program, change, message):
    client.force_login(manager_user)

    response = client.post(_staff_url(program, "new/"), {**REWARD_FORM, **change})

    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Reward.objects.exists()


def test_an_analyst_cannot_add_change_fulfil_or_cancel(client, analyst_user, member_account):
    reward = _reward(member_account.program, kind="merchandise", value=None, fulfilment="manual", points_cost=100)
    redemption = reward_services.redeem(
        account=member_account, reward=reward, idempotency_key="k", channel="online"
    ).redemption
    program = member_account.program
    client.force_login(analyst_user)

    assert client.post(_staff_url(program, "new/"), REWARD_FORM).status_code == 403
    assert client.post(_staff_url(program, f"{reward.pk}/"), {**REWARD_FORM, "name": "x"}).status_code == 403
    assert client.post(_staff_url(program, f"redemptions/{redemption.pk}/fulfil/")).status_code == 403
    assert client.post(_staff_url(program, f"redemptions/{redemption.pk}/cancel/"), {"reason": "x"}).status_code == 403
    redemption.refresh_from_db()
    reward.refresh_from_db()
    assert redemption.status == "requested" and reward.name == "EUR 5 voucher"


def test_staff_fulfil_one_redemption_and_cancel_another_with_the_points_refunded(client, manager_user, member_account):
    reward = _reward(
        member_account.program, kind="donation", value=Decimal("5"), fulfilment="manual", points_cost=100, stock=10
    )
    first, second = (
        reward_services.redeem(account=member_account, reward=reward, idempotency_key=key, channel="online").redemption
        for key in ("a", "b")
    )
    program = member_account.program
    client.force_login(manager_user)

    queue = client.get(_staff_url(program, "redemptions/")).content.decode()
    assert queue.count("Mark as fulfilled") == 2
    client.post(_staff_url(program, f"redemptions/{first.pk}/fulfil/"))
    refused = client.post(_staff_url(program, f"redemptions/{second.pk}/cancel/"), {"reason": ""}, follow=True)
    assert "Give a reason for cancelling" in refused.content.decode()
    client.post(_staff_url(program, f"redemptions/{second.pk}/cancel/"), {"reason": "Charity closed"})

    first.refresh_from_db()
    second.refresh_from_db()
    reward.refresh_from_db()
    member_account.refresh_from_db()
    assert first.status == "fulfilled" and first.fulfilled_by == manager_user
    assert second.status == "cancelled" and second.cancel_reason == "Charity closed"
    assert reward.stock == 9 and member_account.balance == 500
    assert "Charity closed" in LedgerEntry.objects.get(kind="reverse").reason


def test_a_reward_from_another_program_is_not_editable_through_this_one(client, manager_user, program):
    other = ProgramFactory(slug="other")
    foreign = _reward(other)
    client.force_login(manager_user)

    assert client.get(_staff_url(program, f"{foreign.pk}/")).status_code == 404


def test_a_member_without_sign_in_rights_is_sent_to_sign_in(client, program):
    assert client.get(reverse("me:rewards")).status_code == 302
    assert client.get(reverse("desk:vouchers")).status_code == 302


def test_a_new_user_without_membership_is_sent_to_join(client, db):
    user = member_user_create(email="new@example.com", password=PASSWORD, email_verified=True)
    client.force_login(user)

    assert client.get(reverse("me:vouchers")).url == reverse("me:join")


def test_the_daily_voucher_expiry_job_marks_lapsed_vouchers(member_account, run_job):
    voucher = _voucher(member_account, voucher_valid_days=1)
    yesterday = timezone.localdate() - datetime.timedelta(days=1)
    Voucher.objects.filter(pk=voucher.pk).update(valid_from=yesterday, valid_until=yesterday)

    assert run_job("rewards.expire_vouchers").rows == 1
    voucher.refresh_from_db()
    assert voucher.status == "expired"
