"""The staff "jobs" page (/staff/jobs/): every scheduled job with its next run, recent runs with their
progress (refreshed while one runs), and, for program managers, "run now" and "retry".

It lives in `portal` because it lists the jobs of every app; the runs are loyalty.core.jobs'.
"""

import calendar

from cron_descriptor import ExpressionDescriptor, Options
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.dates import WEEKDAYS
from django.utils.translation import gettext as _
from django.views import View

from loyalty.core import jobs, schedule
from loyalty.core.exceptions import ApplicationError
from loyalty.core.models import JobRun

RECENT_RUNS = 50
CRON_LOCALES = {"en": "en_US", "fr": "fr_FR", "nl": "nl_NL"}


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


class JobsView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "core.view_jobrun")

    def get(self, request):
        runs = list(jobs.runs_with_progress().select_related("requested_by")[:RECENT_RUNS])
        specs = {job.name: job for job in jobs.registered()}
        for run in runs:
            spec = specs.get(run.job)
            run.title = spec.title if spec else run.job
            run.counts_points = spec.counts_points if spec else False
            run.percent = round(100 * run.chunks_done / run.chunks_total) if run.chunks_total else 100
        context = {"runs": runs, "any_running": any(run.status == JobRun.Status.RUNNING for run in runs)}
        if request.htmx:
            return render(request, "staff/_job_runs.html", context)
        last_runs = {}
        for run in runs:
            last_runs.setdefault(run.job, run)
        scheduled = schedule.scheduled_jobs()
        for row in scheduled:
            row["schedule"] = schedule_text(row["task"])
            row["last_run"] = last_runs.get(row["job"].name)
        return render(request, "staff/jobs.html", {**context, "scheduled": scheduled})


class JobStartView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "core.add_jobrun")

    def post(self, request, name):
        try:
            job = jobs.get(name)
        except ApplicationError:
            raise Http404 from None
        jobs.job_run_start(job=job.name, requested_by=request.user)
        messages.success(request, _("“%(job)s” has started; its progress shows below.") % {"job": job.title})
        return redirect("staff:jobs")


class JobRetryView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "core.add_jobrun")

    def post(self, request, pk):
        try:
            jobs.job_run_retry(run=get_object_or_404(JobRun, pk=pk))
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("The run goes on from where it stopped."))
        return redirect("staff:jobs")
