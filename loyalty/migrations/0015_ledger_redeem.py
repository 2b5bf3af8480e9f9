# The analytics overview re-reads, for each account with a redemption or a refund since the member
# summary, its first redemption; through the statement index that meant every entry of the account (the
# index has no kind). A partial index on redeem entries alone gives it in one probe, and only redemptions
# pay for it when written (bench/RESULTS.md, "Analytics", 2026-12-01).
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("loyalty", "0014_ledger_expiry")]

    operations = [
        migrations.AddIndex(
            model_name="ledgerentry",
            index=models.Index(
                fields=["account", "occurred_at", "id"], condition=models.Q(kind="redeem"), name="ledger_redeem_idx"
            ),
        ),
    ]
