"""The rule sets and tier ladders a process keeps between earns (loyalty.selectors, under the program's
rules_version): an earn never uses rules or tiers older than those it could read, whoever changed them,
however (a service, a bulk update, another process), and a rolled-back change leaves nothing behind."""

import subprocess
import sys
from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from loyalty.models import EarnRule, Program, Tier
from tests.factories import EarnRuleFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _version(program) -> int:
    return Program.objects.values_list("rules_version", flat=True).get(pk=program.pk)


def _points(result) -> list[int]:
    return sorted(entry.points for entry in result.entries)


def test_an_earn_reuses_the_rules_and_tiers_it_read_while_nothing_changed(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")

    with CaptureQueriesContext(connection) as queries:
        result = buy(account, "10.00")

    assert _points(result) == [10]
    read = [query["sql"] for query in queries if 'FROM "loyalty_earnrule"' in query["sql"]]
    read += [query["sql"] for query in queries if 'FROM "loyalty_tier"' in query["sql"]]
    assert read == []


def test_a_rule_added_after_an_earn_counts_in_the_next_one(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")
    version = _version(program)

    EarnRuleFactory(program=program, name="Paint bonus", rate=Decimal("2"), product_categories=["PAINT"])
    result = buy(account, "10.00", lines=[{"category": "PAINT", "amount": "10.00"}])

    assert _version(program) > version
    assert _points(result) == [10, 20]


def test_a_rule_switched_off_by_a_bulk_update_no_longer_counts(program, enrol, buy):
    """Campaigns pause their rules with QuerySet.update(), which sends no signal: the database keeps the version."""
    bonus = EarnRuleFactory(program=program, name="Paint bonus", rate=Decimal("2"), product_categories=["PAINT"])
    account = enrol(program)
    paint = [{"category": "PAINT", "amount": "10.00"}]
    assert _points(buy(account, "10.00", lines=paint)) == [10, 20]

    EarnRule.objects.filter(pk=bonus.pk).update(is_active=False)

    assert _points(buy(account, "10.00", lines=paint)) == [10]


def test_a_tier_or_store_condition_added_to_a_rule_counts_at_once(program, enrol, buy, store):
    bonus = EarnRuleFactory(program=program, name="Paint bonus", rate=Decimal("2"), product_categories=["PAINT"])
    account = enrol(program)  # Bronze
    paint = [{"category": "PAINT", "amount": "10.00"}]
    assert _points(buy(account, "10.00", lines=paint)) == [10, 20]

    bonus.tiers.add(Tier.objects.get(program=program, name="Gold"))
    assert _points(buy(account, "10.00", lines=paint)) == [10]

    bonus.tiers.clear()
    bonus.stores.add(store)
    assert _points(buy(account, "10.00", lines=paint)) == [10]
    assert _points(buy(account, "10.00", lines=paint, store=store)) == [10, 20]


def test_a_threshold_lowered_after_an_earn_upgrades_at_the_next_one(program, enrol, buy):
    account = enrol(program)
    buy(account, "100.00")

    Tier.objects.filter(program=program, name="Silver").update(threshold=150)
    result = buy(account, "60.00")

    assert result.upgraded_to is not None and result.upgraded_to.name == "Silver"


def test_rules_read_in_a_transaction_that_rolled_back_are_never_taken_for_later_ones(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")
    with transaction.atomic():
        EarnRuleFactory(program=program, name="Rolled back", rate=Decimal("5"))
        assert _points(buy(account, "10.00")) == [10, 50]
        rolled_back = _version(program)
        transaction.set_rollback(True)

    EarnRuleFactory(program=program, name="Kept", rate=Decimal("3"))
    result = buy(account, "10.00")

    assert _version(program) != rolled_back
    assert _points(result) == [10, 30]


def test_saving_a_program_read_before_a_rule_changed_keeps_the_newer_version(program):
    stale = Program.objects.get(pk=program.pk)
    EarnRuleFactory(program=program, name="Paint bonus", product_categories=["PAINT"])
    version = _version(program)

    stale.name = "Blue Rewards Plus"
    stale.save()

    assert version > stale.rules_version
    assert _version(program) == version


@pytest.mark.django_db(transaction=True)
def test_a_rule_changed_by_another_process_counts_in_this_one_at_once(program, enrol, buy):
    account = enrol(program)
    assert _points(buy(account, "10.00")) == [10]
    database = connection.settings_dict
    change = (
        "import psycopg, sys\n"
        "with psycopg.connect(host=sys.argv[1], port=sys.argv[2], user=sys.argv[3], password=sys.argv[4],"
        " dbname=sys.argv[5], autocommit=True) as db:\n"
        "    db.execute(\"UPDATE loyalty_earnrule SET rate = 3 WHERE name = 'Base earning'\")\n"
    )

    subprocess.run(
        [
            sys.executable,
            "-c",
            change,
            database["HOST"] or "127.0.0.1",
            str(database["PORT"] or 5432),
            database["USER"] or "postgres",
            database["PASSWORD"] or "",
            database["NAME"],
        ],
        check=True,
        timeout=60,
    )

    assert _points(buy(account, "10.00")) == [30]
