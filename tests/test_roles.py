import pytest
from django.contrib.auth.models import Group, Permission

from loyalty.core.exceptions import ApplicationError
from members import services as member_services
from members.models import StaffProfile, User
from members.roles import ROLE_PERMISSIONS, Role, sync_role_permissions

pytestmark = pytest.mark.django_db


def _perm_names(group: Group) -> set[str]:
    return {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.select_related("content_type")}


def test_every_role_group_exists_with_exactly_its_declared_permissions():
    for role, declared in ROLE_PERMISSIONS.items():
        assert _perm_names(Group.objects.get(name=role.value)) == set(declared)


def test_store_clerk_holds_the_desk_and_nothing_of_the_staff_pages():
    clerk = Group.objects.get(name=Role.STORE_CLERK.value)
    assert _perm_names(clerk) == {"members.use_desk"}


def test_analyst_can_read_and_export_but_not_use_the_desk():
    analyst = _perm_names(Group.objects.get(name=Role.ANALYST.value))
    assert {"members.view_staff_pages", "members.export_reports"} <= analyst
    assert "members.use_desk" not in analyst
    assert not any(name.split(".")[1].startswith(("add_", "change_", "delete_")) for name in analyst)


def test_sync_removes_a_permission_granted_by_hand():
    clerk = Group.objects.get(name=Role.STORE_CLERK.value)
    clerk.permissions.add(Permission.objects.get(codename="view_staff_pages"))

    sync_role_permissions()

    assert _perm_names(clerk) == {"members.use_desk"}


def test_clerk_is_created_in_the_clerk_group_tied_to_their_store_and_without_admin_access(store):
    user = member_services.staff_user_create(
        email="New.Clerk@Example.com", password="x-Secret-123", role=Role.STORE_CLERK, store=store
    )

    assert user.has_perm("members.use_desk")
    assert not user.has_perm("members.view_staff_pages")
    assert not user.is_staff
    assert user.staff_profile.store == store
    assert user.emailaddress_set.get().verified


def test_program_manager_may_use_the_admin():
    user = member_services.staff_user_create(email="pm@example.com", password="x-Secret-123", role=Role.PROGRAM_MANAGER)
    assert user.is_staff
    assert user.has_perm("members.view_staff_pages")
    assert not user.has_perm("members.use_desk")


def test_a_clerk_without_a_store_is_refused_and_nothing_is_written():
    with pytest.raises(ApplicationError, match="must belong to a store"):
        member_services.staff_user_create(email="lost@example.com", password="x-Secret-123", role=Role.STORE_CLERK)

    assert not User.objects.filter(email="lost@example.com").exists()
    assert not StaffProfile.objects.exists()


def test_an_email_already_used_in_another_case_is_refused(member_user):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError):
        member_services.member_user_create(email=member_user.email.upper(), password="x-Secret-123")

    assert User.objects.count() == 1
