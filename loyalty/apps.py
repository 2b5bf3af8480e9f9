from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LoyaltyConfig(AppConfig):
    """The points engine: programs, tiers, earning rules, accounts and the ledger."""

    name = "loyalty"
    verbose_name = _("Points engine")
