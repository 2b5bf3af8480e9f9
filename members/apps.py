from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles_after_migrate(sender, using, **kwargs) -> None:
    from django.contrib.auth.management import create_permissions

    from members.roles import sync_role_permissions

    # post_migrate reaches apps in INSTALLED_APPS order; create every app's permissions
    # first so roles can be granted permissions of apps listed after this one.
    for app_config in apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using)
    sync_role_permissions()


class MembersConfig(AppConfig):
    """Members, stores, staff profiles and roles."""

    name = "members"
    verbose_name = _("Members and stores")

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, sender=self, dispatch_uid="members-sync-roles")
