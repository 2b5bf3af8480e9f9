# Segments sum a period's spend per account: an index on purchases by (program, time) carrying the account
# and the amounts (as key columns: SQLite, the demo, has no INCLUDE), so the period is read from the index
# alone (bench/RESULTS.md, "Segments", 2026-12-01).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0012_analytics_summary")]

    operations = [
        migrations.AddIndex(
            model_name="purchase",
            index=models.Index(
                fields=["program", "occurred_at", "account", "amount", "returned_amount"],
                name="purchase_period_idx",
            ),
        ),
    ]
