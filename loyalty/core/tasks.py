"""Celery tasks of the job runner: thin wrappers around loyalty.core.jobs.

The schedule (django-celery-beat, in the database) calls `core.start_job` with a job's name; the
run's chunks are then worked by `core.work_job_run` tasks on any number of workers.
"""

from celery import shared_task
from django.utils import timezone

from loyalty.core import jobs


@shared_task(name="core.start_job")
def start_job(job: str) -> int:
    """Start the run of `job` for the current period (or resume it, if one was interrupted)."""
    spec = jobs.get(job)
    run, _created = jobs.job_run_start(job=job, period=jobs.period_of(spec, timezone.now()))
    return run.pk


@shared_task(name="core.work_job_run")
def work_job_run(run_id: int) -> int:
    return jobs.job_run_work(run_id=run_id)


@shared_task(name="core.resume_job_runs")
def resume_job_runs() -> int:
    return jobs.job_runs_resume()
