"""The jobs page in a real browser: the schedule, a run started by hand, and a running run's progress
bar moving on its own until the run is done."""

import pytest

from loyalty.core import jobs
from loyalty.core.models import JobRun
from tests.jobs.conftest import NOW, books, make_program

PHONE = {"width": 390, "height": 844}

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def test_a_manager_starts_a_job_by_hand_and_sees_how_it_went(page, screenshot, sign_in, manager_user):
    program = make_program("browser")
    books(program, 40)
    sign_in(manager_user)

    page.goto("/staff/jobs/")
    assert page.locator("tr[data-job]").count() == len(jobs.registered())
    screenshot("schedule")
    page.locator("tr[data-job='loyalty.expire_points'] button:has-text('Run now')").click()

    row = page.locator("#job-runs tbody tr").first
    assert "Expire points" in row.inner_text() and "succeeded" in row.inner_text()
    assert row.locator("[role=progressbar]").get_attribute("aria-valuenow") == "100"
    assert JobRun.objects.get().requested_by == manager_user
    screenshot("run-by-hand")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_a_running_run_shows_its_progress_without_reloading_on_a_phone(
    page, screenshot, sign_in, analyst_user, queue_only
):
    program = make_program("progress")
    books(program, 40)
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23", as_of=NOW, chunk_size=10)
    sign_in(analyst_user)

    page.goto("/staff/jobs/")
    bar = page.locator(f"tr[data-run='{run.pk}'] [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == "0"
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("running")

    jobs.job_run_work(run_id=run.pk)  # a worker does the run meanwhile

    page.locator(f"tr[data-run='{run.pk}'] .badge:has-text('succeeded')").wait_for(timeout=10_000)
    assert page.locator(f"tr[data-run='{run.pk}'] [role=progressbar]").get_attribute("aria-valuenow") == "100"
    assert "80" in page.locator(f"tr[data-run='{run.pk}']").inner_text()  # rows: two lapsed lots x 40
    screenshot("finished")
