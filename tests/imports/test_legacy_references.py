"""On PostgreSQL a legacy import turns off the per-row foreign-key triggers for its own writes and checks
every reference of the rows it wrote as a set instead (loyalty.legacy.loading.Stage.check_references),
locking what the triggers would have locked. These tests hold it to what the triggers guaranteed."""

import pytest
from django.db import IntegrityError, connection, transaction

from loyalty.core.exceptions import ApplicationError
from loyalty.legacy import loading
from loyalty.models import Account, LedgerEntry, Tier, TierChange
from members.models import ConsentRecord, Member, Store
from tests.factories import MemberFactory, StoreFactory
from tests.imports.conftest import csv_text
from tests.threads import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SET_AS_A_SET = "writes: references checked as a set"


def _row(number: str, store_code: str = "", tier: str = "Gold") -> str:
    return f"{number},Anna,Peeters,,{number.lower()}@example.com,,,,,,fr,,{store_code},2019-03-04,300,{tier},,,yes"


def _in_other_connection(work) -> dict:
    """work()'s result or error, from a transaction of its own."""
    thread, outcome = in_thread(work)
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


def _written() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Member, Account, LedgerEntry, TierChange, ConsentRecord))


def _replication_role() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW session_replication_role")
        return cursor.fetchone()[0]


def test_references_are_checked_as_a_set_and_the_triggers_are_back_after_the_import(legacy, program):
    store = StoreFactory(code="ST-REF")

    report = legacy(csv_text(_row("R-1", store.code), _row("R-2", store.code)))

    assert report.ok, report.first_errors
    assert report.members_created == 2 and report.balances_posted == 2
    assert SET_AS_A_SET in report.timings
    assert Member.objects.get(member_no="R-1").home_store == store
    assert _replication_role() == "origin"
    with pytest.raises(IntegrityError):  # the database refuses a dangling reference again
        Member.objects.filter(member_no="R-1").update(home_store_id=store.pk + 1000)


def test_inside_a_callers_transaction_the_triggers_are_back_once_the_import_has_written(legacy, program):
    store = StoreFactory(code="ST-OUTER")

    with pytest.raises(IntegrityError), transaction.atomic():
        report = legacy(csv_text(_row("R-1", store.code)))
        assert SET_AS_A_SET in report.timings
        assert _replication_role() == "origin"
        Member.objects.filter(member_no="R-1").update(home_store_id=store.pk + 1000)
        # the deferred check fires at the caller's commit

    assert not Member.objects.filter(member_no="R-1").exists()


@pytest.mark.parametrize("deleted", ["store", "tier"])
def test_a_store_or_tier_deleted_after_the_file_was_read_fails_the_import_and_writes_nothing(
    legacy, program, monkeypatch, deleted
):
    """Members name the store, accounts and tier changes the tier: each table's check catches its own."""
    kept, doomed_store = StoreFactory(code="ST-KEPT"), StoreFactory(code="ST-GONE")
    doomed = {
        "store": Store.objects.filter(pk=doomed_store.pk),
        "tier": Tier.objects.filter(program=program, name="Gold"),
    }
    before = _written()
    lock_referenced = loading.Stage.lock_referenced

    def delete_it_first(stage, **kwargs):  # after the rows were read and the plan made, before the import's locks
        outcome = _in_other_connection(lambda: doomed[deleted].delete())
        assert "error" not in outcome
        return lock_referenced(stage, **kwargs)

    monkeypatch.setattr(loading.Stage, "lock_referenced", delete_it_first)
    rows = [_row("R-1", kept.code, tier="Silver"), _row("R-2", doomed_store.code if deleted == "store" else kept.code)]

    with pytest.raises(ApplicationError) as refused:
        legacy(csv_text(*rows))

    assert refused.value.code == "reference_deleted"
    assert refused.value.extra["table"] == {"store": "members_member", "tier": "loyalty_account"}[deleted]
    assert "nothing was imported" in refused.value.message
    assert _written() == before
    assert _replication_role() == "origin"


@pytest.mark.parametrize("held", ["store", "tier", "member"])
def test_what_an_import_names_cannot_be_deleted_until_it_commits(legacy, program, monkeypatch, held):
    store = StoreFactory(code="ST-HELD")
    existing = MemberFactory(member_no="R-1")  # no account yet: the import opens one
    rows = {
        "store": Store.objects.filter(pk=store.pk),
        "tier": Tier.objects.filter(program=program, name="Gold"),
        "member": Member.objects.filter(pk=existing.pk),
    }
    check_references = loading.Stage.check_references
    attempts = []

    def delete_it_meanwhile(stage, marks):
        def delete():
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
            return rows[held].delete()

        attempts.append(_in_other_connection(delete))
        return check_references(stage, marks)

    monkeypatch.setattr(loading.Stage, "check_references", delete_it_meanwhile)

    # R-1's blank cells keep what the member has: the import opens an account but does not update the member.
    unchanged = ",".join(["R-1", *[""] * 13, "300", "Gold", "", "", ""])

    report = legacy(csv_text(unchanged, _row("R-2", store.code)))

    assert report.ok, report.first_errors
    assert (report.members_created, report.members_updated, report.accounts_opened) == (1, 0, 2)
    assert "lock timeout" in str(attempts[0]["error"])  # it waited on the import's KEY SHARE lock
    assert Account.objects.get(member=existing).tier.name == "Gold"
    assert Member.objects.get(member_no="R-2").home_store_id == store.pk


def test_without_the_right_to_turn_triggers_off_the_import_is_the_same(legacy, program, monkeypatch):
    store = StoreFactory(code="ST-SAME")
    monkeypatch.setattr(loading.Stage, "skip_row_triggers", lambda stage: False)

    report = legacy(csv_text(_row("R-1", store.code), _row("R-2", store.code)))

    assert report.ok, report.first_errors
    assert (report.members_created, report.accounts_opened, report.balances_posted) == (2, 2, 2)
    assert SET_AS_A_SET not in report.timings
    assert Account.objects.get(member__member_no="R-2").tier.name == "Gold"


def test_a_role_refused_the_setting_imports_with_the_triggers(legacy, program):
    """A role that may not set session_replication_role (no superuser, no GRANT SET ON PARAMETER) is
    refused inside a savepoint: the import's transaction goes on, with the triggers."""
    store = StoreFactory(code="ST-ROLE")
    role = f"plain_importer_{connection.settings_dict['NAME']}"  # roles are the server's: one per test database
    with connection.cursor() as cursor:
        cursor.execute(f"DROP ROLE IF EXISTS {role}")
        cursor.execute(f"CREATE ROLE {role}")
        cursor.execute(f"GRANT ALL ON SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {role}")
        cursor.execute(f"SET ROLE {role}")
    try:
        report = legacy(csv_text(_row("R-1", store.code)))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            cursor.execute(f"DROP OWNED BY {role}")
            cursor.execute(f"DROP ROLE {role}")

    assert report.ok, report.first_errors
    assert report.members_created == 1
    assert SET_AS_A_SET not in report.timings


def test_a_trigger_of_ours_on_a_written_table_keeps_the_triggers_on(legacy, program):
    """The setting would silence every trigger, not only the foreign keys' ones: with an INSERT trigger on
    members, the import keeps them all and the trigger runs for every member it writes."""
    store = StoreFactory(code="ST-TRIG")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE test_member_inserts (member_no text)")
        cursor.execute(
            "CREATE FUNCTION test_note_member() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN INSERT INTO test_member_inserts VALUES (NEW.member_no); RETURN NEW; END $$"
        )
        cursor.execute(
            "CREATE TRIGGER test_note_member AFTER INSERT ON members_member"
            " FOR EACH ROW EXECUTE FUNCTION test_note_member()"
        )
    try:
        report = legacy(csv_text(_row("R-1", store.code), _row("R-2", store.code)))
        with connection.cursor() as cursor:
            cursor.execute("SELECT member_no FROM test_member_inserts ORDER BY 1")
            noted = [number for (number,) in cursor.fetchall()]
    finally:
        with connection.cursor() as cursor:
            cursor.execute("DROP TRIGGER test_note_member ON members_member")
            cursor.execute("DROP FUNCTION test_note_member()")
            cursor.execute("DROP TABLE test_member_inserts")

    assert report.ok, report.first_errors
    assert SET_AS_A_SET not in report.timings
    assert noted == ["R-1", "R-2"]
