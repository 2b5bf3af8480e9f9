from allauth.account.models import EmailAddress
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from members.models import StaffProfile, Store, User
from members.roles import STAFF_ROLES, Role


@transaction.atomic
def store_create(
    *, code: str, name: str, region: str = "", street: str = "", postal_code: str = "", city: str = ""
) -> Store:
    store = Store(code=code, name=name, region=region, street=street, postal_code=postal_code, city=city)
    store.full_clean()
    store.save()
    return store


def _user_create(
    *, email: str, password: str | None, first_name: str, last_name: str, is_staff: bool, email_verified: bool
) -> User:
    user = User(
        email=User.objects.normalize_email(email), first_name=first_name, last_name=last_name, is_staff=is_staff
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    # allauth signs in only through a recorded address; unverified ones get the verification mail first.
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=email_verified)
    return user


@transaction.atomic
def member_user_create(
    *, email: str, password: str | None, first_name: str = "", last_name: str = "", email_verified: bool = False
) -> User:
    """A sign-in for a member (online sign-up goes through allauth's own form instead)."""
    return _user_create(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_staff=False,
        email_verified=email_verified,
    )


@transaction.atomic
def staff_user_create(
    *,
    email: str,
    password: str,
    role: Role,
    first_name: str = "",
    last_name: str = "",
    store: Store | None = None,
) -> User:
    """Create a staff user in one role. Clerks must belong to a store; program staff may use the admin."""
    if role == Role.STORE_CLERK and store is None:
        raise ApplicationError(
            _("A store clerk must belong to a store: choose the store they work in."), code="store_required"
        )
    # Staff accounts are opened by a program manager or an operator, who vouches for the address.
    user = _user_create(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_staff=role in STAFF_ROLES,
        email_verified=True,
    )
    user.groups.add(Group.objects.get(name=role.value))
    StaffProfile.objects.create(user=user, store=store)
    return user
