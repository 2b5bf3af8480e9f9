"""Indexes that others already cover: an account's member (account_member_program_unique leads with it)
and program (both of Account's Meta indexes lead with it), a tier change's account ((account, -changed_at));
a tier change's former tier is indexed only where there is one (imports and enrolments have none).
Only the indexes go: Django's AlterField would also drop and re-add (and re-check) each foreign key."""

import django.db.models.deletion
from django.db import migrations, models

DROPPED = (
    ("loyalty_account", "member_id", "loyalty_account_member_id_2bc70329"),
    ("loyalty_account", "program_id", "loyalty_account_program_id_4e60d3b4"),
    ("loyalty_tierchange", "account_id", "loyalty_tierchange_account_id_33c9dd71"),
    ("loyalty_tierchange", "from_tier_id", "loyalty_tierchange_from_tier_id_35853b7a"),
)


class Migration(migrations.Migration):
    dependencies = [
        ("loyalty", "0018_program_rules_version"),
        ("members", "0011_lean_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="tierchange",
            index=models.Index(
                condition=models.Q(("from_tier__isnull", False)), fields=["from_tier"], name="tierchange_from_tier_idx"
            ),
        ),
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="account",
                    name="member",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="accounts",
                        to="members.member",
                    ),
                ),
                migrations.AlterField(
                    model_name="account",
                    name="program",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="accounts",
                        to="loyalty.program",
                    ),
                ),
                migrations.AlterField(
                    model_name="tierchange",
                    name="account",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="tier_changes",
                        to="loyalty.account",
                    ),
                ),
                migrations.AlterField(
                    model_name="tierchange",
                    name="from_tier",
                    field=models.ForeignKey(
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="+",
                        to="loyalty.tier",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{index}"', reverse_sql=f'CREATE INDEX "{index}" ON "{table}" ("{column}")'
                )
                for table, column, index in DROPPED
            ],
        ),
    ]
