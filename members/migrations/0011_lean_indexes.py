"""Fewer index entries per member: a referral code and a referrer are indexed only where a member has
one (most members, and every imported one, have neither), and the code loses the pattern-ops copy Django
makes for unique text columns (codes are only looked up whole). Measured in bench/RESULTS.md (legacy import)."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0010_member_no_one_prefix_index"),
    ]

    operations = [
        # The partial unique key first, so codes are never without one.
        migrations.AddConstraint(
            model_name="member",
            constraint=models.UniqueConstraint(
                condition=models.Q(("referral_code__isnull", False)),
                fields=("referral_code",),
                name="member_referral_code_unique",
            ),
        ),
        migrations.AlterField(
            model_name="member",
            name="referral_code",
            field=models.CharField(blank=True, max_length=12, null=True, verbose_name="referral code"),
        ),
        migrations.AddIndex(
            model_name="member",
            index=models.Index(
                condition=models.Q(("referred_by__isnull", False)),
                fields=["referred_by"],
                name="member_referred_by_idx",
            ),
        ),
        # Only the index goes: Django's AlterField would also drop and re-add (and re-check) the foreign key.
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="member",
                    name="referred_by",
                    field=models.ForeignKey(
                        blank=True,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="referrals",
                        to="members.member",
                        verbose_name="referred by",
                    ),
                ),
            ],
            database_operations=[
                migrations.RunSQL(
                    'DROP INDEX IF EXISTS "members_member_referred_by_id_17ca75b5"',
                    reverse_sql='CREATE INDEX "members_member_referred_by_id_17ca75b5" '
                    'ON "members_member" ("referred_by_id")',
                ),
            ],
        ),
    ]
