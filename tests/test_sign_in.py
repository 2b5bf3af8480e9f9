"""Sign-up, email verification, sign-in, password reset and rate limits, through allauth's real views."""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.urls import reverse

from members.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.django_db


def _link_in_last_mail() -> str:
    return re.search(r"https?://\S+", mail.outbox[-1].body).group(0)


def test_sign_up_sends_a_verification_mail_and_signing_in_waits_for_it(client):
    response = client.post(
        reverse("account_signup"),
        {"email": "Nina@Example.com", "password1": PASSWORD, "password2": PASSWORD},
    )

    assert response.status_code == 302
    assert response.url == reverse("account_email_verification_sent")
    assert len(mail.outbox) == 1
    assert mail.outbox[0].to == ["nina@example.com"]
    client.logout()
    response = client.post(reverse("account_login"), {"login": "nina@example.com", "password": PASSWORD})
    assert response.url == reverse("account_email_verification_sent")  # not let in before verifying


def test_a_verified_new_user_signs_in_and_is_offered_to_join_a_program(client):
    client.post(reverse("account_signup"), {"email": "nina@example.com", "password1": PASSWORD, "password2": PASSWORD})
    confirm = _link_in_last_mail()
    client.post(confirm)
    assert EmailAddress.objects.get(email="nina@example.com").verified

    response = client.post(reverse("account_login"), {"login": "nina@example.com", "password": PASSWORD}, follow=True)

    assert response.redirect_chain[-1][0] == "/me/join/"  # signed in, not a member yet
    assert 'name="accept_terms"' in response.content.decode()


def test_a_wrong_password_says_so_and_signs_nobody_in(client, member_user):
    response = client.post(reverse("account_login"), {"login": member_user.email, "password": "wrong"})

    assert response.status_code == 200
    assert "not correct" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_sign_ins_are_rate_limited_even_when_the_password_is_then_right(client, member_user):
    for _ in range(5):
        client.post(reverse("account_login"), {"login": member_user.email, "password": "wrong"})

    response = client.post(reverse("account_login"), {"login": member_user.email, "password": PASSWORD})

    assert "Too many failed login attempts" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_password_reset_mails_a_link_that_sets_a_new_password(client, member_user):
    client.post(reverse("account_reset_password"), {"email": member_user.email})
    link = _link_in_last_mail()

    form_url = client.get(link).url  # allauth moves the key out of the address before showing the form
    response = client.post(form_url, {"password1": "brand-New-pass-7", "password2": "brand-New-pass-7"})

    assert response.status_code == 302
    member_user.refresh_from_db()
    assert member_user.check_password("brand-New-pass-7")


def test_staff_with_a_second_factor_are_asked_for_the_code_after_their_password(client, manager_user):
    response = client.post(reverse("account_login"), {"login": manager_user.email, "password": PASSWORD})

    assert response.url == reverse("mfa_authenticate")
    assert "_auth_user_id" not in client.session


def test_sign_up_with_an_address_already_in_use_says_so_and_creates_nobody(client, member_user):
    response = client.post(
        reverse("account_signup"),
        {"email": member_user.email.upper(), "password1": PASSWORD, "password2": PASSWORD},
    )

    # allauth answers as if it worked (no account enumeration) and mails the owner instead.
    assert User.objects.count() == 1
    assert response.url == reverse("account_email_verification_sent")
    assert mail.outbox[-1].to == [member_user.email]
