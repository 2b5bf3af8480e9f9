from django.apps import AppConfig
from django.apps import apps as global_apps
from django.db.models.signals import post_migrate
from django.utils.translation import gettext_lazy as _


def _sync_roles_after_migrate(sender, using, apps=global_apps, **kwargs) -> None:
    from django.contrib.auth.management import create_permissions

    from members.roles import sync_role_permissions

    try:
        apps.get_model("auth", "Permission")
    except LookupError:  # auth is not migrated yet (e.g. `migrate contenttypes` on a new database)
        return
    # post_migrate reaches apps in INSTALLED_APPS order; create every app's permissions first so
    # roles can be granted permissions of apps listed after this one.
    for app_config in global_apps.get_app_configs():
        create_permissions(app_config, verbosity=0, using=using, apps=apps)
    sync_role_permissions(apps=apps, using=using)
    _default_member_types(apps, using)


def _default_member_types(apps, using) -> None:
    """A database without any member type gets the usual trades (after a flush too, as in tests)."""
    from members.migrations import DEFAULT_MEMBER_TYPES

    try:
        MemberType = apps.get_model("members", "MemberType")
    except LookupError:
        return
    if not MemberType.objects.using(using).exists():
        MemberType.objects.using(using).bulk_create(
            MemberType(code=code, name=name, position=position)
            for position, (code, name) in enumerate(DEFAULT_MEMBER_TYPES)
        )


class MembersConfig(AppConfig):
    """Members, stores, staff profiles and roles."""

    name = "members"
    verbose_name = _("Members and stores")

    def ready(self) -> None:
        post_migrate.connect(_sync_roles_after_migrate, sender=self, dispatch_uid="members-sync-roles")
