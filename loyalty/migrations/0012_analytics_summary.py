# The member summary of the analytics pages (issue 10): MemberMonth, MemberDecile and their mark.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0011_ledger_months"),
        ("members", "0009_storeapikey_apirequest"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="MemberMonthMark",
            fields=[
                (
                    "program",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="+",
                        serialize=False,
                        to="loyalty.program",
                    ),
                ),
                ("through_account", models.BigIntegerField(default=0)),
                ("account_gaps", models.JSONField(default=list)),
                ("through_tier_change", models.BigIntegerField(default=0)),
                ("tier_change_gaps", models.JSONField(default=list)),
                ("through_entry", models.BigIntegerField(default=0)),
                ("ranked_at", models.DateTimeField(null=True)),
                ("refreshed_at", models.DateTimeField(verbose_name="refreshed at")),
            ],
            options={
                "verbose_name": "member summary mark",
                "verbose_name_plural": "member summary marks",
            },
        ),
        migrations.CreateModel(
            name="MemberDecile",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("decile", models.PositiveSmallIntegerField(verbose_name="value decile")),
                ("region", models.CharField(blank=True, max_length=80, verbose_name="region")),
                ("members", models.BigIntegerField(verbose_name="members")),
                ("spend", models.DecimalField(decimal_places=2, max_digits=16, verbose_name="spend over 12 months")),
                ("computed_at", models.DateTimeField(verbose_name="computed at")),
                (
                    "program",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="loyalty.program",
                    ),
                ),
                (
                    "store",
                    models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="members.store",
                    ),
                ),
                (
                    "tier",
                    models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="loyalty.tier",
                    ),
                ),
            ],
            options={
                "verbose_name": "member decile",
                "verbose_name_plural": "member deciles",
                "indexes": [models.Index(fields=["program", "decile"], name="memberdecile_program_idx")],
            },
        ),
        migrations.CreateModel(
            name="MemberMonth",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("month", models.DateField(verbose_name="month")),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("enrolled", "Enrolled"),
                            ("upgrade", "Upgrade"),
                            ("downgrade", "Downgrade at evaluation"),
                            ("first_redemption", "First redemption"),
                        ],
                        max_length=16,
                        verbose_name="kind",
                    ),
                ),
                ("region", models.CharField(blank=True, max_length=80, verbose_name="region")),
                ("channel", models.CharField(blank=True, max_length=12, verbose_name="enrolment channel")),
                ("members", models.BigIntegerField(verbose_name="members")),
                ("waited", models.DurationField(null=True)),
                (
                    "clerk",
                    models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "program",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="loyalty.program",
                    ),
                ),
                (
                    "store",
                    models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="members.store",
                    ),
                ),
            ],
            options={
                "verbose_name": "member month",
                "verbose_name_plural": "member months",
                "indexes": [models.Index(fields=["program", "kind", "month"], name="membermonth_program_idx")],
            },
        ),
    ]
