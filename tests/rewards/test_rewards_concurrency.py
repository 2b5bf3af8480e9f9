"""Real concurrent transactions on PostgreSQL: the account, reward, redemption and voucher row locks
keep stock, points and single use right whoever arrives at the same instant. Each test ends with
check_ledger, as operations would run it."""

import io

import pytest
from django.core.management import call_command

from loyalty.models import Account, LedgerEntry
from members import services as member_services
from members.roles import Role
from rewards import services
from rewards.models import Redemption, Voucher
from tests.conftest import PASSWORD
from tests.engine.test_concurrency import _race
from tests.factories import StoreFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _redeem(account, reward, key):
    return services.redeem(account=account, reward=reward, idempotency_key=key, channel="online")


def _assert_ledger_sound():
    # call_command raises CommandError on a breach (the shell sees exit status 1).
    out = io.StringIO()
    call_command("check_ledger", stdout=out)
    assert "every invariant holds" in out.getvalue()


def _codes(outcomes, status):
    return [value for outcome, value in outcomes if outcome == status]


def test_fifty_members_racing_for_the_last_item_leave_one_winner_and_the_others_their_points(member_with, make_reward):
    reward = make_reward(points_cost=100, stock=1)
    accounts = [member_with(150) for _ in range(50)]

    outcomes = _race(50, lambda i: _redeem(accounts[i], reward, f"last-item-{i}").redemption.account_id)

    [winner] = _codes(outcomes, "ok")
    assert _codes(outcomes, "refused") == ["out_of_stock"] * 49
    reward.refresh_from_db()
    assert reward.stock == 0
    balances = dict(Account.objects.filter(pk__in=[a.pk for a in accounts]).values_list("pk", "balance"))
    assert balances == {account.pk: 50 if account.pk == winner else 150 for account in accounts}
    assert (Redemption.objects.count(), Voucher.objects.count()) == (1, 1)
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1
    _assert_ledger_sound()


def test_twenty_redemptions_at_once_against_a_balance_that_covers_three_succeed_three_times(member_with, make_reward):
    account = member_with(300)
    reward = make_reward(points_cost=100)

    outcomes = _race(20, lambda i: _redeem(account, reward, f"tap-{i}").redemption.pk)

    assert len(set(_codes(outcomes, "ok"))) == 3
    assert _codes(outcomes, "refused") == ["insufficient_points"] * 17
    account.refresh_from_db()
    assert (account.balance, account.lifetime_redeemed) == (0, 300)
    assert Redemption.objects.count() == 3
    assert LedgerEntry.objects.filter(kind="redeem").count() == 3
    _assert_ledger_sound()


def test_twenty_clerks_scanning_one_voucher_at_once_accept_it_once(program, member_with, make_reward, store):
    second_store = StoreFactory(name="Antwerp Meir")
    program.stores.add(store, second_store)
    desks = [  # (clerk, their store)
        (
            member_services.staff_user_create(
                email=f"clerk{n}@example.com", password=PASSWORD, role=Role.STORE_CLERK, store=shop
            ),
            shop,
        )
        for n, shop in enumerate([store, second_store] * 2)
    ]
    voucher = _redeem(member_with(500), make_reward(points_cost=100), "r1").voucher

    def scan(i):
        clerk, shop = desks[i % 4]
        return services.voucher_redeem(code=voucher.code, store=shop, redeemed_by=clerk).pk

    outcomes = _race(20, scan)

    assert _codes(outcomes, "ok") == [voucher.pk]
    assert _codes(outcomes, "refused") == ["voucher_already_redeemed"] * 19
    voucher.refresh_from_db()
    assert voucher.status == "redeemed"
    assert (voucher.redeemed_by, voucher.redeemed_store) in desks
    _assert_ledger_sound()


def test_twenty_retries_with_one_idempotency_key_at_once_redeem_once_and_all_get_that_redemption(
    member_with, make_reward
):
    account = member_with(500)
    reward = make_reward(points_cost=100, stock=10)

    outcomes = _race(20, lambda _i: (lambda r: (r.redemption.pk, r.replayed))(_redeem(account, reward, "app-retry")))

    answers = _codes(outcomes, "ok")
    assert len(answers) == 20
    assert len({pk for pk, _replayed in answers}) == 1
    assert sorted(replayed for _pk, replayed in answers) == [False] + [True] * 19
    assert (Redemption.objects.count(), Voucher.objects.count()) == (1, 1)
    assert LedgerEntry.objects.filter(kind="redeem").count() == 1
    account.refresh_from_db()
    assert (account.balance, account.lifetime_redeemed) == (400, 100)
    reward.refresh_from_db()
    assert reward.stock == 9
    _assert_ledger_sound()


def test_ten_cancellations_of_one_redemption_at_once_refund_once_and_restock_once(
    member_with, make_reward, manager_user
):
    account = member_with(500)
    reward = make_reward(points_cost=300, stock=5)
    redemption = _redeem(account, reward, "r1").redemption

    def cancel(i):
        return services.redemption_cancel(
            redemption=Redemption.objects.get(pk=redemption.pk), reason=f"Cancel {i}", cancelled_by=manager_user
        ).cancel_reason

    outcomes = _race(10, cancel)

    reasons = _codes(outcomes, "ok")
    assert len(reasons) == 10
    assert len(set(reasons)) == 1  # every caller sees the one cancellation that happened
    assert LedgerEntry.objects.filter(kind="reverse").count() == 1
    account.refresh_from_db()
    assert (account.balance, account.lifetime_redeemed) == (500, 0)
    reward.refresh_from_db()
    assert reward.stock == 5
    redemption.refresh_from_db()
    assert (redemption.status, redemption.cancel_reason) == ("cancelled", reasons[0])
    assert Voucher.objects.get().status == "cancelled"
    _assert_ledger_sound()


def test_a_cancellation_racing_the_till_either_refunds_or_lets_the_voucher_be_used_never_both(
    program, member_with, make_reward, store, clerk_user, manager_user
):
    program.stores.add(store)
    reward = make_reward(points_cost=100)
    results = [_redeem(member_with(100), reward, f"r{n}") for n in range(10)]  # one member each: no shared lock

    def work(i):
        result = results[i // 2]
        if i % 2:
            return services.voucher_redeem(code=result.voucher.code, store=store, redeemed_by=clerk_user).status
        return services.redemption_cancel(
            redemption=Redemption.objects.get(pk=result.redemption.pk), reason="Changed mind", cancelled_by=manager_user
        ).status

    outcomes = _race(20, work)

    for n, result in enumerate(results):
        cancel, till = outcomes[2 * n], outcomes[2 * n + 1]
        redemption, voucher, account = result.redemption, result.voucher, result.redemption.account
        redemption.refresh_from_db(), voucher.refresh_from_db(), account.refresh_from_db()
        if cancel[0] == "ok":
            assert till == ("refused", "voucher_cancelled")
            assert (redemption.status, voucher.status, account.balance) == ("cancelled", "cancelled", 100)
        else:
            assert (cancel, till) == (("refused", "voucher_already_redeemed"), ("ok", "redeemed"))
            assert (redemption.status, voucher.status, account.balance) == ("fulfilled", "redeemed", 0)
    assert LedgerEntry.objects.filter(kind="reverse").count() == Redemption.objects.filter(status="cancelled").count()
    _assert_ledger_sound()
