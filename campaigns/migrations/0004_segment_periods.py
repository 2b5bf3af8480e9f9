# Segments count spend and points over one of the periods loyalty.AccountValue keeps sums for.

from django.db import migrations, models

PERIODS = (30, 90, 180, 365)


def snap_to_a_kept_period(apps, schema_editor):
    """A saved period becomes the shortest kept period that covers it (a year at most)."""
    Segment = apps.get_model("campaigns", "Segment")
    low = 0
    for days in PERIODS:
        Segment.objects.filter(period_days__gt=low, period_days__lt=days).update(period_days=days)
        low = days
    Segment.objects.filter(period_days__gt=PERIODS[-1]).update(period_days=PERIODS[-1])


class Migration(migrations.Migration):
    dependencies = [
        ("campaigns", "0003_transitions"),
        ("loyalty", "0016_account_value_periods"),
    ]

    operations = [
        migrations.RunPython(snap_to_a_kept_period, migrations.RunPython.noop),
        migrations.AlterField(
            model_name="segment",
            name="period_days",
            field=models.PositiveIntegerField(
                choices=[
                    (30, "the last 30 days"),
                    (90, "the last 90 days"),
                    (180, "the last 180 days"),
                    (365, "the last 365 days"),
                ],
                default=365,
                verbose_name="spend and points counted over",
            ),
        ),
    ]
