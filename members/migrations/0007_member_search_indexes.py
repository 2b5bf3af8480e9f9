from django.db import migrations

# The desk searches members as the clerk types: by the beginning of a card number, a phone, an email
# or a last name or company. Django writes those lookups as `col LIKE 'x%'` and
# `UPPER(col::text) LIKE UPPER('x%')`; pattern-ops indexes answer them whatever the database's
# collation, so a search stays an index scan at a million members. (PostgreSQL only; the demo's
# SQLite scans its few rows.)
INDEXES = {
    "member_no_prefix_idx": "(member_no varchar_pattern_ops)",
    "member_phone_prefix_idx": "(phone varchar_pattern_ops)",
    # Also serves the duplicate check's case-insensitive equality (`UPPER(email::text) = UPPER(...)`).
    "member_email_upper_idx": "(UPPER(email::text) text_pattern_ops)",
    "member_last_name_upper_idx": "(UPPER(last_name::text) text_pattern_ops)",
    "member_company_upper_idx": "(UPPER(company::text) text_pattern_ops)",
}


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name, definition in INDEXES.items():
            schema_editor.execute(f"CREATE INDEX IF NOT EXISTS {name} ON members_member {definition}")


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        for name in INDEXES:
            schema_editor.execute(f"DROP INDEX IF EXISTS {name}")


class Migration(migrations.Migration):
    dependencies = [("members", "0006_member_enrolled_at_default")]

    operations = [migrations.RunPython(create, drop)]
