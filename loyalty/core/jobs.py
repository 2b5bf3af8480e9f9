"""Background jobs: a registry each app fills from its `jobs.py`, and the runs that carry them out.

A job says how to cut its work into chunks (`plan`) and how to do one chunk (`run_chunk`, one
transaction, set-based SQL in the app's services). Starting a job records a `JobRun` and its chunks
and queues a few `work` tasks; each claims the next chunk with `FOR UPDATE SKIP LOCKED`, does it and
marks it done in the same transaction. So several workers share one run, a worker killed halfway
loses only the chunk it was on (rolled back), and a restarted worker resumes where the run stopped.
Starting a job twice for the same period finds the first run instead of doing the work again.

This module is layer 0: it knows jobs only by name, never by importing the apps that declare them.
"""

import datetime
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.utils import timezone
from django.utils.module_loading import autodiscover_modules
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from loyalty.core.exceptions import ApplicationError
from loyalty.core.models import JobChunk, JobRun

logger = logging.getLogger(__name__)

# One chunk of work: (scope, low, high); a scope is an app's own label, e.g. a program's id.
Chunk = tuple[str, int, int]
WHOLE = [("", 0, 0)]  # the plan of a job done in one statement


@dataclass(frozen=True)
class Job:
    name: str  # stable, stored on runs and in the schedule: "<app>.<what it does>"
    title: str  # lazy translated
    description: str  # lazy translated
    cadence: str  # "5 minutes", "hourly", "daily" or "weekly": the period a scheduled run covers
    crontab: dict[str, str]  # the default schedule (minute, hour, day_of_week), editable in the admin
    run_chunk: Callable[[str, int, int, datetime.datetime], tuple[int, int]]  # -> (rows, points)
    plan: Callable[[datetime.datetime, int], Iterable[Chunk]] = field(default=lambda as_of, chunk_size: WHOLE)
    counts_points: bool = False  # whether `points` means something for this job


def whole(count: Callable[[datetime.datetime], int]) -> Callable[[str, int, int, datetime.datetime], tuple[int, int]]:
    """The `run_chunk` of a job done in one statement (plan WHOLE): `count(as_of)` returns the rows it changed."""
    return lambda scope, low, high, as_of: (count(as_of), 0)


_registry: dict[str, Job] = {}


def register(job: Job) -> Job:
    _registry[job.name] = job
    return job


def discover() -> None:
    """Import every installed app's `jobs` module (from CoreConfig.ready)."""
    autodiscover_modules("jobs")


def registered() -> list[Job]:
    return sorted(_registry.values(), key=lambda job: job.name)


def get(name: str) -> Job:
    try:
        return _registry[name]
    except KeyError:
        raise ApplicationError(_("There is no job called “%(name)s”.") % {"name": name}, code="not_found") from None


# --- periods ---------------------------------------------------------------------------------------


def period_of(job: Job, at: datetime.datetime) -> str:
    """The period a scheduled run at `at` covers, in the program's time zone."""
    local = timezone.localtime(at)
    if job.cadence == "5 minutes":
        return local.replace(minute=local.minute - local.minute % 5).strftime("%Y-%m-%dT%H:%M")
    if job.cadence == "hourly":
        return local.strftime("%Y-%m-%dT%H")
    if job.cadence == "weekly":
        year, week, _day = local.isocalendar()
        return f"{year}-W{week:02d}"
    return local.strftime("%Y-%m-%d")


# --- runs --------------------------------------------------------------------------------------------


def _queue_work(run: JobRun, *, workers: int | None = None) -> None:
    from loyalty.core import tasks  # the tasks module imports this one

    for _n in range(workers or settings.JOB_PARALLELISM):
        tasks.work_job_run.delay_on_commit(run.pk)


def job_run_start(
    *,
    job: str,
    period: str | None = None,
    as_of: datetime.datetime | None = None,
    requested_by=None,
    chunk_size: int | None = None,
) -> tuple[JobRun, bool]:
    """Record a run of `job` with its chunks and queue its work. Scheduled runs name their period and
    a second start for the same period returns the first run (and resumes it if it was interrupted);
    a start by hand is always a new run. Returns (run, created)."""
    spec = get(job)
    as_of = as_of or timezone.now()
    if period is None:
        trigger = JobRun.Trigger.MANUAL
        period = f"manual {timezone.localtime(as_of):%Y-%m-%d %H:%M:%S.%f}"
    else:
        trigger = JobRun.Trigger.SCHEDULE
    try:
        with transaction.atomic():
            run = JobRun.objects.create(job=job, period=period, as_of=as_of, trigger=trigger, requested_by=requested_by)
            chunks = [
                JobChunk(run=run, scope=scope, low=low, high=high)
                for scope, low, high in spec.plan(as_of, chunk_size or settings.JOB_CHUNK_SIZE)
            ]
            JobChunk.objects.bulk_create(chunks, batch_size=1000)
            run.chunks_total = len(chunks)
            run.save(update_fields=["chunks_total"])
            _queue_work(run, workers=min(len(chunks), settings.JOB_PARALLELISM) or 1)
    except IntegrityError:
        run = JobRun.objects.get(job=job, period=period)
        if run.status == JobRun.Status.RUNNING:
            with transaction.atomic():
                _queue_work(run)
        return run, False
    return run, True


def _undone(run_id: int):
    return JobChunk.objects.filter(run_id=run_id, done_at__isnull=True)


def _claim(run_id: int) -> JobChunk | None:
    """The next chunk nobody holds; failing that, wait for one another worker holds: it is either done
    when its holder commits (then nothing is returned) or free again when its holder died."""
    chunk = _undone(run_id).select_for_update(skip_locked=True).order_by("pk").first()
    if chunk is None:
        chunk = _undone(run_id).select_for_update().order_by("pk").first()
    return chunk


def job_run_work(*, run_id: int, seconds: float | None = None) -> int:
    """Do chunks of a run until none is left (then mark it succeeded) or `seconds` have passed (then
    queue a follow-up, so no task outlives the worker's time limit). Returns the chunks done here."""
    run = JobRun.objects.get(pk=run_id)
    if run.status != JobRun.Status.RUNNING:
        return 0
    spec = get(run.job)
    deadline = time.monotonic() + (seconds or settings.JOB_TASK_SECONDS)
    done = 0
    while True:
        if time.monotonic() > deadline:
            with transaction.atomic():
                _queue_work(run, workers=1)
            return done
        try:
            with transaction.atomic():
                chunk = _claim(run_id)
                if chunk is None:
                    break
                if not JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING).exists():
                    return done  # failed or retried elsewhere meanwhile
                rows, points = spec.run_chunk(chunk.scope, chunk.low, chunk.high, run.as_of)
                JobChunk.objects.filter(pk=chunk.pk).update(done_at=timezone.now(), rows=rows, points=points)
        except Exception as exc:
            JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING).update(
                status=JobRun.Status.FAILED, finished_at=timezone.now(), error=f"{type(exc).__name__}: {exc}"[:2000]
            )
            logger.exception("Job run %s (%s) failed", run_id, run.job)
            raise
        done += 1
    # One statement: only the worker that sees no chunk left marks the run succeeded.
    JobRun.objects.filter(pk=run_id, status=JobRun.Status.RUNNING).exclude(
        Exists(_undone(run_id).filter(run_id=OuterRef("pk")))
    ).update(status=JobRun.Status.SUCCEEDED, finished_at=timezone.now())
    return done


@transaction.atomic
def job_run_retry(*, run: JobRun) -> JobRun:
    """Take a failed run up again where it stopped (its done chunks stay done)."""
    run = JobRun.objects.select_for_update().get(pk=run.pk)
    if run.status != JobRun.Status.FAILED:
        raise ApplicationError(_("Only a failed run can be retried."), code="job_not_failed")
    run.status, run.finished_at, run.error = JobRun.Status.RUNNING, None, ""
    run.save(update_fields=["status", "finished_at", "error"])
    _queue_work(run)
    return run


def job_runs_resume() -> int:
    """Queue work for every run still marked running (after a worker restart, and every few minutes):
    a run whose worker died goes on; a run being worked gets a helper that finds nothing to claim."""
    runs = list(JobRun.objects.filter(status=JobRun.Status.RUNNING).filter(Exists(_undone(OuterRef("pk")))))
    with transaction.atomic():
        for run in runs:
            _queue_work(run, workers=1)
    return len(runs)


def job_runs_purge(*, older_than: datetime.timedelta = datetime.timedelta(days=90)) -> int:
    """Forget finished runs (and their chunks) older than `older_than`."""
    deleted, _by_model = JobRun.objects.filter(
        finished_at__lt=timezone.now() - older_than, status__in=[JobRun.Status.SUCCEEDED, JobRun.Status.FAILED]
    ).delete()
    return deleted


# --- reads -------------------------------------------------------------------------------------------


def recent_runs(*, limit: int = 50) -> list[JobRun]:
    """The latest runs with their progress, each with its job's `title`, whether its points count
    (`counts_points`) and `percent` done."""
    runs = list(runs_with_progress().select_related("requested_by")[:limit])
    for run in runs:
        spec = _registry.get(run.job)
        run.title = spec.title if spec else run.job
        run.counts_points = spec.counts_points if spec else False
        run.percent = round(100 * run.chunks_done / run.chunks_total) if run.chunks_total else 100
    return runs


def runs_with_progress(queryset=None):
    """Runs with their chunks done, rows and points so far, in one query."""
    queryset = JobRun.objects.all() if queryset is None else queryset
    done = Q(chunks__done_at__isnull=False)
    return queryset.annotate(
        chunks_done=Count("chunks", filter=done),
        rows=Sum("chunks__rows", filter=done, default=0),
        points=Sum("chunks__points", filter=done, default=0),
    )


register(
    Job(
        name="core.purge_job_runs",
        title=gettext_lazy("Forget old job runs"),
        description=gettext_lazy("Runs finished more than 90 days ago are deleted from this page."),
        cadence="daily",
        crontab={"minute": "40", "hour": "4"},
        run_chunk=whole(lambda as_of: job_runs_purge()),
    )
)
