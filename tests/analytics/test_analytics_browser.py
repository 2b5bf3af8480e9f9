"""The analytics pages on the demo program in real Chromium, on a desktop and on a phone."""

import io

import pytest
from django.core.management import call_command

from loyalty import analytics as ledger_analytics
from loyalty import services
from loyalty.models import Program

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


@pytest.fixture
def demo_program(db):
    call_command("seed_demo", "--members", "40", stdout=io.StringIO())
    program = Program.objects.exclude(status=Program.Status.DRAFT).order_by("name").first()
    ledger_analytics.ledger_months_refresh(program=program)
    services.account_values_refresh(program=program)
    return program


def test_an_analyst_reads_the_overview_and_the_liability_of_the_demo_program(
    page, screenshot, sign_in, analyst_user, demo_program
):
    sign_in(analyst_user)

    page.goto("/staff/")
    page.click("text=Open the analytics")
    page.wait_for_url("**/staff/analytics/")
    assert demo_program.name in page.locator("h1").inner_text()
    assert page.locator("figure.chart svg").count() == 4  # drawn on the server, no script
    page.locator("summary", has_text="The numbers").first.click()
    assert page.locator("details[open] table tbody tr").count() == 12
    screenshot("overview")

    page.click("nav.subnav >> text=Liability and breakage")
    page.wait_for_url("**/staff/analytics/liability/**")
    assert page.locator(".badge", has_text="Reconciled").is_visible()
    assert page.locator("table.rollforward tbody tr").count() == 12
    screenshot("liability")

    with page.expect_download() as download:
        page.click("text=Download CSV")
    assert download.value.suggested_filename == f"{demo_program.slug}-liability.csv"

    page.click("nav.subnav >> text=Value pyramid")
    page.wait_for_url("**/staff/analytics/value/**")
    assert page.locator("text=Top against bottom").is_visible()
    screenshot("value-pyramid")

    page.click("nav.subnav >> text=Cohorts")
    page.wait_for_url("**/staff/analytics/cohorts/**")
    screenshot("cohorts")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_the_overview_fits_a_phone(page, screenshot, sign_in, manager_user, demo_program):
    sign_in(manager_user)

    page.goto("/staff/analytics/")

    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("overview-phone")
    page.goto("/staff/analytics/liability/")
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("liability-phone")
