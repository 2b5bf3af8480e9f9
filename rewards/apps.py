from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class RewardsConfig(AppConfig):
    """Reward catalogue, redemptions and vouchers."""

    name = "rewards"
    verbose_name = _("Rewards")

    def ready(self):
        from loyalty.signals import member_summary_refreshed
        from rewards import analytics

        # The engine cannot call up into rewards: its daily member summary asks, in its transaction.
        member_summary_refreshed.connect(analytics.on_member_summary_refreshed, dispatch_uid="rewards.reward_months")
