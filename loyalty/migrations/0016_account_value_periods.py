# Sums of spend and earned points per segment period, kept by the nightly ranking.

from django.db import migrations, models


def forget_the_ranking(apps, schema_editor):
    """A ranking made before these columns existed would read as zero spend and points for everyone, under
    its old date. Forgotten instead: segments and the value pyramid say the ranking has not been made, and
    the launch checklist refuses criteria that need it, until the job "Rank members by value" runs (every
    night, or now from the jobs page)."""
    apps.get_model("loyalty", "AccountValue").objects.all().delete()


class Migration(migrations.Migration):

    dependencies = [
        ('loyalty', '0015_ledger_redeem'),
    ]

    operations = [
        migrations.AddField(
            model_name='accountvalue',
            name='points_180d',
            field=models.BigIntegerField(default=0, verbose_name='points earned over 180 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='points_30d',
            field=models.BigIntegerField(default=0, verbose_name='points earned over 30 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='points_365d',
            field=models.BigIntegerField(default=0, verbose_name='points earned over 365 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='points_90d',
            field=models.BigIntegerField(default=0, verbose_name='points earned over 90 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='spend_180d',
            field=models.DecimalField(decimal_places=2, default=0, max_digits=14, verbose_name='spend over 180 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='spend_30d',
            field=models.DecimalField(decimal_places=2, default=0, max_digits=14, verbose_name='spend over 30 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='spend_365d',
            field=models.DecimalField(decimal_places=2, default=0, max_digits=14, verbose_name='spend over 365 days'),
        ),
        migrations.AddField(
            model_name='accountvalue',
            name='spend_90d',
            field=models.DecimalField(decimal_places=2, default=0, max_digits=14, verbose_name='spend over 90 days'),
        ),
        migrations.RunPython(forget_the_ranking, migrations.RunPython.noop),
    ]
