from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Shared helpers with no models: admin site, errors, template context."""

    default = True
    name = "loyalty.core"
    label = "core"
    verbose_name = _("Core")


class LoyaltyAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with our site (named explicitly in INSTALLED_APPS)."""

    default = False
    default_site = "loyalty.core.admin.LoyaltyAdminSite"
