from django.db import migrations

# Migration 0007's member_no_prefix_idx has the very definition of the index Django already makes for the
# unique member_no column (members_member_member_no_..._like, varchar_pattern_ops): the desk's prefix search
# uses either, and every member written (a legacy import writes a million) paid for both.
# (PostgreSQL only, like 0007.)


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP INDEX IF EXISTS member_no_prefix_idx")


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            "CREATE INDEX IF NOT EXISTS member_no_prefix_idx ON members_member (member_no varchar_pattern_ops)"
        )


class Migration(migrations.Migration):
    dependencies = [("members", "0009_storeapikey_apirequest")]

    operations = [migrations.RunPython(drop, create)]
