"""The rule sets and tier ladders a process keeps between earns (loyalty.selectors, under the program's
RulesVersion): an earn never uses rules or tiers older than those it could read, whoever changed them,
however (a service, a bulk update, another process), a rolled-back change leaves nothing behind, and a
transaction that writes rules does not hold up enrolment (the version is not on the program row)."""

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest
from django.db import connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from loyalty import services
from loyalty.models import EarnRule, Program, RulesVersion, Tier
from tests.factories import EarnRuleFactory, MemberFactory

pytestmark = [pytest.mark.django_db, pytest.mark.postgres]


def _version(program) -> int:
    """The program's rules version; no row is version 0."""
    return RulesVersion.objects.filter(program=program).values_list("version", flat=True).first() or 0


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
    before = _version(program)
    EarnRuleFactory(program=program, name="Paint bonus", product_categories=["PAINT"])
    version = _version(program)

    stale.name = "Blue Rewards Plus"
    stale.save()

    assert version > before
    assert _version(program) == version


def test_a_program_no_rule_write_touched_reads_as_version_zero_and_still_reuses_its_rules(program, enrol, buy):
    """Programs older than the version table have no row until their first rule or tier write."""
    RulesVersion.objects.filter(program=program).delete()
    account = enrol(program)
    buy(account, "10.00")

    with CaptureQueriesContext(connection) as queries:
        result = buy(account, "10.00")
    EarnRuleFactory(program=program, name="Paint bonus", rate=Decimal("2"), product_categories=["PAINT"])
    after_rule = buy(account, "10.00", lines=[{"category": "PAINT", "amount": "10.00"}])

    assert _points(result) == [10]
    assert [query["sql"] for query in queries if 'FROM "loyalty_earnrule"' in query["sql"]] == []
    assert _version(program) > 0
    assert _points(after_rule) == [10, 20]


def test_the_earn_reads_the_rules_version_in_the_account_lock_without_locking_it(program, enrol, buy):
    account = enrol(program)
    buy(account, "10.00")

    with CaptureQueriesContext(connection) as queries:
        buy(account, "10.00")

    lock = next(query["sql"] for query in queries if "FOR UPDATE" in query["sql"] and "loyalty_account" in query["sql"])
    assert 'LEFT OUTER JOIN "loyalty_rulesversion"' in lock
    assert lock.endswith('FOR UPDATE OF "loyalty_account"')
    assert not any('FROM "loyalty_rulesversion"' in query["sql"] for query in queries)


def test_a_program_deleted_with_its_rules_and_tiers_leaves_no_version_behind(program):
    """Its version row goes first (Django's cascade), then the rules and tiers, whose triggers write it again."""
    assert _version(program) > 0

    program.delete()
    connection.check_constraints()  # the deferred foreign keys, as at commit

    assert not RulesVersion.objects.exists()


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


@pytest.mark.django_db(transaction=True)
def test_a_transaction_writing_rules_holds_up_neither_enrolment_nor_the_program_row(program):
    """A campaign adds its rules and records up to a million members in one transaction: the rule writes
    lock the program's version row, never the program row that enrolment locks for its pilot cap."""
    member = MemberFactory()

    def meanwhile():
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL lock_timeout = '5s'")  # a wait fails the test instead of hanging
                Program.objects.select_for_update(nowait=True).get(pk=program.pk)
                program_saved = Program.objects.get(pk=program.pk)
                program_saved.save()
                return services.enrol(member=member, program=program)
        finally:
            connections.close_all()  # the thread's own connection

    with transaction.atomic():
        EarnRuleFactory(program=program, name="Campaign bonus", rate=Decimal("4"))
        EarnRule.objects.filter(program=program, name="Base earning").update(rate=Decimal("2"))
        with ThreadPoolExecutor(max_workers=1) as pool:
            account = pool.submit(meanwhile).result(timeout=30)
        held = _version(program)

    assert account.program_id == program.pk
    assert account.member_id == member.pk
    assert _version(program) == held > 0
