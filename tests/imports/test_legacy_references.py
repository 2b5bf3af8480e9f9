"""On PostgreSQL a legacy import turns off the per-row foreign-key triggers for its own transaction and
checks every reference of the rows it wrote as a set instead (loyalty.legacy.loading.Stage.check_references),
locking what the triggers would have locked. These tests hold it to what the triggers guaranteed."""

import pytest
from django.db import IntegrityError, connection

from loyalty.legacy import loading
from loyalty.models import Account, LedgerEntry, TierChange
from members.models import ConsentRecord, Member, Store
from tests.factories import StoreFactory
from tests.imports.conftest import csv_text
from tests.threads import in_thread

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _row(number: str, store_code: str) -> str:
    return f"{number},Anna,Peeters,,{number.lower()}@example.com,,,,,,fr,,{store_code},2019-03-04,300,Gold,,,yes"


def _in_other_connection(work) -> dict:
    """work()'s result or error, from a transaction of its own."""
    thread, outcome = in_thread(work)
    thread.join(timeout=30)
    assert not thread.is_alive()
    return outcome


def _written() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Member, Account, LedgerEntry, TierChange, ConsentRecord))


def test_references_are_checked_as_a_set_and_the_triggers_are_back_after_the_import(legacy, program):
    store = StoreFactory(code="ST-REF")

    report = legacy(csv_text(_row("R-1", store.code), _row("R-2", store.code)))

    assert report.ok, report.first_errors
    assert report.members_created == 2 and report.balances_posted == 2
    assert "writes: references checked as a set" in report.timings
    assert Member.objects.get(member_no="R-1").home_store == store
    with connection.cursor() as cursor:  # SET LOCAL: the session's writes after the import fire them again
        cursor.execute("SHOW session_replication_role")
        assert cursor.fetchone()[0] == "origin"
    with pytest.raises(IntegrityError):  # and the database refuses a dangling reference again
        Member.objects.filter(member_no="R-1").update(home_store_id=store.pk + 1000)


def test_a_store_deleted_while_the_file_was_read_fails_the_import_and_writes_nothing(legacy, program, monkeypatch):
    kept, doomed = StoreFactory(code="ST-KEPT"), StoreFactory(code="ST-GONE")
    before = _written()
    lock_referenced = loading.Stage.lock_referenced

    def delete_the_store_first(stage, **kwargs):  # after the rows were read, before the import's locks
        outcome = _in_other_connection(lambda: Store.objects.filter(pk=doomed.pk).delete())
        assert "error" not in outcome
        return lock_referenced(stage, **kwargs)

    monkeypatch.setattr(loading.Stage, "lock_referenced", delete_the_store_first)

    with pytest.raises(IntegrityError, match="members_member row"):
        legacy(csv_text(_row("R-1", kept.code), _row("R-2", doomed.code)))

    assert _written() == before
    assert not Store.objects.filter(pk=doomed.pk).exists()


def test_the_stores_an_import_names_cannot_be_deleted_until_it_commits(legacy, program, monkeypatch):
    store = StoreFactory(code="ST-HELD")
    check_references = loading.Stage.check_references
    attempts = []

    def delete_the_store_meanwhile(stage, marks):
        def delete():
            with connection.cursor() as cursor:
                cursor.execute("SET lock_timeout = '300ms'")
            return Store.objects.filter(pk=store.pk).delete()

        attempts.append(_in_other_connection(delete))
        return check_references(stage, marks)

    monkeypatch.setattr(loading.Stage, "check_references", delete_the_store_meanwhile)

    report = legacy(csv_text(_row("R-1", store.code)))

    assert report.ok, report.first_errors
    assert "lock timeout" in str(attempts[0]["error"])  # it waited on the import's KEY SHARE lock
    assert Member.objects.get(member_no="R-1").home_store_id == store.pk


def test_without_the_right_to_turn_triggers_off_the_import_is_the_same(legacy, program, monkeypatch):
    store = StoreFactory(code="ST-SAME")
    monkeypatch.setattr(loading.Stage, "skip_row_triggers", lambda stage: False)

    report = legacy(csv_text(_row("R-1", store.code), _row("R-2", store.code)))

    assert report.ok, report.first_errors
    assert (report.members_created, report.accounts_opened, report.balances_posted) == (2, 2, 2)
    assert "writes: references checked as a set" not in report.timings
    assert Account.objects.get(member__member_no="R-2").tier.name == "Gold"


def test_a_role_refused_the_setting_imports_with_the_triggers(legacy, program):
    """A role that may not set session_replication_role (no superuser, no GRANT SET ON PARAMETER) is
    refused inside a savepoint: the import's transaction goes on, with the triggers."""
    store = StoreFactory(code="ST-ROLE")
    with connection.cursor() as cursor:
        cursor.execute("DROP ROLE IF EXISTS loyalty_plain_importer")
        cursor.execute("CREATE ROLE loyalty_plain_importer")
        cursor.execute("GRANT ALL ON SCHEMA public TO loyalty_plain_importer")
        cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO loyalty_plain_importer")
        cursor.execute("GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO loyalty_plain_importer")
        cursor.execute("SET ROLE loyalty_plain_importer")
    try:
        report = legacy(csv_text(_row("R-1", store.code)))
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET ROLE")
            cursor.execute("DROP OWNED BY loyalty_plain_importer")
            cursor.execute("DROP ROLE loyalty_plain_importer")

    assert report.ok, report.first_errors
    assert report.members_created == 1
    assert "writes: references checked as a set" not in report.timings
