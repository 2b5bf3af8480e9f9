from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class CampaignsConfig(AppConfig):
    """Segments, campaigns, holdout groups, messages and campaign performance."""

    name = "campaigns"
    verbose_name = _("Campaigns")
