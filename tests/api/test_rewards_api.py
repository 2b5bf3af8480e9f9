"""The rewards endpoints: a member's catalogue, redemptions, a voucher's status and its single use at
the till."""

import datetime

import pytest
from django.utils import timezone

from loyalty import services as engine_services
from rewards import codes
from rewards.models import Redemption, Voucher
from tests.api.conftest import error_of, give_voucher, replayed
from tests.factories import RewardFactory

pytestmark = pytest.mark.django_db

REDEMPTIONS = "/api/v1/redemptions/"


@pytest.fixture
def holder(customer):
    """holder(points) -> an account of the shop holding `points` (a staff credit on top of nothing)."""

    def _holder(points: int):
        account = customer()
        # Spend the welcome bonus away from the count: the tests reason in round balances.
        engine_services.adjust(account=account, points=points - account.balance, reason="Opening", created_by=None)
        account.refresh_from_db()
        return account

    return _holder


def test_the_catalogue_says_for_each_reward_whether_it_can_be_redeemed_and_why_not(api, holder, shop):
    account = holder(300)
    RewardFactory(program=shop, name="Coffee", points_cost=50)
    RewardFactory(program=shop, name="Drill", points_cost=500)
    RewardFactory(program=shop, name="Lounge", points_cost=10, min_tier=shop.tiers.get(name="Gold"))
    RewardFactory(program=shop, name="Mug", points_cost=20, stock=0)

    response = api.get(f"/api/v1/members/{account.member.member_no}/rewards/")

    assert response.status_code == 200, response.content
    offers = {row["name"]: row for row in response.json()["results"]}
    assert offers["Coffee"]["available"] is True and offers["Coffee"]["reason_code"] is None
    assert (offers["Drill"]["reason_code"], offers["Drill"]["points_missing"]) == ("insufficient_points", 200)
    assert offers["Drill"]["reason"] == "200 more points"
    assert offers["Lounge"]["reason_code"] == "needs_tier"
    assert offers["Mug"]["reason_code"] == "out_of_stock"


def test_a_redemption_spends_the_points_and_issues_the_voucher(api, holder, shop, store):
    account = holder(300)
    reward = RewardFactory(program=shop, name="EUR 5 voucher", points_cost=100, stock=10)

    response = api.post_keyed(REDEMPTIONS, {"member": account.member.member_no, "reward": reward.pk})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["points"], body["balance"], body["status"]) == (100, 200, "fulfilled")
    voucher = Voucher.objects.get()
    assert body["voucher"]["code"] == codes.display(voucher.code)
    assert body["voucher"]["amount"] == "5.00"
    redemption = Redemption.objects.get(pk=body["id"])
    assert (redemption.channel, redemption.store) == ("api", store)
    reward.refresh_from_db()
    assert reward.stock == 9


def test_a_redemption_retried_with_its_key_spends_once(api, holder, shop):
    account = holder(300)
    reward = RewardFactory(program=shop, points_cost=100)
    body = {"member": account.member.member_no, "reward": reward.pk}

    first = api.post_keyed(REDEMPTIONS, body, key="red-1")
    again = api.post_keyed(REDEMPTIONS, body, key="red-1")

    assert replayed(again) and again.json() == first.json()
    account.refresh_from_db()
    assert account.balance == 200
    assert Redemption.objects.count() == Voucher.objects.count() == 1


@pytest.mark.parametrize(
    ("reward_fields", "code"),
    [
        ({"points_cost": 500}, "insufficient_points"),
        ({"stock": 0}, "out_of_stock"),
        ({"is_active": False}, "not_available"),
        ({"regions": ["Wallonia"]}, "not_offered"),
    ],
)
def test_refused_redemptions_say_why_and_write_nothing(api, holder, shop, rows_written, reward_fields, code):
    account = holder(300)
    reward = RewardFactory(program=shop, **reward_fields)
    before = rows_written()

    response = api.post_keyed(REDEMPTIONS, {"member": account.member.member_no, "reward": reward.pk})

    assert response.status_code == 422, response.content
    assert error_of(response)["code"] == code
    assert rows_written() == before


def test_a_reward_of_another_program_is_not_found(api, holder, elsewhere):
    account = holder(300)
    foreign = RewardFactory(program=elsewhere.program, points_cost=1)

    response = api.post_keyed(REDEMPTIONS, {"member": account.member.member_no, "reward": foreign.pk})

    assert response.status_code == 404
    assert error_of(response)["code"] == "reward_not_found"


def test_a_redemption_needs_its_idempotency_key(api, holder, shop):
    account = holder(300)
    reward = RewardFactory(program=shop)

    response = api.post(REDEMPTIONS, {"member": account.member.member_no, "reward": reward.pk}, format="json")

    assert response.status_code == 400
    assert error_of(response)["code"] == "idempotency_key_required"


# --- vouchers at the till ---------------------------------------------------------------------


def test_a_vouchers_status_says_whether_it_can_be_used(api, customer):
    voucher = give_voucher(customer(), "gift-1", amount="7.50")
    typed = codes.display(voucher.code).lower().replace("-", " ")  # as a clerk might type it

    response = api.get(f"/api/v1/vouchers/{typed}/")

    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["status"], body["usable"], body["amount"], body["refusal_code"]) == ("active", True, "7.50", None)


def test_a_voucher_is_used_once_and_a_second_use_is_a_conflict(api, customer, store, rows_written):
    voucher = give_voucher(customer(), "gift-1")
    url = f"/api/v1/vouchers/{voucher.code}/redeem/"

    used = api.post_keyed(url)
    before = rows_written()
    again = api.post_keyed(url)

    assert used.status_code == 200, used.content
    assert (used.json()["status"], used.json()["redeemed_store"]) == ("redeemed", store.code)
    assert again.status_code == 409
    assert error_of(again)["code"] == "voucher_already_redeemed"
    assert rows_written() == before


def test_the_tills_retry_of_a_voucher_use_gets_the_same_success(api, customer):
    """The till lost the first answer: its retry (same key) must not tell the clerk it was already used."""
    voucher = give_voucher(customer(), "gift-1")
    url = f"/api/v1/vouchers/{voucher.code}/redeem/"

    first = api.post_keyed(url, key="v-1")
    retry = api.post_keyed(url, key="v-1")

    assert first.status_code == retry.status_code == 200
    assert replayed(retry) and retry.json() == first.json()


@pytest.mark.parametrize(
    ("status", "starts", "ends", "code"),  # days from today
    [
        ("cancelled", 0, 30, "voucher_cancelled"),
        ("active", -30, -1, "voucher_expired"),
        ("active", 3, 30, "voucher_not_yet_valid"),
    ],
)
def test_unusable_vouchers_are_refused_with_their_reason(api, customer, rows_written, status, starts, ends, code):
    voucher = give_voucher(customer(), "gift-1")
    today = timezone.localdate()
    Voucher.objects.filter(pk=voucher.pk).update(
        status=status,
        valid_from=today + datetime.timedelta(days=starts),
        valid_until=today + datetime.timedelta(days=ends),
    )
    before = rows_written()

    status_response = api.get(f"/api/v1/vouchers/{voucher.code}/")
    response = api.post_keyed(f"/api/v1/vouchers/{voucher.code}/redeem/")

    assert (status_response.json()["usable"], status_response.json()["refusal_code"]) == (False, code)
    assert response.status_code == 422
    assert error_of(response)["code"] == code
    assert rows_written() == before


def test_a_mistyped_or_unknown_voucher_code_is_refused(api, customer):
    voucher = give_voucher(customer(), "gift-1")
    mistyped = voucher.code[:-1] + next(c for c in codes.ALPHABET if c != voucher.code[-1])

    bad = api.get(f"/api/v1/vouchers/{mistyped}/")
    unknown = api.get(f"/api/v1/vouchers/{codes.generate()}/")

    assert (bad.status_code, error_of(bad)["code"]) == (422, "voucher_code_invalid")
    assert (unknown.status_code, error_of(unknown)["code"]) == (404, "voucher_not_found")
