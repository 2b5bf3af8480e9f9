"""Every role reaches its own area and is refused elsewhere: 302 to sign-in for visitors, 403 for the wrong role."""

import pytest
from django.urls import reverse

from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db

ME, DESK, STAFF, ADMIN = "/me/", "/desk/", "/staff/", "/admin/"


@pytest.fixture
def enrolled_member_user(member_user):
    from tests.factories import MemberFactory

    MemberFactory(user=member_user, email=member_user.email)
    return member_user


def _login(client, user):
    if user is not None:
        client.force_login(user)
    return client


@pytest.mark.parametrize("path", [ME, DESK, STAFF])
def test_visitors_are_sent_to_sign_in(client, path):
    response = client.get(path)

    assert response.status_code == 302
    assert response.url.startswith(reverse("account_login"))


def test_visitors_opening_the_admin_sign_in_through_allauth(client):
    response = client.get(ADMIN, follow=True)

    assert response.redirect_chain[-1][0] == reverse("account_login") + "?next=%2Fadmin%2F"


@pytest.mark.parametrize(
    ("who", "path", "status"),
    [
        ("enrolled_member_user", ME, 200),
        ("member_user", "/me/join/", 200),
        ("member_user", DESK, 403),
        ("member_user", STAFF, 403),
        ("member_user", ADMIN, 403),
        ("clerk_user", DESK, 200),
        ("clerk_user", STAFF, 403),
        ("clerk_user", ADMIN, 403),
        ("manager_user", STAFF, 200),
        ("manager_user", ADMIN, 200),
        ("manager_user", DESK, 403),
        ("analyst_user", STAFF, 200),
        ("analyst_user", ADMIN, 200),
        ("analyst_user", DESK, 403),
    ],
)
def test_each_role_reaches_its_area_and_is_refused_elsewhere(client, request, who, path, status):
    _login(client, request.getfixturevalue(who))

    response = client.get(path, follow=True)

    assert response.status_code == status
    if status == 200:
        assert response.redirect_chain == []  # served at that address, not somewhere it redirected to


@pytest.mark.parametrize("path", [STAFF, ADMIN, "/admin/members/store/"])
def test_staff_without_a_second_factor_are_sent_to_set_one_up(client, manager_without_mfa, path):
    _login(client, manager_without_mfa)

    response = client.get(path)

    assert response.status_code == 302
    assert response.url == reverse("mfa_activate_totp")


def test_staff_without_a_second_factor_can_still_reach_the_set_up_page(client, manager_without_mfa):
    client.post(reverse("account_login"), {"login": manager_without_mfa.email, "password": PASSWORD})
    activate = reverse("mfa_activate_totp")

    # allauth asks for the password once more before a factor is added; our middleware lets both pages through.
    response = client.get(activate)
    assert response.url.startswith(reverse("account_reauthenticate"))
    client.post(response.url, {"password": PASSWORD})

    response = client.get(activate)
    assert response.status_code == 200
    assert "authenticator_secret" in response.content.decode()


def test_analyst_sees_stores_in_the_admin_but_cannot_add_one(client, analyst_user):
    _login(client, analyst_user)

    assert client.get("/admin/members/store/").status_code == 200
    assert client.get("/admin/members/store/add/").status_code == 403


@pytest.mark.parametrize(
    ("who", "home"), [("member_user", ME), ("clerk_user", DESK), ("manager_user", STAFF), ("analyst_user", STAFF)]
)
def test_the_home_page_sends_each_role_to_its_own_area(client, request, who, home):
    _login(client, request.getfixturevalue(who))

    response = client.get("/")

    assert response.status_code == 302
    assert response.url == home


@pytest.mark.parametrize(
    ("who", "page", "shown", "hidden"),
    [
        ("clerk_user", DESK, ['href="/desk/"'], ['href="/staff/"', 'href="/admin/"', 'href="/me/"']),
        ("enrolled_member_user", ME, ['href="/me/"'], ['href="/staff/"', 'href="/admin/"', 'href="/desk/"']),
        ("manager_user", STAFF, ['href="/staff/"', 'href="/admin/"'], ['href="/desk/"', 'href="/me/"']),
    ],
)
def test_navigation_adapts_to_the_role(client, request, who, page, shown, hidden):
    _login(client, request.getfixturevalue(who))

    html = client.get(page).content.decode()

    for link in shown:
        assert link in html
    for link in hidden:
        assert link not in html


def test_a_signed_in_user_cannot_switch_accounts_through_the_admin_sign_in_form(client, analyst_user, manager_user):
    _login(client, analyst_user)

    response = client.post("/admin/login/", {"username": manager_user.email, "password": PASSWORD})

    assert response.status_code == 302
    assert response.url == "/admin/"
    assert client.session["_auth_user_id"] == str(analyst_user.pk)


def test_the_admin_password_change_form_is_allauths_rate_limited_one(client, manager_user):
    _login(client, manager_user)

    response = client.get("/admin/password_change/")

    assert response.url == reverse("account_change_password")


@pytest.mark.parametrize("path", ["/admin/members/user/", "/admin/auth/group/", "/admin/members/user/add/"])
def test_program_managers_cannot_manage_users_or_roles(client, manager_user, path):
    _login(client, manager_user)

    assert client.get(path).status_code == 403


def test_program_managers_can_add_a_store(client, manager_user):
    _login(client, manager_user)

    response = client.post(
        "/admin/members/store/add/", {"code": "nam-01", "name": "Namur", "region": "Wallonia", "is_active": "on"}
    )

    assert response.status_code == 302
    from members.models import Store

    assert Store.objects.filter(code="nam-01").exists()


def test_an_inactive_user_cannot_sign_in(client, member_user):
    member_user.is_active = False
    member_user.save()

    response = client.post(reverse("account_login"), {"login": member_user.email, "password": PASSWORD})

    assert response.url == reverse("account_inactive")
    assert "_auth_user_id" not in client.session
