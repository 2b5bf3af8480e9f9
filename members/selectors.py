from typing import Literal

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled

from members.models import MemberType, Store, User
from members.roles import STAFF_ROLES, Role


def user_roles(*, user: User) -> frozenset[Role]:
    """The roles a signed-in user holds (group names are role values)."""
    if not user.is_authenticated:
        return frozenset()
    # Asked several times per request (middleware, navigation): read the groups once per user object.
    if not hasattr(user, "_loyalty_roles"):
        names = set(user.groups.values_list("name", flat=True))
        user._loyalty_roles = frozenset(role for role in Role if role.value in names)
    return user._loyalty_roles


def user_is_program_staff(*, user: User) -> bool:
    """Staff who work on program pages or the admin; they must sign in with a second factor."""
    if not user.is_authenticated:
        return False
    return user.is_superuser or user.is_staff or bool(user_roles(user=user) & STAFF_ROLES)


def user_has_second_factor(*, user: User) -> bool:
    return is_mfa_enabled(user, [Authenticator.Type.TOTP])


def clerk_store(*, user: User) -> Store | None:
    """The store a clerk serves, or None when the user is not attached to one."""
    if not user.is_authenticated:
        return None
    profile = getattr(user, "staff_profile", None)
    return profile.store if profile else None


def user_area(*, user: User) -> Literal["anonymous", "staff", "clerk", "member"]:
    """The part of the portal a user works in: decides their home page and their navigation."""
    if not user.is_authenticated:
        return "anonymous"
    if user_is_program_staff(user=user):
        return "staff"
    if Role.STORE_CLERK in user_roles(user=user):
        return "clerk"
    return "member"


def member_type_names() -> dict[str, str]:
    """Member type codes and the names people read."""
    return dict(MemberType.objects.values_list("code", "name"))
