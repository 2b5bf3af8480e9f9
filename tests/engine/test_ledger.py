"""The account behaves like a bank account: lots, pending points, expiry, returns, refunds,
adjustments, idempotency, and refusals that write nothing."""

import datetime
import io
from decimal import Decimal

import pytest
import time_machine
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.db.models import Max, Sum
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from loyalty import services
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, LedgerAllocation, LedgerEntry, Program, Purchase
from tests.factories import AccountFactory, LedgerEntryFactory, ProgramFactory

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


def _local(*args) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime(*args))


def _balance(account) -> tuple[int, int]:
    account.refresh_from_db()
    return account.balance, account.pending


def _counts() -> tuple[int, int, int]:
    return LedgerEntry.objects.count(), Purchase.objects.count(), LedgerAllocation.objects.count()


# --- spending ---------------------------------------------------------------------------------


def test_spending_consumes_the_soonest_expiring_lots_first(program, enrol, buy):
    Program.objects.filter(pk=program.pk).update(expiry_policy="months_after_earn", expiry_months=12)
    program.refresh_from_db()
    account = enrol(program)
    now = timezone.now()
    late = buy(account, "50.00", occurred_at=now - 10 * DAY).entries[0]
    early = buy(account, "30.00", occurred_at=now - 40 * DAY).entries[0]
    never = services.adjust(account=account, points=20, reason="Goodwill", created_by=None)
    LedgerEntry.objects.filter(pk=never.pk).update(expires_at=None)

    services.spend(account=account, points=40, reason="Voucher EUR 4", idempotency_key="s1")

    early.refresh_from_db(), late.refresh_from_db(), never.refresh_from_db()
    assert (early.remaining, late.remaining, never.remaining) == (0, 40, 20)
    assert _balance(account) == (60, 0)


def test_spending_more_than_the_balance_is_refused_and_writes_nothing(program, enrol, buy):
    account = enrol(program)
    buy(account, "30.00")
    before = _counts()

    with pytest.raises(ApplicationError, match="Not enough points: 31 needed, 30 available") as error:
        services.spend(account=account, points=31, reason="Too much", idempotency_key="s1")

    assert error.value.code == "insufficient_points"
    assert _counts() == before
    assert _balance(account) == (30, 0)


@pytest.mark.parametrize("points", [0, -5, 2.5, True, "10"])
def test_spending_needs_a_positive_whole_number(program, enrol, points):
    with pytest.raises(ApplicationError, match="whole number above zero"):
        services.spend(account=enrol(program), points=points, reason="x", idempotency_key="s1")


def test_a_retried_spend_returns_the_first_entry_and_a_reused_key_is_refused(program, enrol, buy):
    account = enrol(program)
    buy(account, "100.00")

    first = services.spend(account=account, points=40, reason="Voucher", idempotency_key="till-7")
    retry = services.spend(account=account, points=40, reason="Voucher", idempotency_key="till-7")

    assert retry.pk == first.pk
    assert _balance(account) == (60, 0)
    with pytest.raises(ApplicationError, match="already used for a different request") as error:
        services.spend(account=account, points=41, reason="Voucher", idempotency_key="till-7")
    assert error.value.code == "idempotency_key_reused"


# --- purchases: idempotency and bad input --------------------------------------------------------


def test_a_retried_purchase_returns_the_first_result_without_earning_twice(program, enrol, buy):
    account = enrol(program)
    at = timezone.now()

    first = buy(account, "25.00", receipt_number="R1", idempotency_key="k1", occurred_at=at)
    retry = buy(account, "25.00", receipt_number="R1", idempotency_key="k1", occurred_at=at)

    assert retry.replayed and not first.replayed
    assert [e.pk for e in retry.entries] == [e.pk for e in first.entries]
    assert _balance(account) == (25, 0)


def test_the_same_key_with_a_different_purchase_is_refused(program, enrol, buy):
    account = enrol(program)
    buy(account, "25.00", receipt_number="R1", idempotency_key="k1")

    with pytest.raises(ApplicationError) as error:
        buy(account, "26.00", receipt_number="R1", idempotency_key="k1")

    assert error.value.code == "idempotency_key_reused"


def test_a_receipt_posted_twice_by_one_store_earns_once(program, enrol, buy, store):
    account = enrol(program)
    buy(account, "25.00", receipt_number="R1", store=store)

    with pytest.raises(ApplicationError, match="already posted by this store") as error:
        buy(account, "25.00", receipt_number="R1", store=store)

    assert error.value.code == "duplicate_receipt"
    assert _balance(account) == (25, 0)


def test_a_receipt_posted_twice_without_a_store_earns_once(program, enrol, buy):
    """No unique key covers a receipt without a store; the engine looks before it inserts."""
    account = enrol(program)
    buy(account, "25.00", receipt_number="R1")

    with pytest.raises(ApplicationError, match="already posted by this store") as error:
        buy(account, "25.00", receipt_number="R1")

    assert error.value.code == "duplicate_receipt"
    assert _balance(account) == (25, 0)


@pytest.mark.parametrize("store_given", [True, False])
def test_a_retried_purchase_gets_its_first_result_even_after_the_member_was_suspended(
    program, enrol, buy, store, store_given
):
    """A retry is answered from the purchase recorded under its key before any refusal: the first result,
    or the reused key's refusal; a new key gets the refusal that holds now."""
    account = enrol(program)
    at = timezone.now()
    place = {"store": store} if store_given else {}
    first = buy(account, "25.00", receipt_number="R1", idempotency_key="k1", occurred_at=at, **place)
    account.member.status = "suspended"
    account.member.save()

    retry = buy(account, "25.00", receipt_number="R1", idempotency_key="k1", occurred_at=at, **place)
    with pytest.raises(ApplicationError) as reused:
        buy(account, "26.00", receipt_number="R1", idempotency_key="k1", occurred_at=at, **place)
    with pytest.raises(ApplicationError) as refused:
        buy(account, "25.00", receipt_number="R2", idempotency_key="k2", occurred_at=at, **place)

    assert retry.replayed
    assert [e.pk for e in retry.entries] == [e.pk for e in first.entries]
    assert reused.value.code == "idempotency_key_reused"
    assert refused.value.code == "member_not_active"
    assert Purchase.objects.count() == 1


def test_an_earn_can_find_and_lock_the_account_by_the_tills_card_number(program, enrol, store):
    account = enrol(program)
    program.stores.add(store)

    with CaptureQueriesContext(connection) as queries:
        result = services.earn_for_purchase(
            member_no=f" {account.member.member_no} ",
            store=store,
            amount="30.00",
            currency="EUR",
            receipt_number="R1",
            occurred_at=timezone.now(),
            idempotency_key="k1",
        )

    assert result.account.pk == account.pk
    assert _balance(account) == (30, 0)
    locks = [q["sql"] for q in queries if "FOR UPDATE" in q["sql"]]
    assert len(locks) == 1 and "member_no" in locks[0]  # the lookup is the lock
    with pytest.raises(ApplicationError) as error:
        services.earn_for_purchase(
            member_no="8000000000",
            store=store,
            amount="30.00",
            currency="EUR",
            receipt_number="R2",
            occurred_at=timezone.now(),
            idempotency_key="k2",
        )
    assert error.value.code == "member_not_found"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"amount": "-5"}, "more than zero"),
        ({"amount": "0"}, "more than zero"),
        ({"amount": "abc"}, "must be a number"),
        ({"amount": "NaN"}, "more than zero"),
        ({"amount": "5000000"}, "more than the 1000000"),
        ({"amount": "10.001"}, "at most two decimals"),
        ({"currency": "USD"}, "counts in EUR"),
        ({"receipt_number": ""}, "receipt number"),
        ({"occurred_at": timezone.now() + datetime.timedelta(days=2)}, "in the future"),
        ({"occurred_at": timezone.now() - datetime.timedelta(days=400)}, "more than a year old"),
        ({"idempotency_key": ""}, "idempotency key"),
        ({"lines": [{"category": "PAINT"}]}, "category and an amount"),
        ({"lines": [{"category": "PAINT", "amount": "99"}]}, "add up to more than the amount"),
    ],
)
def test_bad_purchases_are_refused_with_a_clear_message_and_nothing_written(program, enrol, buy, kwargs, message):
    account = enrol(program)
    before = _counts()
    kwargs.setdefault("amount", "10.00")

    with pytest.raises(ApplicationError, match=message):
        buy(account, **kwargs)

    assert _counts() == before
    assert _balance(account) == (0, 0)


def test_a_program_that_is_not_running_awards_nothing(program, enrol, buy):
    account = enrol(program)
    Program.objects.filter(pk=program.pk).update(status=Program.Status.CLOSED)

    with pytest.raises(ApplicationError, match="not running"):
        buy(account, "10.00")


def test_unknown_activity_types_are_refused(program, enrol):
    with pytest.raises(ApplicationError, match="Unknown activity type") as error:
        services.earn_for_activity(
            account=enrol(program), activity_type="karaoke", occurred_at=timezone.now(), idempotency_key="a1"
        )
    assert error.value.code == "unknown_activity_type"


# --- pending points -------------------------------------------------------------------------------


def test_purchase_points_stay_pending_through_the_return_window_then_become_available(program, enrol, buy):
    Program.objects.filter(pk=program.pk).update(pending_days=14)
    program.refresh_from_db()
    account = enrol(program)
    bought_at = timezone.now()
    buy(account, "80.00", occurred_at=bought_at)
    assert _balance(account) == (0, 80)

    assert services.release_pending(program=program, as_of=bought_at + 13 * DAY).rows == 0
    assert _balance(account) == (0, 80)
    released = services.release_pending(program=program, as_of=bought_at + 14 * DAY)

    assert (released.rows, released.points) == (1, 80)
    assert _balance(account) == (80, 0)
    assert services.release_pending(program=program, as_of=bought_at + 15 * DAY).rows == 0  # idempotent


def test_pending_points_cannot_be_spent(program, enrol, buy):
    Program.objects.filter(pk=program.pk).update(pending_days=14)
    program.refresh_from_db()
    account = enrol(program)
    buy(account, "80.00")

    with pytest.raises(ApplicationError, match="0 available"):
        services.spend(account=account, points=10, reason="x", idempotency_key="s1")


# --- expiry ---------------------------------------------------------------------------------------


def _expiring_program(program, policy, months):
    Program.objects.filter(pk=program.pk).update(expiry_policy=policy, expiry_months=months)
    program.refresh_from_db()
    return program


def test_points_expire_n_months_after_they_were_earned(program, enrol, buy):
    _expiring_program(program, "months_after_earn", 12)
    account = enrol(program)
    earned_at = _local(2026, 1, 15, 10, 0)
    with time_machine.travel(earned_at):
        buy(account, "100.00", occurred_at=earned_at)
        services.spend(account=account, points=30, reason="Voucher", idempotency_key="s1")

    assert services.expire_due(program=program, as_of=_local(2027, 1, 15, 9, 59)).rows == 0
    result = services.expire_due(program=program, as_of=_local(2027, 1, 15, 10, 0))

    assert (result.rows, result.points) == (1, 70)
    account.refresh_from_db()
    assert (account.balance, account.lifetime_expired) == (0, 70)
    expired = account.entries.get(kind="expire")
    assert expired.points == -70 and expired.reverses.kind == "earn"
    assert "Points expired" in expired.reason
    assert services.expire_due(program=program, as_of=_local(2027, 2, 1)).rows == 0  # nothing twice


def test_a_refund_to_a_lot_that_already_lapsed_lapses_again_at_the_next_run(program, enrol, buy):
    _expiring_program(program, "months_after_earn", 1)
    account = enrol(program)
    lot = buy(account, "50.00", occurred_at=timezone.now() - 40 * DAY).entries[0]
    redemption = services.spend(account=account, points=30, reason="Voucher", idempotency_key="s1")
    services.expire_due(program=program)  # the 20 unspent points lapse
    services.refund(entry=redemption, reason="Reward cancelled")  # 30 go back to the lapsed lot

    again = services.expire_due(program=program)

    assert (again.rows, again.points) == (1, 30)
    assert _balance(account) == (0, 0)
    assert lot.consumed_by.get().points == 30  # the redemption
    assert sorted(lot.reversals.filter(kind="expire").values_list("points", flat=True)) == [-30, -20]


def test_points_expire_at_the_end_of_the_nth_month(program, enrol, buy):
    _expiring_program(program, "end_of_nth_month", 2)
    account = enrol(program)
    earned_at = _local(2026, 1, 15, 10, 0)
    with time_machine.travel(earned_at):
        lot = buy(account, "10.00", occurred_at=earned_at).entries[0]

    assert timezone.localtime(lot.expires_at) == _local(2026, 4, 1, 0, 0)
    assert services.expire_due(program=program, as_of=_local(2026, 3, 31, 23, 59, 59)).rows == 0
    assert services.expire_due(program=program, as_of=_local(2026, 4, 1, 0, 0)).rows == 1


def test_all_points_expire_after_n_months_without_activity(program, enrol, buy):
    _expiring_program(program, "inactivity", 6)
    with time_machine.travel(_local(2026, 1, 10, 12, 0)):
        active, idle = enrol(program), enrol(program)
        buy(idle, "40.00")
        buy(active, "40.00")
    with time_machine.travel(_local(2026, 6, 1, 12, 0)):
        buy(active, "5.00")

    result = services.expire_due(program=program, as_of=_local(2026, 7, 11, 12, 0))

    assert _balance(idle) == (0, 0)
    assert _balance(active) == (45, 0)
    assert result.points == 40


def test_points_that_never_expire_stay(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")

    assert services.expire_due(program=program, as_of=timezone.now() + datetime.timedelta(days=3650)).rows == 0
    assert _balance(account) == (10, 0)


def test_an_expiry_chunk_issues_as_many_queries_for_many_lapsed_lots_as_for_one(program, enrol, buy):
    _expiring_program(program, "months_after_earn", 1)
    earned_at = timezone.now() - 40 * DAY
    one = enrol(program)
    buy(one, "10.00", occurred_at=earned_at)
    many = [enrol(program) for _n in range(3)]
    for account in many:
        buy(account, "10.00", occurred_at=earned_at)
        buy(account, "20.00", occurred_at=earned_at - DAY)
    now = timezone.now()

    with CaptureQueriesContext(connection) as one_lot:
        first = services.expire_due_chunk(program=program, low=one.pk, high=one.pk + 1, as_of=now)
    with CaptureQueriesContext(connection) as six_lots:
        rest = services.expire_due_chunk(program=program, low=many[0].pk, high=many[-1].pk + 1, as_of=now)

    assert (first.rows, rest.rows) == (1, 6)
    assert len(six_lots) == len(one_lot)


def test_expiry_texts_are_in_each_members_language(program, enrol, buy):
    _expiring_program(program, "months_after_earn", 1)
    en, nl = enrol(program, language="en"), enrol(program, language="nl")
    at = timezone.now() - 40 * DAY
    buy(en, "10.00", occurred_at=at)
    buy(nl, "10.00", occurred_at=at)

    services.expire_due(program=program)

    assert en.entries.get(kind="expire").reason.startswith("Points expired")
    assert nl.entries.get(kind="expire").reason.startswith("Punten vervallen")


# --- returns ----------------------------------------------------------------------------------------


def test_a_return_reverses_points_in_proportion(program, enrol, buy):
    account = enrol(program)
    purchase = buy(account, "100.00").purchase

    result = services.reverse_purchase(purchase=purchase, amount="25.00", idempotency_key="ret-1")

    assert [entry.points for entry in result.entries] == [-25]
    assert result.purchase_return.points_shortfall == 0
    assert _balance(account) == (75, 0)


def test_partial_returns_add_up_exactly_to_the_whole_purchase(program, enrol, buy):
    program.earn_rules.update(rate=Decimal("1.5"))
    account = enrol(program)
    purchase = buy(account, "10.00").purchase  # 15 points
    for n, amount in enumerate(["3.33", "3.33", "3.34"]):
        services.reverse_purchase(purchase=purchase, amount=amount, idempotency_key=f"ret-{n}")

    assert _balance(account) == (0, 0)
    with pytest.raises(ApplicationError, match="can still be returned") as error:
        services.reverse_purchase(purchase=purchase, amount="0.01", idempotency_key="ret-x")
    assert error.value.code == "return_exceeds_purchase"


def test_a_return_of_spent_points_takes_other_points_down_to_zero_and_records_the_shortfall(program, enrol, buy):
    account = enrol(program)
    purchase = buy(account, "100.00").purchase
    buy(account, "30.00")
    services.spend(account=account, points=120, reason="Big voucher", idempotency_key="s1")  # 10 left

    result = services.reverse_purchase(purchase=purchase, amount="100.00", idempotency_key="ret-1")

    assert result.entries[0].points == -10
    assert result.purchase_return.points_shortfall == 90
    assert "90 pts were already spent" in result.entries[0].reason
    assert _balance(account) == (0, 0)


def test_a_return_during_the_return_window_takes_back_pending_points(program, enrol, buy):
    Program.objects.filter(pk=program.pk).update(pending_days=14)
    program.refresh_from_db()
    account = enrol(program)
    bought_at = timezone.now()
    purchase = buy(account, "60.00", occurred_at=bought_at).purchase

    services.reverse_purchase(purchase=purchase, amount="20.00", idempotency_key="ret-1")
    assert _balance(account) == (0, 40)
    services.release_pending(program=program, as_of=bought_at + 15 * DAY)

    assert _balance(account) == (40, 0)


def test_a_retried_return_is_applied_once(program, enrol, buy):
    account = enrol(program)
    purchase = buy(account, "100.00").purchase

    services.reverse_purchase(purchase=purchase, amount="50.00", idempotency_key="ret-1")
    retry = services.reverse_purchase(purchase=purchase, amount="50.00", idempotency_key="ret-1")

    assert retry.replayed
    assert _balance(account) == (50, 0)
    with pytest.raises(ApplicationError) as error:
        services.reverse_purchase(purchase=purchase, amount="40.00", idempotency_key="ret-1")
    assert error.value.code == "idempotency_key_reused"


def test_a_return_takes_back_qualifying_points_too(program, enrol, buy):
    account = enrol(program)
    purchase = buy(account, "1200.00").purchase
    account.refresh_from_db()
    assert account.tier.name == "Silver"

    services.reverse_purchase(purchase=purchase, amount="1200.00", idempotency_key="ret-1")

    assert account.entries.aggregate(q=Sum("qualifying_points"))["q"] == 0
    account.refresh_from_db()
    assert account.tier.name == "Silver"  # downgrades wait for the evaluation


# --- refunds and adjustments ---------------------------------------------------------------------------


def test_a_refund_gives_points_back_to_their_lots_once(program, enrol, buy):
    account = enrol(program)
    lot = buy(account, "100.00").entries[0]
    redemption = services.spend(account=account, points=60, reason="Voucher", idempotency_key="s1")

    first = services.refund(entry=redemption, reason="Reward cancelled")
    second = services.refund(entry=redemption, reason="Reward cancelled")

    assert first.pk == second.pk
    lot.refresh_from_db()
    assert lot.remaining == 100
    assert _balance(account) == (100, 0)


def test_an_adjustment_needs_a_reason_and_never_makes_the_balance_negative(program, enrol, buy, manager_user):
    account = enrol(program)
    buy(account, "10.00")
    before = _counts()

    with pytest.raises(ApplicationError, match="Give a reason"):
        services.adjust(account=account, points=5, reason="  ", created_by=manager_user)
    with pytest.raises(ApplicationError, match="below zero"):
        services.adjust(account=account, points=-11, reason="Correction", created_by=manager_user)
    with pytest.raises(ApplicationError, match="other than zero"):
        services.adjust(account=account, points=0, reason="Correction", created_by=manager_user)

    assert _counts() == before
    entry = services.adjust(account=account, points=-10, reason="Duplicate receipt", created_by=manager_user)
    assert entry.created_by == manager_user and entry.reason == "Duplicate receipt"
    assert _balance(account) == (0, 0)


# --- check_ledger -------------------------------------------------------------------------------------------


def test_check_ledger_passes_on_sound_books(program, enrol, buy):
    buy(enrol(program), "10.00")
    out = io.StringIO()

    call_command("check_ledger", stdout=out)

    assert "every invariant holds" in out.getvalue()


@pytest.mark.ledger_broken_on_purpose
def test_check_ledger_exits_1_and_names_each_breach(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")
    LedgerEntryFactory(account=account, points=5, remaining=5)  # posted around the engine

    err = io.StringIO()
    with pytest.raises(CommandError) as error:
        call_command("check_ledger", stderr=err)

    assert error.value.returncode == 1  # what `manage.py check_ledger` exits with
    assert "balance = sum of available entries" in err.getvalue()
    assert "balance = sum of remaining over live lots" in err.getvalue()


def test_the_ledger_refuses_deletes_in_the_database(program, enrol):
    from django.db import InternalError, ProgrammingError

    account = enrol(program)
    services.adjust(account=account, points=10, reason="Goodwill", created_by=None, idempotency_key="adj-del")
    with pytest.raises((InternalError, ProgrammingError), match="append-only"), transaction.atomic():
        LedgerEntry.objects.filter(account=account).delete()
    assert account.entries.count() == 1


def _keys_checked_now() -> None:
    """The ledger's foreign keys are checked at commit, which a test's transaction never reaches: check at once."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")


@pytest.mark.postgres
def test_the_database_refuses_an_entry_in_another_program_than_its_accounts(program, enrol):
    account = enrol(program)
    other = ProgramFactory(name="Green Rewards", slug="green")

    with pytest.raises(IntegrityError, match="ledger_account_program_fk"), transaction.atomic():
        _keys_checked_now()
        LedgerEntryFactory(account=account, program=other)

    assert not LedgerEntry.objects.filter(program=other).exists()


@pytest.mark.postgres
def test_the_database_refuses_an_entry_for_an_account_that_does_not_exist(program):
    missing = (Account.objects.aggregate(top=Max("pk"))["top"] or 0) + 1000

    with pytest.raises(IntegrityError, match="ledger_account_program_fk"), transaction.atomic():
        _keys_checked_now()
        LedgerEntryFactory(account=Account(pk=missing, program=program))

    assert not LedgerEntry.objects.filter(account_id=missing).exists()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "statement",
    [
        "DELETE FROM loyalty_account WHERE id = %(account)s",
        "UPDATE loyalty_account SET program_id = %(other)s WHERE id = %(account)s",
    ],
    ids=["deleted", "moved to another program"],
)
def test_the_database_refuses_to_take_an_account_with_entries_away_from_them(statement):
    entry = LedgerEntryFactory(account=AccountFactory(balance=10), points=10)  # nothing else points at the account
    other = ProgramFactory(name="Green Rewards", slug="green")

    with pytest.raises(IntegrityError, match="ledger_account_program_fk"), transaction.atomic():
        _keys_checked_now()
        with connection.cursor() as cursor:
            cursor.execute(statement, {"account": entry.account_id, "other": other.pk})

    assert Account.objects.filter(pk=entry.account_id, program=entry.program_id).exists()


@pytest.mark.ledger_broken_on_purpose
def test_check_ledger_names_a_reversal_that_points_outside_its_account(program, enrol, buy):
    mine, theirs = enrol(program), enrol(program)
    lot = buy(theirs, "10.00").entries[0]
    buy(mine, "10.00")
    LedgerEntry.objects.filter(account=mine).update(reverses=lot)  # around the engine

    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("check_ledger", stderr=err)

    assert "a reversal names an entry of its own account" in err.getvalue()
