"""Members in real Chromium: enrolment at the desk, a duplicate caught while typing, online activation
from the invitation mail, the dashboard on a phone and a desktop, and a training claim approved by staff."""

import re

import pytest
from django.core import mail

from members.models import Member
from tests.conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
PASSWORD = "Activ4te-me-please"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _enrol_at_the_desk(page, *, first_name, phone, email=""):
    page.goto("/desk/enrol/")
    page.fill("#id_first_name", first_name)
    page.fill("#id_last_name", "Janssens")
    page.fill("#id_email", email)
    page.fill("#id_phone", phone)
    page.select_option("#id_member_type", "roofer")
    page.check("#id_accept_terms")


def test_a_clerk_enrols_a_customer_and_a_duplicate_phone_is_caught_while_typing(
    page, screenshot, sign_in, clerk_user, desk_program
):
    sign_in(clerk_user)
    _enrol_at_the_desk(page, first_name="Lotte", phone="0470 11 22 33", email="lotte@example.com")
    screenshot("enrol-form")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/desk/members/*/")
    assert "Welcome bonus: 100 points" in page.locator(".messages").inner_text()
    assert page.locator("[data-testid=balance]").first.inner_text() == "100"
    assert page.locator(".qr svg").count() == 1
    screenshot("member-page")

    _enrol_at_the_desk(page, first_name="Someone", phone="+32 470 112 233")
    page.locator("#id_phone").dispatch_event("change")
    warning = page.locator("#duplicates .message")
    warning.wait_for()
    assert "A member with this phone already exists: Lotte Janssens" in warning.inner_text()
    screenshot("duplicate-caught")
    page.click("#duplicates a:has-text('Open it')")
    page.wait_for_url("**/desk/members/*/")
    assert page.locator("h1").inner_text() == "Lotte Janssens"
    assert Member.objects.count() == 1


def test_a_member_activates_online_access_and_reads_the_dashboard_on_phone_and_desktop(
    browser, live_server, page, screenshot, sign_in, clerk_user, desk_program, buy
):
    sign_in(clerk_user)
    _enrol_at_the_desk(page, first_name="Lotte", phone="0470112233", email="lotte@example.com")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/desk/members/*/")
    member = Member.objects.get()
    buy(member.accounts.get(), "700.00")  # 700 + 100 welcome (not qualifying): 300 short of Silver

    link = re.search(r"https?://\S+/accounts/activate/\S+/", mail.outbox[-1].body).group(0)
    for viewport, name in [(PHONE, "phone"), ({"width": 1280, "height": 800}, "desktop")]:
        context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-GB")
        visitor = context.new_page()
        if name == "phone":
            visitor.goto(link)
            visitor.fill("#id_password1", PASSWORD)
            visitor.fill("#id_password2", PASSWORD)
            visitor.click("main form button[type=submit]")
            visitor.wait_for_url("**/me/")
        else:
            visitor.goto("/accounts/login/")
            visitor.fill("input[name=login]", "lotte@example.com")
            visitor.fill("input[name=password]", PASSWORD)
            visitor.click("main form button[type=submit]")
            visitor.wait_for_url("**/me/")
        assert "300 more qualifying points to reach Silver" in visitor.content()
        assert visitor.locator("[role=progressbar]").get_attribute("aria-valuenow") == "70"
        assert visitor.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
        save_screenshot(visitor, "member-dashboard", name)
        context.close()

    page.goto(link)  # the link worked once
    assert "This link no longer works" in page.content()


def test_a_member_claims_training_staff_approves_and_the_points_appear_explained(
    browser, live_server, page, screenshot, sign_in, member_user, manager_user, desk_program, counter_enrol
):
    from tests.factories import EarnRuleFactory

    EarnRuleFactory(
        program=desk_program,
        name="Training: 50 pts per hour",
        activity_type="training_hours",
        calculation="per_quantity",
        rate=50,
        apply_tier_multiplier=False,
        requires_approval=True,
    )
    account = counter_enrol(first_name="Ann", phone="0470000001", email=member_user.email)
    sign_in(member_user)
    page.goto("/me/claims/")
    page.select_option("#id_activity_type", "training_hours")
    page.fill("#id_quantity", "3")
    page.fill("#id_occurred_on", "2026-11-02")
    page.fill("#id_description", "Flat roofs safety course")
    page.set_input_files("#id_evidence", files=[{"name": "certificate.png", "mimeType": "image/png", "buffer": PNG}])
    page.click("main form button[type=submit]")
    page.wait_for_url("**/me/claims/")
    assert "Awaiting approval" in page.locator("table").inner_text()
    screenshot("claim-sent")

    staff = browser.new_context(base_url=live_server.url, locale="en-GB").new_page()
    from django.conf import settings as django_settings
    from django.test import Client

    client = Client()
    client.force_login(manager_user)
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    staff.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
    staff.goto(f"/staff/programs/{desk_program.slug}/claims/")
    assert "Flat roofs safety course" in staff.content()
    staff.click("main form button:has-text('Approve')")
    assert "Claim approved: 150 points" in staff.locator(".messages").inner_text()
    staff.context.close()

    page.goto(f"/me/statement/{account.pk}/")
    assert "150 pts: 50 pts x 3 (Training: 50 pts per hour)" in page.locator("table").inner_text()
    screenshot("statement-after-approval")
