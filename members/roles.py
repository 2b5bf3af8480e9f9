"""Staff roles are Django groups; this module declares exactly which permissions each one holds.

Groups are created by migration 0002; `sync_role_permissions` runs after every `migrate`, so when a
later app adds models, listing their permissions here is all it takes to grant them.
"""

from django.apps import apps as global_apps
from django.db import models, transaction
from django.utils.translation import gettext_lazy as _


class Role(models.TextChoices):
    # The value is the group's name in the database; the label is what people read.
    PROGRAM_MANAGER = "Program manager", _("Program manager")
    STORE_CLERK = "Store clerk", _("Store clerk")
    ANALYST = "Analyst", _("Analyst")


# Roles that work on program staff pages (and must enrol a second factor first).
STAFF_ROLES = frozenset({Role.PROGRAM_MANAGER, Role.ANALYST})

_PROGRAM_CONFIG = ("program", "tier", "tierbenefit", "earnrule", "termsversion")
_BOOKS = ("account", "ledgerentry", "purchase", "purchasereturn", "activity", "tierchange", "termsacceptance")
_TRANSITIONS = ("transition", "transitionnotice", "migrationplan", "migrationoutcome")
_READ_EVERYTHING = frozenset(
    {f"loyalty.view_{model}" for model in (*_PROGRAM_CONFIG, *_BOOKS, "invitation")}
    | {"members.view_store", "members.view_member", "members.view_membertype", "members.view_consentrecord"}
    | {f"rewards.view_{model}" for model in ("reward", "redemption", "voucher")}
    | {f"campaigns.view_{model}" for model in ("segment", "campaign", "message", "messagesend", *_TRANSITIONS)}
    | {"core.view_jobrun", "django_celery_beat.view_periodictask", "django_celery_beat.view_crontabschedule"}
)

ROLE_PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.PROGRAM_MANAGER: _READ_EVERYTHING
    | {f"loyalty.{action}_{model}" for model in _PROGRAM_CONFIG for action in ("add", "change", "delete")}
    | {
        "members.view_staff_pages",
        "members.view_analytics",
        "members.export_reports",
        "members.add_store",
        "members.change_store",
        "members.view_staffprofile",
        "loyalty.review_claims",
        "loyalty.adjust_points",
        "loyalty.add_invitation",
        "loyalty.change_invitation",
        # Correct a member's details, answer data-rights requests (download, anonymise).
        "members.change_member",
        "members.add_membertype",
        "members.change_membertype",
        # The reward catalogue; redemptions are fulfilled or cancelled, never edited by hand.
        "rewards.add_reward",
        "rewards.change_reward",
        "rewards.fulfil_redemption",
        # Point-of-sale API keys: create, revoke (a key is shown once; revoking is final).
        "members.view_storeapikey",
        "members.add_storeapikey",
        "members.change_storeapikey",
        # Background jobs: start one by hand, retry a failed run; change when scheduled jobs run.
        "core.add_jobrun",
        # Legacy member files: upload, check, import, tell the members who came over.
        "loyalty.import_members",
        # Campaigns: segments, campaigns and their messages; launching spends budget and emails members.
        *(
            f"campaigns.{action}_{model}"
            for model in ("segment", "campaign", "message")
            for action in ("add", "change")
        ),
        "campaigns.delete_segment",
        "campaigns.launch_campaign",
        # Program transitions: open one, plan the migration; announcing, printing and migrating is executing.
        *(f"campaigns.{action}_{model}" for model in ("transition", "migrationplan") for action in ("add", "change")),
        "campaigns.execute_transition",
        "loyalty.view_legacyimport",
        "django_celery_beat.change_periodictask",
        "django_celery_beat.add_crontabschedule",
        "django_celery_beat.change_crontabschedule",
    },
    Role.STORE_CLERK: frozenset({"members.use_desk"}),
    Role.ANALYST: _READ_EVERYTHING | {"members.view_staff_pages", "members.view_analytics", "members.export_reports"},
}


def _permissions(Permission, names: frozenset[str], using: str) -> list:
    wanted = {tuple(name.split(".", 1)) for name in names}
    found = list(
        Permission.objects.using(using)
        .filter(
            content_type__app_label__in={app for app, _codename in wanted},
            codename__in={codename for _app, codename in wanted},
        )
        .select_related("content_type")
    )
    missing = wanted - {(p.content_type.app_label, p.codename) for p in found}
    if missing:
        raise LookupError(f"Unknown permissions in ROLE_PERMISSIONS: {sorted('.'.join(m) for m in missing)}")
    return [p for p in found if (p.content_type.app_label, p.codename) in wanted]


def sync_role_permissions(*, apps=global_apps, using: str = "default") -> None:
    """Make each role's group hold exactly its declared permissions, no more, no less."""
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    with transaction.atomic(using=using):
        for role, names in ROLE_PERMISSIONS.items():
            group, _created = Group.objects.using(using).get_or_create(name=role.value)
            group.permissions.set(_permissions(Permission, names, using))
