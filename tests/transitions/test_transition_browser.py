"""A program transition in real Chromium: a member sees the banner on their phone, reads the new terms
and accepts; staff read the migration's dry run."""

import pytest

from loyalty.models import TermsAcceptance

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_a_member_sees_the_banner_reads_the_new_terms_and_accepts(page, screenshot, sign_in, scenario, ann):
    page.set_viewport_size(PHONE)
    sign_in(ann.member.user)

    page.goto("/me/")
    banner = page.locator("[data-testid=transition-banner]")
    assert "accept the new terms by" in banner.inner_text()
    assert "400 pts become a voucher worth 4.40 EUR" in banner.inner_text()
    screenshot("banner")

    banner.get_by_role("link", name="Read the new terms and accept").click()
    page.wait_for_url(f"**/me/transitions/{scenario.transition.pk}/")
    assert "Terms of the program." in page.locator(".terms-text").inner_text()
    assert "your 400 pts become 266 pts in Green Club" in page.locator("[data-testid=if-accepted]").inner_text()
    page.get_by_label("I have read the new terms and accept them.").check()
    screenshot("terms")
    page.get_by_role("button", name="Accept the new terms").click()

    page.wait_for_url("**/me/")
    assert "you accepted the new terms" in page.locator("[data-testid=transition-banner]").inner_text()
    acceptance = TermsAcceptance.objects.get(account=ann, terms=scenario.transition.terms)
    assert acceptance.channel == "online"
    screenshot("accepted")


def test_staff_read_the_dry_run_of_the_migration(page, screenshot, sign_in, scenario, manager_user):
    sign_in(manager_user)

    page.goto(f"/staff/programs/{scenario.old.slug}/transitions/{scenario.transition.pk}/plan/")

    table = page.locator("[data-testid=dry-run]")
    assert table.locator("tbody tr").count() == 9
    assert page.locator("[data-testid=dry-accounts]").inner_text() == "9"
    page.locator("#dry-run").scroll_into_view_if_needed()
    screenshot("dry-run")
