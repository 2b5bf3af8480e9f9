"""The staff "jobs" page (/staff/jobs/): every scheduled job with its next run, recent runs with their
progress (refreshed while one runs), and, for program managers, "run now" and "retry".

It lives in `portal` because it lists the jobs of every app; the runs are loyalty.core.jobs'.
"""

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View

from loyalty.core import jobs, schedule
from loyalty.core.exceptions import ApplicationError
from loyalty.core.models import JobRun

RECENT_RUNS = 50


class JobsView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "core.view_jobrun")

    def get(self, request):
        runs = jobs.recent_runs(limit=RECENT_RUNS)
        context = {"runs": runs, "any_running": any(run.status == JobRun.Status.RUNNING for run in runs)}
        if request.htmx:
            return render(request, "staff/_job_runs.html", context)
        last_runs = {}
        for run in runs:
            last_runs.setdefault(run.job, run)
        scheduled = [{**row, "last_run": last_runs.get(row["job"].name)} for row in schedule.scheduled_jobs()]
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
