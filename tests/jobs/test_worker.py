"""The jobs through real Celery workers on Redis and PostgreSQL: the same books as the services write
directly, and a worker killed halfway through a run loses nothing and does nothing twice."""

import pytest
from django.db.models import Count

from loyalty import services
from loyalty.core import jobs
from loyalty.core.models import JobChunk, JobRun
from loyalty.models import LedgerEntry
from loyalty.selectors import ledger_breaches
from tests.jobs.conftest import NOW, books, lapsed_lots, ledger_of, make_program, wait_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def finished(run: JobRun) -> JobRun:
    return wait_for(
        lambda: JobRun.objects.exclude(status=JobRun.Status.RUNNING).filter(pk=run.pk).first(),
        what=f"run {run.job} to finish",
    )


def test_expiry_and_tier_review_through_a_worker_write_the_same_books_as_the_services(start_worker):
    # given a program whose books a worker will bring up to date, in chunks shared by two processes
    through_worker = make_program("worker")
    books(through_worker, 400)
    start_worker("books", pool="prefork", concurrency=2)

    # when the expiry and the tier review run as scheduled jobs
    expiry, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23", as_of=NOW, chunk_size=50)
    assert finished(expiry).status == JobRun.Status.SUCCEEDED
    review, _created = jobs.job_run_start(job="loyalty.evaluate_tiers", period="2026-11-23", as_of=NOW, chunk_size=50)
    assert finished(review).status == JobRun.Status.SUCCEEDED

    # and the same books in another program are brought up to date by calling the services directly
    direct = make_program("direct")
    books(direct, 400)
    expired = services.expire_due(program=direct, as_of=NOW)
    reviewed = services.evaluate_tiers(program=direct, as_of=NOW)

    # then both programs hold the same ledger, the same accounts and the same tier changes
    assert expired.rows == 800 and reviewed.rows == 300  # two lapsed lots per account; 3 in 4 accounts due
    assert ledger_of(through_worker) == ledger_of(direct)
    progress = jobs.runs_with_progress().get(pk=expiry.pk)
    assert (progress.chunks_done, progress.chunks_total, progress.rows) == (8, 8, 800)
    assert progress.points == expired.points
    assert ledger_breaches() == []


def test_a_worker_killed_halfway_through_an_expiry_run_leaves_every_lot_expired_exactly_once(start_worker):
    # given a large expiry run: 6,000 accounts with two lapsed lots each, in 30 chunks
    program = make_program("large")
    books(program, 6000)
    assert lapsed_lots(program, NOW) == 12_000
    first = start_worker("first")
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="2026-11-23", as_of=NOW, chunk_size=200)
    assert run.chunks_total == 30

    # when the worker is killed (SIGKILL, no chance to clean up) partway through
    wait_for(lambda: JobChunk.objects.filter(run=run, done_at__isnull=False).count() >= 12, what="12 chunks done")
    first.kill()
    done_when_killed = JobChunk.objects.filter(run=run, done_at__isnull=False).count()
    assert 12 <= done_when_killed < 30, "the kill must land halfway"
    assert JobRun.objects.get(pk=run.pk).status == JobRun.Status.RUNNING

    # and another worker starts
    start_worker("second")

    # then it finishes the run, and every lapsed lot was expired exactly once
    assert finished(run).status == JobRun.Status.SUCCEEDED
    assert lapsed_lots(program, NOW) == 0
    expiries = LedgerEntry.objects.filter(program=program, kind=LedgerEntry.Kind.EXPIRE)
    assert expiries.count() == 12_000
    assert not expiries.values("reverses").annotate(n=Count("pk")).filter(n__gt=1).exists()
    progress = jobs.runs_with_progress().get(pk=run.pk)
    assert (progress.chunks_done, progress.rows) == (30, 12_000)
    assert ledger_breaches() == []


def test_the_scheduled_task_started_twice_in_one_period_runs_once(start_worker):
    # given a worker and a program with lapsed points
    program = make_program("twice")
    books(program, 50)
    start_worker("schedule")
    from loyalty.core.tasks import start_job

    # when beat fires the daily expiry twice on the same day (a restarted beat, a second beat by mistake)
    first_id = start_job.delay("loyalty.expire_points").get(timeout=60)
    second_id = start_job.delay("loyalty.expire_points").get(timeout=60)

    # then there is one run, and the points expired once
    assert first_id == second_id
    assert finished(JobRun.objects.get(pk=first_id)).status == JobRun.Status.SUCCEEDED
    assert JobRun.objects.filter(job="loyalty.expire_points").count() == 1
    assert LedgerEntry.objects.filter(program=program, kind=LedgerEntry.Kind.EXPIRE).count() == 100
