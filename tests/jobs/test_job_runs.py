"""The job runner in-process (tasks eager): runs, periods, checkpoints, failures, retries, resumption,
and the schedule; tests/jobs/test_worker.py does the same through real workers."""

import datetime
import threading
import time

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone
from django_celery_beat.models import CrontabSchedule, PeriodicTask

from loyalty.core import jobs, schedule
from loyalty.core.models import JobChunk, JobRun
from loyalty.models import LedgerEntry
from tests.jobs.conftest import NOW, books, lapsed_lots, ledger_of, make_program

pytestmark = pytest.mark.postgres  # the books are written with PostgreSQL's generate_series

ENGINE_JOBS = {  # job -> the clock it runs to: the pending lot is released 20 days after NOW
    "loyalty.expire_points": NOW,
    "loyalty.release_pending": NOW + datetime.timedelta(days=25),
    "loyalty.evaluate_tiers": NOW,
}


@pytest.fixture
def program(db):
    program = make_program("runs")
    books(program, 30)
    return program


def test_a_scheduled_run_works_through_its_chunks_and_records_what_it_did(program, run_job):
    points_lapsing = sum(
        LedgerEntry.objects.filter(program=program, kind="earn", expires_at__lte=NOW).values_list(
            "remaining", flat=True
        )
    )

    run = run_job("loyalty.expire_points", period="2026-11-23", as_of=NOW, chunk_size=10)

    assert (run.status, run.trigger, run.period) == ("succeeded", "schedule", "2026-11-23")
    assert (run.chunks_total, run.chunks_done) == (3, 3)
    assert (run.rows, run.points) == (60, points_lapsing)
    assert run.finished_at is not None and run.error == ""
    assert lapsed_lots(program, NOW) == 0


@pytest.mark.parametrize("job", ENGINE_JOBS)
def test_running_a_job_twice_for_the_same_period_changes_nothing_the_second_time(program, run_job, job):
    as_of = ENGINE_JOBS[job]
    first = run_job(job, period="P1", as_of=as_of, chunk_size=10)
    assert first.rows > 0
    books_after_first = ledger_of(program)

    again = run_job(job, period="P1", as_of=as_of, chunk_size=10)  # the schedule fires twice
    by_hand = run_job(job, as_of=as_of, chunk_size=10)  # someone presses "run now" for the same moment

    assert again.pk == first.pk and JobRun.objects.filter(job=job, period="P1").count() == 1
    assert (by_hand.trigger, by_hand.status, by_hand.rows) == ("manual", "succeeded", 0)
    assert ledger_of(program) == books_after_first


def _flaky_job(calls: list, fail_on: set):
    def run_chunk(scope, low, high, as_of):
        calls.append(low)
        if low in fail_on:
            fail_on.discard(low)
            raise RuntimeError(f"chunk {low} could not reach the mail server")
        return 1, 0

    return jobs.Job(
        name="tests.flaky",
        title="Flaky",
        description="Fails once on chunk 3.",
        cadence="daily",
        crontab={},
        plan=lambda as_of, chunk_size: [("", low, low + 1) for low in range(1, 6)],
        run_chunk=run_chunk,
    )


def test_a_failing_chunk_fails_the_run_and_a_retry_goes_on_from_where_it_stopped(
    db, monkeypatch, run_job, django_capture_on_commit_callbacks
):
    calls = []
    monkeypatch.setitem(jobs._registry, "tests.flaky", _flaky_job(calls, fail_on={3}))

    with pytest.raises(RuntimeError, match="chunk 3"):
        run_job("tests.flaky")

    run = jobs.runs_with_progress().get(job="tests.flaky")
    assert (run.status, run.chunks_done) == ("failed", 2)
    assert run.error == "RuntimeError: chunk 3 could not reach the mail server"
    with django_capture_on_commit_callbacks(execute=True):
        jobs.job_run_retry(run=run)
    run = jobs.runs_with_progress().get(pk=run.pk)
    assert (run.status, run.chunks_done, run.rows, run.error) == ("succeeded", 5, 5, "")
    assert calls == [1, 2, 3, 3, 4, 5]  # the done chunks were not done again


def test_only_a_failed_run_can_be_retried(program, run_job):
    run = run_job("loyalty.expire_points", as_of=NOW)
    with pytest.raises(jobs.ApplicationError, match="Only a failed run"):
        jobs.job_run_retry(run=run)


def test_a_run_left_by_stopped_workers_is_resumed(program, django_capture_on_commit_callbacks):
    # given a run recorded whose work never started (its queued tasks are lost with a dead worker)
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="P", as_of=NOW, chunk_size=10)
    assert JobChunk.objects.filter(run=run, done_at__isnull=True).count() == 3

    # when a worker starts (it resumes every run still marked running; here in-process)
    with django_capture_on_commit_callbacks(execute=True):
        assert jobs.job_runs_resume() == 1

    # then the run is done, and a finished run is not resumed again
    assert JobRun.objects.get(pk=run.pk).status == "succeeded"
    assert lapsed_lots(program, NOW) == 0
    assert jobs.job_runs_resume() == 0


@pytest.mark.django_db(transaction=True)
def test_a_chunk_held_by_a_worker_that_dies_is_taken_over_by_the_one_still_working(queue_only):
    # given a run of three chunks, and a worker that has claimed the first one
    program = make_program("held")
    books(program, 30)
    run, _created = jobs.job_run_start(job="loyalty.expire_points", period="P", as_of=NOW, chunk_size=10)
    claimed, die = threading.Event(), threading.Event()

    def doomed_worker():
        try:
            with transaction.atomic():
                assert jobs._claim(run.pk) is not None
                claimed.set()
                die.wait(10)
                raise ConnectionAbortedError  # the worker dies: its transaction rolls back, its lock goes
        except ConnectionAbortedError:
            pass
        finally:
            connections.close_all()

    doomed = threading.Thread(target=doomed_worker)
    doomed.start()
    assert claimed.wait(10)

    # when another worker works the run: it does the free chunks, then waits on the held one
    def release_once_waiting():
        with connections["default"].cursor() as cursor:
            for _attempt in range(200):
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
                if cursor.fetchone()[0]:
                    break
                time.sleep(0.05)
        connections.close_all()
        die.set()

    watcher = threading.Thread(target=release_once_waiting)
    watcher.start()
    done_here = jobs.job_run_work(run_id=run.pk)
    doomed.join(10)
    watcher.join(10)

    # then it did all three chunks, including the one the dead worker had held
    assert done_here == 3
    assert JobRun.objects.get(pk=run.pk).status == "succeeded"
    assert lapsed_lots(program, NOW) == 0
    assert LedgerEntry.objects.filter(program=program, kind="expire").count() == 60


def test_old_finished_runs_are_forgotten_and_running_ones_kept(program, run_job):
    old = run_job("loyalty.expire_points", period="old", as_of=NOW)
    JobRun.objects.filter(pk=old.pk).update(finished_at=NOW - datetime.timedelta(days=91))
    recent = run_job("loyalty.expire_points", period="recent", as_of=NOW)
    running, _created = jobs.job_run_start(job="loyalty.release_pending", period="running", as_of=NOW)  # not worked
    JobRun.objects.filter(pk=running.pk).update(started_at=NOW - datetime.timedelta(days=200))

    assert jobs.job_runs_purge() == 1 + old.chunks_total  # the run and its chunks
    assert set(JobRun.objects.values_list("period", flat=True)) == {"recent", "running"}
    assert recent.status == "succeeded"


def test_each_cadence_names_its_period_in_local_time(db):
    late_sunday_utc = datetime.datetime(2026, 11, 29, 23, 30, tzinfo=datetime.UTC)  # Monday 00:30 in Brussels
    assert jobs.period_of(jobs.get("loyalty.release_pending"), late_sunday_utc) == "2026-11-30T00"
    assert jobs.period_of(jobs.get("loyalty.expire_points"), late_sunday_utc) == "2026-11-30"
    assert jobs.period_of(jobs.get("loyalty.warn_expiring_points"), late_sunday_utc) == "2026-W49"


def test_an_unknown_job_is_refused_by_name(db):
    with pytest.raises(jobs.ApplicationError, match="no job called “nothing”"):
        jobs.job_run_start(job="nothing")


# --- the schedule ------------------------------------------------------------------------------------


def test_every_job_is_scheduled_after_migrate_with_the_sweep_that_resumes_runs(db):
    tasks = {task.name: task for task in PeriodicTask.objects.select_related("crontab", "interval")}

    for job in jobs.registered():
        assert tasks[job.name].task == "core.start_job"
        assert tasks[job.name].kwargs == f'{{"job": "{job.name}"}}'
        assert tasks[job.name].enabled
    assert tasks["loyalty.release_pending"].crontab.hour == "*"
    assert (tasks["loyalty.expire_points"].crontab.minute, tasks["loyalty.expire_points"].crontab.hour) == ("15", "2")
    assert tasks["loyalty.warn_expiring_points"].crontab.day_of_week == "1"
    assert tasks[schedule.RESUME_TASK].interval.every == 5


def test_the_schedule_keeps_what_staff_changed_and_restores_what_was_deleted(db):
    task = PeriodicTask.objects.get(name="loyalty.expire_points")
    task.crontab = CrontabSchedule.objects.create(minute="0", hour="5", timezone="Europe/Brussels")
    task.enabled = False
    task.save()
    PeriodicTask.objects.filter(name="rewards.expire_vouchers").delete()

    assert schedule.schedule_install() == 1

    task.refresh_from_db()
    assert (task.crontab.hour, task.enabled) == ("5", False)
    assert PeriodicTask.objects.filter(name="rewards.expire_vouchers").exists()
    rows = {row["job"].name: row for row in schedule.scheduled_jobs()}
    assert rows["loyalty.expire_points"]["next_run"] is None  # paused
    next_vouchers = rows["rewards.expire_vouchers"]["next_run"]
    assert next_vouchers > timezone.now() and f"{timezone.localtime(next_vouchers):%H:%M:%S}" == "00:10:00"
    assert list(rows)[-1] == "loyalty.expire_points"  # soonest first, paused last


def test_the_worker_runs_the_job_runner_tasks_by_name(db):
    from loyalty.celery import app

    app.loader.import_default_modules()
    assert {"core.start_job", "core.work_job_run", "core.resume_job_runs"} <= set(app.tasks)
    assert connection.vendor == "postgresql"
