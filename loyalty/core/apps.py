from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps
from django.utils.translation import gettext_lazy as _


class CoreConfig(AppConfig):
    """Shared helpers: admin site, errors, template context, and the background job runner."""

    default = True
    name = "loyalty.core"
    label = "core"
    verbose_name = _("Core")

    def ready(self):
        from django.db.models.signals import post_migrate

        from loyalty.core import jobs, schedule

        jobs.discover()
        post_migrate.connect(schedule.install_after_migrate, sender=self)


class LoyaltyAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with our site (named explicitly in INSTALLED_APPS)."""

    default = False
    default_site = "loyalty.core.admin.LoyaltyAdminSite"
