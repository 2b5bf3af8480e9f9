"""loyalty.core.rows: the money paths' statements written once read and write what the ORM would."""

import datetime
import threading
import time
from decimal import Decimal

import pytest
from django.db import DatabaseError, connection, transaction
from django.db.models import Model
from django.utils import timezone

from loyalty import selectors, services
from loyalty.core import rows
from loyalty.models import Account, Program, RulesVersion, TierChange
from members.models import APIRequest
from tests.conftest import tier
from tests.factories import EarnRuleFactory
from tests.threads import in_thread

pytestmark = pytest.mark.django_db


def _fields(instance: Model) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in type(instance)._meta.concrete_fields}


@pytest.fixture
def till_account(program, store, enrol):
    program.stores.add(store)
    EarnRuleFactory(program=program, name="Paint x2", rate=Decimal("2"), product_categories=["PAINT"])
    return enrol(program, phone="+32470123456", member_no="8000000011", language="fr")


def test_the_tills_locked_read_gives_every_field_the_orm_gives_with_the_same_types(
    till_account, store, django_assert_num_queries
):
    with django_assert_num_queries(1):
        (account,) = selectors.store_accounts_by_card(store=store, member_no="8000 0000 11", lock=True)
    expected = selectors.locked(Account.objects.filter(pk=till_account.pk)).get()

    for read, orm in [
        (account, expected),
        (account.program, expected.program),
        (account.member, expected.member),
        (account.tier, expected.tier),
        (account.program.rules_version, expected.program.rules_version),
    ]:
        assert _fields(read) == _fields(orm)
        assert {k: type(v) for k, v in _fields(read).items()} == {k: type(v) for k, v in _fields(orm).items()}
        assert read._state.adding is False and read._state.db == "default"
    assert str(account.member.phone) == "+32470123456"
    assert account.program.rules_version.version > 0


def test_a_program_without_a_rules_version_row_reads_as_none_without_another_query(
    till_account, store, django_assert_num_queries
):
    RulesVersion.objects.filter(program=till_account.program).delete()
    Account.objects.filter(pk=till_account.pk).update(tier=None)

    with django_assert_num_queries(1):
        (account,) = selectors.store_accounts_by_card(store=store, member_no="8000000011", lock=True)
        assert getattr(account.program, "rules_version", None) is None
        assert account.tier is None


def test_the_tills_locked_read_refuses_anonymised_members_and_other_stores_programs(till_account, store, program):
    other = Program.objects.create(name="Elsewhere", slug="elsewhere", currency="EUR")
    assert (
        selectors.store_accounts_by_card(store=store, member_no="8000000011", program_slug="elsewhere", lock=True) == []
    )
    assert other.accounts.count() == 0
    type(till_account.member).objects.filter(pk=till_account.member_id).update(status="anonymised")
    assert selectors.store_accounts_by_card(store=store, member_no="8000000011", lock=True) == []


def test_insert_writes_every_row_in_one_statement_and_gives_each_its_own_pk(till_account, django_assert_num_queries):
    bronze, silver, gold = (tier(till_account.program, name) for name in ("Bronze", "Silver", "Gold"))
    at = timezone.now() - datetime.timedelta(days=1)
    changes = [
        TierChange(account=till_account, from_tier=bronze, to_tier=silver, reason="upgrade", changed_at=at),
        TierChange(account=till_account, from_tier=silver, to_tier=gold, reason="upgrade", changed_at=at),
        TierChange(account=till_account, from_tier=gold, to_tier=bronze, reason="downgrade", changed_at=at),
    ]

    with django_assert_num_queries(1):
        rows.insert(changes)

    assert len({change.pk for change in changes}) == 3
    for change in changes:
        stored = TierChange.objects.get(pk=change.pk)
        assert (stored.from_tier_id, stored.to_tier_id, stored.reason) == (
            change.from_tier_id,
            change.to_tier_id,
            change.reason,
        )
        assert change._state.adding is False


def test_insert_unless_taken_yields_to_a_row_holding_its_unique_key(store):
    first = APIRequest(store=store, key="same-key", fingerprint="a", status_code=0, body="")
    assert rows.insert_unless_taken(first) is True
    assert first.pk is not None and first.created_at is not None  # pre_save ran: auto_now_add

    second = APIRequest(store=store, key="same-key", fingerprint="b", status_code=0, body="")
    assert rows.insert_unless_taken(second) is False
    assert second.pk is None
    assert list(APIRequest.objects.filter(key="same-key").values_list("fingerprint", flat=True)) == ["a"]


def test_update_writes_the_named_fields_and_nothing_else(till_account):
    account = Account.objects.get(pk=till_account.pk)
    moment = timezone.now() - datetime.timedelta(days=3)
    account.last_activity_at, account.balance = moment, account.balance + 5

    rows.update(account, ("last_activity_at",))

    stored = Account.objects.get(pk=account.pk)
    assert stored.last_activity_at == moment
    assert stored.balance == till_account.balance


def _wait_until_a_backend_waits_on_a_lock() -> None:
    with connection.cursor() as cursor:
        for _attempt in range(200):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the reader never waited on the account's lock")


def _read_locked_while_another_changes_it(change, read_locked):
    """Run `change()` in a transaction held open, then `read_locked()` in another connection, which waits
    on the row lock; commit the change once it waits. Returns what `read_locked()` returned."""
    changed, release = threading.Event(), threading.Event()

    def hold_change():
        with transaction.atomic():
            change()
            changed.set()
            release.wait(10)

    def read():
        with transaction.atomic():
            return read_locked()

    changer, _ = in_thread(hold_change)
    assert changed.wait(10)
    reader, outcome = in_thread(read)
    _wait_until_a_backend_waits_on_a_lock()
    release.set()
    changer.join(10)
    reader.join(10)
    assert "error" not in outcome, outcome.get("error")
    return outcome["result"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lock", ["the till's lookup", "account_lock"])
def test_a_lock_that_waited_for_a_tier_change_reads_the_new_tier_whole(till_account, store, lock):
    """PostgreSQL re-checks a row it waited for against the rows it had joined: the tier the account had
    no longer matches, so an outer join gives no tier at all (the ORM's select_related too). An earn then
    lost its tier multiplier, or crashed on a tier with no fields."""
    silver = tier(till_account.program, "Silver")

    def read_locked():
        if lock == "account_lock":
            return services.account_lock(till_account)
        (account,) = selectors.store_accounts_by_card(store=store, member_no="8000000011", lock=True)
        return account

    account = _read_locked_while_another_changes_it(
        lambda: Account.objects.filter(pk=till_account.pk).update(tier=silver), read_locked
    )
    assert account.tier_id == silver.pk
    assert (account.tier.pk, account.tier.name, account.tier.earn_multiplier) == (silver.pk, "Silver", Decimal("1.25"))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redemption_whose_lock_waited_for_a_new_minimum_tier_reads_that_tier(till_account):
    """The same re-check on the reward's lock: a minimum tier changed meanwhile came back empty, and the
    eligibility check then failed on it (a 500 at the till or the desk)."""
    from rewards import services as reward_services
    from rewards.models import Reward
    from tests.factories import RewardFactory

    gold = tier(till_account.program, "Gold")
    reward = RewardFactory(program=till_account.program, min_tier=tier(till_account.program, "Silver"))

    locked = _read_locked_while_another_changes_it(
        lambda: Reward.objects.filter(pk=reward.pk).update(min_tier=gold),
        lambda: reward_services._lock_reward(reward),
    )
    assert (locked.min_tier_id, locked.min_tier.pk, locked.min_tier.name) == (gold.pk, gold.pk, "Gold")


def test_update_refuses_a_row_that_is_gone_as_save_with_update_fields_did(till_account, store):
    gone = APIRequest.objects.create(store=store, key="gone", fingerprint="a", status_code=0, body="")
    APIRequest.objects.filter(pk=gone.pk).delete()
    gone.status_code, gone.body = 201, "{}"

    with pytest.raises(DatabaseError, match="was not updated"):
        rows.update(gone, ("status_code", "body"))
    assert not APIRequest.objects.filter(pk=gone.pk).exists()
