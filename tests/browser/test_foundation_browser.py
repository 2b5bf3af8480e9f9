"""Real Chromium against the live server: sign-up to dashboard, forced MFA for staff, role refusals, languages."""

import re

import pytest
from allauth.mfa.totp.internal.auth import format_hotp_value, hotp_value, yield_hotp_counters_from_time
from django.core import mail

from tests.conftest import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 360, "height": 740}


def _sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/accounts/login/")
    page.fill("input[name=login]", email)
    page.fill("input[name=password]", password)
    page.click("main form button[type=submit]")


def _current_totp(secret: str) -> str:
    counter = next(yield_hotp_counters_from_time())
    return format_hotp_value(hotp_value(secret, counter))


def test_a_person_signs_up_verifies_their_email_signs_in_and_is_offered_to_join(page, screenshot):
    page.goto("/")
    page.click("text=Join the program")
    page.fill("input[name=email]", "zoe@example.com")
    page.fill("input[name=password1]", PASSWORD)
    page.fill("input[name=password2]", PASSWORD)
    screenshot("signup")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/accounts/confirm-email/")
    assert "Verify Your Email Address" in page.content()

    link = re.search(r"https?://\S+", mail.outbox[-1].body).group(0)
    page.goto(link)
    page.click("main form button[type=submit]")  # "Confirm"
    _sign_in(page, "zoe@example.com")

    page.wait_for_url("**/me/join/")
    assert page.locator("h1").inner_text() == "Join a program"


def test_a_program_manager_is_made_to_set_up_two_factor_before_the_staff_pages(page, screenshot, manager_without_mfa):
    _sign_in(page, manager_without_mfa.email)
    page.goto("/staff/")

    # Sent to set up a factor; allauth first asks for the password again (re-authentication).
    page.wait_for_url("**/accounts/reauthenticate/**")
    assert "set up two-factor authentication to continue" in page.content()
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url("**/accounts/2fa/totp/activate/")
    screenshot("mfa-setup")
    secret = page.locator("input#authenticator_secret").input_value()
    page.fill("input[name=code]", _current_totp(secret))
    page.click("main form button[type=submit]")

    page.goto("/staff/")
    page.wait_for_url("**/staff/")
    assert page.locator("h1").inner_text() == "Program staff"
    assert "Enabled" in page.content()


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_a_clerk_reaches_the_desk_but_not_the_staff_pages_or_the_admin(page, screenshot, clerk_user, store):
    _sign_in(page, clerk_user.email)
    page.wait_for_url("**/desk/")
    assert store.name in page.content()
    screenshot("desk-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]  # nothing overflows at 360 px

    for path in ("/staff/", "/admin/"):
        response = page.goto(path)
        assert response.status == 403
        assert "This page is not for your role" in page.content()


def test_switching_to_french_and_dutch_changes_the_page_text(page, screenshot):
    page.goto("/")
    assert "Join the program" in page.content()

    page.select_option("#language-select", "fr")
    page.click(".language-switcher button")
    page.wait_for_load_state()
    assert "Rejoindre le programme" in page.content()
    screenshot("french")

    page.select_option("#language-select", "nl")
    page.click(".language-switcher button")
    page.wait_for_load_state()
    assert "Word lid van het programma" in page.content()
    assert page.locator("html").get_attribute("lang") == "nl"
