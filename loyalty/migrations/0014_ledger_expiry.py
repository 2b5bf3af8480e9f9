# The ledger's foreign keys to its account and to its program become one key over both columns,
# (account_id, program_id) -> loyalty_account (id, program_id): an entry can no longer name a program other
# than its account's, and each new entry costs one check at commit instead of two. Django cannot model a
# composite foreign key, so it is raw SQL, on PostgreSQL only; SQLite (the demo) keeps the model's fields
# without a database constraint. Account pages are kept half empty. Both measured in bench/RESULTS.md
# ("Background jobs", 2026-12-01): expiry of 2,000,000 lots 61.8 s -> 40.9 s; on a loaded machine 121 s
# -> 85 s (the key) -> 68 s (the pages).
import django.db.models.deletion
from django.db import migrations, models

ADD_ACCOUNT_PROGRAM_FK = """
ALTER TABLE loyalty_ledgerentry ADD CONSTRAINT ledger_account_program_fk
    FOREIGN KEY (account_id, program_id) REFERENCES loyalty_account (id, program_id) DEFERRABLE INITIALLY DEFERRED
"""
DROP_ACCOUNT_PROGRAM_FK = "ALTER TABLE loyalty_ledgerentry DROP CONSTRAINT IF EXISTS ledger_account_program_fk"


def add_account_program_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ADD_ACCOUNT_PROGRAM_FK)


def drop_account_program_fk(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(DROP_ACCOUNT_PROGRAM_FK)


def halve_account_fillfactor(apps, schema_editor):
    # A batch chunk updates every account of a page in one transaction, and the old versions stay until
    # it commits: only half-empty pages keep all those updates in place (HOT) instead of rewriting every
    # index of the account table. Pages written from now on; VACUUM FULL applies it to existing ones.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_account SET (fillfactor = 50)")


def restore_account_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_account SET (fillfactor = 80)")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0013_segment_spend")]

    # Order matters both ways: the composite key needs the unique (id, program) first, and exists before
    # the single-column keys go (and goes after they come back).
    operations = [
        migrations.AddConstraint(
            model_name="account",
            constraint=models.UniqueConstraint(fields=("id", "program"), name="account_id_program_unique"),
        ),
        migrations.RunPython(add_account_program_fk, drop_account_program_fk),
        migrations.AlterField(
            model_name="ledgerentry",
            name="account",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="entries",
                to="loyalty.account",
            ),
        ),
        migrations.AlterField(
            model_name="ledgerentry",
            name="program",
            field=models.ForeignKey(
                db_constraint=False,
                db_index=False,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="+",
                to="loyalty.program",
            ),
        ),
        migrations.RunPython(halve_account_fillfactor, restore_account_fillfactor),
    ]
