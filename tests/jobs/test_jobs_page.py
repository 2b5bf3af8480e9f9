"""The staff jobs page: who sees it, who may start or retry a run, and what it shows."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from loyalty.core import jobs
from loyalty.core.models import JobRun

pytestmark = pytest.mark.django_db

PAGE = "/staff/jobs/"


@pytest.mark.parametrize(("who", "status"), [("clerk_user", 403), ("member_user", 403)])
def test_clerks_and_members_are_refused_the_jobs_page(client, request, who, status):
    client.force_login(request.getfixturevalue(who))

    assert client.get(PAGE).status_code == status
    assert client.post(reverse("staff:job_start", args=["loyalty.expire_points"])).status_code == status
    assert not JobRun.objects.exists()


def test_visitors_are_sent_to_sign_in(client):
    assert client.get(PAGE).url.startswith(reverse("account_login"))


def test_an_analyst_sees_the_schedule_and_the_runs_but_cannot_start_or_retry_one(client, analyst_user, program):
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23")
    JobRun.objects.filter(pk=run.pk).update(
        status="failed", error="OperationalError: server closed", finished_at=run.started_at
    )
    client.force_login(analyst_user)

    page = client.get(PAGE)

    assert page.status_code == 200
    html = page.content.decode()
    for job in jobs.registered():
        assert str(job.title) in html
    assert "At 02:15" in html and "OperationalError: server closed" in html
    assert "Run now" not in html and "Retry" not in html
    assert client.post(reverse("staff:job_start", args=["loyalty.expire_points"])).status_code == 403
    assert client.post(reverse("staff:job_retry", args=[run.pk])).status_code == 403
    assert JobRun.objects.get(pk=run.pk).status == "failed"


def test_a_program_manager_starts_a_job_by_hand_and_sees_it_finished(
    client, manager_user, program, enrol, buy, django_capture_on_commit_callbacks
):
    client.force_login(manager_user)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("staff:job_start", args=["loyalty.release_pending"]), follow=True)

    run = jobs.runs_with_progress().get(job="loyalty.release_pending")
    assert (run.trigger, run.requested_by, run.status) == ("manual", manager_user, "succeeded")
    assert "“Release pending points” has started" in response.content.decode()
    assert f'data-run="{run.pk}"' in response.content.decode()


def test_a_program_manager_retries_a_failed_run(client, manager_user, program, django_capture_on_commit_callbacks):
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23")
    JobRun.objects.filter(pk=run.pk).update(status="failed", error="boom", finished_at=run.started_at)
    client.force_login(manager_user)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("staff:job_retry", args=[run.pk]))

    run.refresh_from_db()
    assert (run.status, run.error) == ("succeeded", "")


def test_an_unknown_job_cannot_be_started(client, manager_user):
    client.force_login(manager_user)

    assert client.post(reverse("staff:job_start", args=["no.such_job"])).status_code == 404


def test_the_runs_refresh_themselves_while_one_is_running_and_stop_after(client, analyst_user, program):
    client.force_login(analyst_user)
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23")  # queued, not worked

    running = client.get(PAGE, headers={"HX-Request": "true"}).content.decode()
    JobRun.objects.filter(pk=run.pk).update(status="succeeded", finished_at=run.started_at)
    done = client.get(PAGE, headers={"HX-Request": "true"}).content.decode()

    assert running.startswith('\n<div id="job-runs"') and 'hx-trigger="every 2s"' in running
    assert 'role="progressbar"' in running and "0 of " in running
    assert "hx-trigger" not in done and "<html" not in done


def test_the_page_costs_the_same_queries_with_many_runs(client, analyst_user, program):
    client.force_login(analyst_user)
    jobs.job_run_start(job="loyalty.expire_points", period="2026-11-01")
    client.get(PAGE)
    with CaptureQueriesContext(connection) as one_run:
        client.get(PAGE)
    for day in range(2, 30):
        jobs.job_run_start(job="loyalty.release_pending", period=f"2026-11-{day:02d}")

    with CaptureQueriesContext(connection) as many_runs:
        assert client.get(PAGE).status_code == 200

    assert len(many_runs) == len(one_run) <= 12
