"""Program staff in real Chromium: the program overview, the htmx earn previewer, the tier ladder editor."""

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_manager_previews_what_a_purchase_earns_without_leaving_the_page(
    page, screenshot, sign_in, manager_user, program
):
    sign_in(manager_user)
    page.goto(f"/staff/programs/{program.slug}/")
    assert page.locator("h1").inner_text().startswith("Blue Rewards")
    assert page.locator(".ladder-step").count() == 4

    page.select_option("#id_tier", label="Gold")
    page.fill("#id_amount", "80")
    page.click("form[hx-post] button[type=submit]")

    result = page.locator("#preview-result .explanation")
    result.wait_for()
    assert result.inner_text() == "120 pts: 1 pt per EUR 1 on EUR 80, x1.5 Gold (Base earning)"
    assert page.url.endswith(f"/staff/programs/{program.slug}/")  # swapped in place by htmx
    screenshot("program-overview")


def test_the_tier_ladder_editor_refuses_overlapping_tiers_and_says_why(
    page, screenshot, sign_in, manager_user, program
):
    sign_in(manager_user)
    page.goto(f"/staff/programs/{program.slug}/tiers/")

    page.fill("#id_form-2-threshold", "900")  # Gold below Silver's 1,000
    page.click("main form button[type=submit]")

    alert = page.locator("[role=alert]")
    alert.wait_for()
    assert "Gold (rank 3) needs a threshold above Silver's 1000" in alert.inner_text()
    screenshot("ladder-refused")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_the_program_overview_reads_on_a_phone(page, screenshot, sign_in, analyst_user, program):
    sign_in(analyst_user)
    page.goto(f"/staff/programs/{program.slug}/")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert page.locator("text=Edit the ladder").count() == 0  # analysts read, they do not edit
    screenshot("overview-phone")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_a_manager_approves_a_claim_and_adjusts_points_on_a_phone(
    page, screenshot, sign_in, manager_user, program, enrol
):
    from decimal import Decimal

    from django.utils import timezone

    from loyalty import services
    from tests.factories import EarnRuleFactory

    EarnRuleFactory(
        program=program, name="Training", activity_type="training_hours", calculation="per_quantity", rate=Decimal("40")
    )
    account = enrol(program)
    services.earn_for_activity(
        account=account, activity_type="training_hours", quantity=2, occurred_at=timezone.now(), idempotency_key="c1"
    )
    sign_in(manager_user)

    page.goto("/staff/programs/")
    assert page.locator("td.num").nth(2).inner_text() == "1"  # one claim waiting
    screenshot("program-list-phone")
    page.goto(f"/staff/programs/{program.slug}/claims/")
    screenshot("claims-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    page.click("main form button:has-text('Approve')")
    assert "Claim approved: 80 points" in page.locator(".messages").inner_text()

    page.goto(f"/staff/programs/{program.slug}/adjust/")
    page.fill("#id_member_no", account.member.member_no)
    page.fill("#id_points", "-500")
    page.fill("#id_reason", "Duplicate receipt")
    page.click("main form button[type=submit]")
    assert "below zero: 80 points available" in page.content()
    screenshot("adjust-refused-phone")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
