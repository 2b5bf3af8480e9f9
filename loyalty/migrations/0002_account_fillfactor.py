from django.db import migrations


def set_fillfactor(apps, schema_editor):
    # Balances change on every earn and spend: free space in each page lets PostgreSQL update the row
    # in place (a HOT update) instead of rewriting every index of the account table.
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_account SET (fillfactor = 80)")


def reset_fillfactor(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE loyalty_account RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0001_initial")]

    operations = [migrations.RunPython(set_fillfactor, reset_fillfactor)]
