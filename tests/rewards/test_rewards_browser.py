"""Rewards in real Chromium: a member redeems a voucher reward (htmx confirmation) and finds it in
"My vouchers"; a clerk uses that code at the desk; a second use is refused with the date and store of
the first. The staff catalogue on a phone."""

from decimal import Decimal

import pytest
from django.conf import settings
from django.test import Client

from rewards import codes
from rewards import services as reward_services
from rewards.models import Voucher
from tests.conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def catalogue(shop):
    program = shop
    for name, kind, cost, value, fulfilment, extra in [
        ("EUR 5 voucher", "voucher_amount", 500, Decimal("5"), "voucher", {"featured": True}),
        ("Coffee at the counter", "merchandise", 60, None, "voucher", {}),
        ("Donate EUR 5 to charity", "donation", 500, Decimal("5"), "manual", {}),
        (
            "Pro drill set",
            "merchandise",
            4500,
            None,
            "manual",
            {"stock": 3, "min_tier": program.tiers.get(name="Gold")},
        ),
        ("Big voucher", "voucher_amount", 1500, Decimal("15"), "voucher", {}),
    ]:
        reward_services.reward_save(
            program=program, name=name, kind=kind, points_cost=cost, value=value, fulfilment=fulfilment, **extra
        )
    return program


@pytest.fixture
def ann(catalogue, signed_in_member):
    return signed_in_member("700.00")


def _signed_in_context(browser, live_server, user, viewport):
    client = Client()
    client.force_login(user)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    context = browser.new_context(base_url=live_server.url, viewport=viewport, locale="en-GB")
    context.set_default_timeout(10_000)
    context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url, "httpOnly": True}])
    return context


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_a_member_redeems_a_voucher_and_a_clerk_uses_it_once(
    browser, live_server, page, screenshot, sign_in, member_user, clerk_user, ann, store
):
    sign_in(member_user)
    page.goto("/me/")
    assert "Rewards within reach" in page.content()
    screenshot("dashboard-rewards-phone")

    page.goto("/me/rewards/")
    assert page.locator("[data-testid=balance]").inner_text() == "700"
    assert "Needs Gold" in page.content() and "800 more points" in page.content()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("catalogue-phone")

    page.click("text=EUR 5 voucher")
    page.click("#redeem-box a:has-text('Redeem')")
    page.locator("text=Confirm your redemption").wait_for()  # swapped in by htmx, no page load
    assert "/rewards/" in page.url and "confirm" not in page.url
    screenshot("confirm-phone")
    page.click("button:has-text('Yes, redeem')")
    page.wait_for_url("**/me/vouchers/*/")
    code = page.locator("[data-testid=voucher-code]").inner_text()
    assert code == codes.display(Voucher.objects.get().code)
    assert page.locator(".voucher-qr svg").count() == 1
    screenshot("voucher-phone")

    page.goto("/me/vouchers/")
    assert page.locator("[data-testid=voucher]").count() == 1 and code in page.content()
    screenshot("my-vouchers-phone")

    clerk = _signed_in_context(browser, live_server, clerk_user, {"width": 1280, "height": 800}).new_page()
    clerk.goto("/desk/vouchers/")
    clerk.fill("#id_code", code.lower().replace("-", " "))
    clerk.click("main form button:has-text('Check the voucher')")
    clerk.locator("text=Valid: it can be used now").wait_for()
    assert "Ann Smets" in clerk.content()
    save_screenshot(clerk, "desk-voucher", "checked")
    clerk.click("button:has-text('Use the voucher')")
    assert "used: EUR 5 voucher for Ann Smets" in clerk.locator(".messages").inner_text()

    clerk.fill("#id_code", code)
    clerk.click("main form button:has-text('Check the voucher')")
    refusal = clerk.locator("[data-testid=voucher-refusal]")
    refusal.wait_for()
    assert "already used on" in refusal.inner_text() and store.name in refusal.inner_text()
    save_screenshot(clerk, "desk-voucher", "refused-second-use")
    clerk.context.close()

    page.goto("/me/vouchers/")
    assert page.locator("[data-testid=voucher]").count() == 0 and store.name in page.content()


def test_a_clerk_redeems_a_reward_for_a_customer_at_the_desk(page, screenshot, sign_in, clerk_user, ann):
    sign_in(clerk_user)
    page.goto(f"/desk/members/{ann.member.member_no}/")
    page.select_option("#id_reward", label="Coffee at the counter · 60 points")
    page.click("button:has-text('Redeem for the customer')")

    code = page.locator("[data-testid=voucher-code]")
    code.wait_for()
    assert code.inner_text() == codes.display(Voucher.objects.get().code)
    assert page.locator("[data-testid=balance]").first.inner_text() == "640"
    screenshot("desk-redeemed")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_the_staff_catalogue_shows_stock_and_redemptions_on_a_phone(page, screenshot, sign_in, manager_user, ann):
    reward_services.redeem(
        account=ann,
        reward=ann.program.rewards.get(name="Donate EUR 5 to charity"),
        idempotency_key="d",
        channel="online",
    )
    sign_in(manager_user)

    page.goto(f"/staff/programs/{ann.program.slug}/rewards/")
    assert page.locator("tbody tr").count() == 5
    assert "1 to fulfil" in page.content()
    screenshot("staff-catalogue-phone")
    page.click("text=1 to fulfil")
    assert "Donate EUR 5 to charity · Ann Smets" in page.locator("main").inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("fulfilment-phone")
