"""The rewards app's part of the daily member summary: redemptions per month, reward, region and store
(`RewardMonth`), rebuilt from the ledger as the member summary's mark saw it, in its transaction (the
points engine sends `loyalty.signals.member_summary_refreshed`; `RewardsConfig.ready` connects it).
The overview's top rewards (`portal.analytics`) read it with what was recorded since."""

from django.db.models import Count, DateField, F, QuerySet, Sum
from django.db.models.functions import TruncMonth

from loyalty import analytics as ledger_analytics
from loyalty.models import LedgerEntry, Program
from rewards.models import RewardMonth

_REWARD_COLUMNS = {
    "month": "event_month",
    "reward_id": "redeemed_reward",
    "region": "member_region",
    "store_id": "enrol_store",
    "redemptions": "redemptions",
    "points": "points",
}


def reward_rows(program: Program, entries: ledger_analytics.IdMark) -> QuerySet:
    """Redemptions per month, reward, region and store whose redeem entry the mark `entries` covers, not
    refunded by an entry it covers (cancelling a redemption is refunding its entry). The region is the
    one the member summary wrote for the member (`MemberRegion`), so the pages take a cancellation
    off the region it was counted in."""
    return (
        ledger_analytics.redeems_kept(LedgerEntry.objects.filter(program=program), entries)
        .filter(redemption__isnull=False)
        .values(
            event_month=TruncMonth("redemption__created_at", output_field=DateField()),
            redeemed_reward=F("redemption__reward"),
            member_region=ledger_analytics.SUMMARY_REGION,
            enrol_store=F("account__enrolled_at_store"),
        )
        .annotate(redemptions=Count("pk"), points=Sum("redemption__points"))
        .order_by()
    )


def reward_months_refresh(*, program: Program, entries: ledger_analytics.IdMark) -> int:
    """Rebuild the program's `RewardMonth` rows set-based with the ledger mark `entries`; returns the rows
    written. Called in the member summary's transaction, so both cover the same entries."""
    RewardMonth.objects.filter(program=program).delete()
    rows = reward_rows(program, entries)
    return ledger_analytics.summary_insert(RewardMonth, _REWARD_COLUMNS, program=program, rows=rows)


def on_member_summary_refreshed(sender, *, program: Program, entries: ledger_analytics.IdMark, **kwargs) -> int:
    return reward_months_refresh(program=program, entries=entries)
