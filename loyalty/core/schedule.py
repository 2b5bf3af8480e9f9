"""The periodic schedule, stored by django-celery-beat in the database (visible and editable in the admin).

After every `migrate`, each registered job that has no periodic task yet gets one with the job's
default crontab (named after the job), plus the five-minute sweep that resumes interrupted runs.
Entries that exist are left alone, so a schedule staff changed in the admin stays as they set it.
"""

import calendar
import datetime
import json

from cron_descriptor import ExpressionDescriptor, Options
from django.conf import settings
from django.utils import timezone, translation
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _

from loyalty.core import jobs

RESUME_TASK = "core.resume_job_runs"
RESUME_EVERY_MINUTES = 5
CRON_LOCALES = {"en": "en_US", "fr": "fr_FR", "nl": "nl_NL"}


def schedule_install() -> int:
    """Create the missing periodic tasks; returns how many were created."""
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    created = 0
    existing = set(PeriodicTask.objects.values_list("name", flat=True))
    for job in jobs.registered():
        if job.name in existing:
            continue
        crontab, _new = CrontabSchedule.objects.get_or_create(
            minute=job.crontab.get("minute", "0"),
            hour=job.crontab.get("hour", "*"),
            day_of_week=job.crontab.get("day_of_week", "*"),
            day_of_month="*",
            month_of_year="*",
            timezone=settings.TIME_ZONE,
        )
        PeriodicTask.objects.create(
            name=job.name,
            task="core.start_job",
            kwargs=json.dumps({"job": job.name}),
            crontab=crontab,
            description=str(job.description),
        )
        created += 1
    if RESUME_TASK not in existing:
        every, _new = IntervalSchedule.objects.get_or_create(
            every=RESUME_EVERY_MINUTES, period=IntervalSchedule.MINUTES
        )
        PeriodicTask.objects.create(
            name=RESUME_TASK,
            task=RESUME_TASK,
            interval=every,
            description="Resume job runs whose worker stopped (a new worker also does this when it starts).",
        )
        created += 1
    return created


def install_after_migrate(sender, **kwargs) -> None:
    schedule_install()


def scheduled_jobs() -> list[dict]:
    """Each registered job with its periodic task (None when it has been deleted in the admin), its
    `schedule` in words and the time of its next run (None when it is disabled or unscheduled)."""
    from django_celery_beat.models import PeriodicTask

    tasks = {task.name: task for task in PeriodicTask.objects.select_related("crontab", "interval")}
    now = timezone.now()
    rows = []
    for job in jobs.registered():
        task = tasks.get(job.name)
        next_run = None
        if task is not None and task.enabled and (task.crontab or task.interval):
            estimate = now + task.schedule.remaining_estimate(task.last_run_at or now)
            next_run = (estimate + datetime.timedelta(seconds=30)).replace(second=0, microsecond=0)  # to the minute
        rows.append({"job": job, "task": task, "schedule": schedule_text(task), "next_run": next_run})
    # Soonest first; jobs that will not run (paused, unscheduled) last.
    return sorted(rows, key=lambda row: (row["next_run"] is None, row["next_run"] or now, row["job"].name))


def schedule_text(task) -> str:
    """A periodic task's schedule in words, in the reader's language."""
    if task is None:
        return _("not scheduled")
    if task.interval is not None:
        return _("every %(every)s %(period)s") % {
            "every": task.interval.every,
            "period": task.interval.get_period_display().lower(),
        }
    crontab = task.crontab
    options = Options()
    options.locale_code = CRON_LOCALES.get(translation.get_language() or "en", "en_US")
    options.use_24hour_time_format = True
    expression = " ".join(
        [crontab.minute, crontab.hour, crontab.day_of_month, crontab.month_of_year, crontab.day_of_week]
    )
    try:
        text = ExpressionDescriptor(expression, options).get_description()
    except Exception:  # an expression cron-descriptor cannot read is still shown as written
        return expression
    # cron-descriptor translates its sentences but leaves day names in English.
    for number, name in enumerate(calendar.day_name):
        text = text.replace(name, str(WEEKDAYS[number]))
    return text
