"""The record of background job runs, kept by loyalty.core.jobs.

A run is cut into chunks when it starts; a chunk is marked done in the same transaction as its
work, so the set of done chunks is the run's checkpoint: a worker killed halfway loses at most the
chunk it was on (rolled back with it), and whoever resumes the run skips what is done.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _


class JobRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running", _("running")
        SUCCEEDED = "succeeded", _("succeeded")
        FAILED = "failed", _("failed")

    class Trigger(models.TextChoices):
        SCHEDULE = "schedule", _("schedule")
        MANUAL = "manual", _("by hand")

    job = models.CharField(_("job"), max_length=80)
    # What the run covers ("2026-11-23" for a daily job); a second start for the same period finds this run.
    period = models.CharField(_("period"), max_length=40)
    as_of = models.DateTimeField(_("as of"), help_text=_("The clock the run works to; a resumed run keeps it."))
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.RUNNING)
    trigger = models.CharField(_("started by"), max_length=12, choices=Trigger.choices)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    chunks_total = models.PositiveIntegerField(_("chunks"), default=0)
    started_at = models.DateTimeField(_("started"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished"), null=True, blank=True)
    error = models.TextField(_("error"), blank=True)

    class Meta:
        verbose_name = _("job run")
        verbose_name_plural = _("job runs")
        ordering = ["-started_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["job", "period"], name="jobrun_one_per_job_and_period"),
            models.CheckConstraint(
                condition=Q(status="running", finished_at__isnull=True) | ~Q(status="running"),
                name="jobrun_running_not_finished",
            ),
        ]
        indexes = [models.Index(fields=["job", "-started_at"]), models.Index(fields=["status"])]

    def __str__(self) -> str:
        return f"{self.job} {self.period}"


class JobChunk(models.Model):
    """One slice of a run's work: an id range [low, high) within a scope (a program, for the engine's jobs)."""

    run = models.ForeignKey(JobRun, on_delete=models.CASCADE, related_name="chunks")
    scope = models.CharField(max_length=40, blank=True)
    low = models.BigIntegerField(default=0)
    high = models.BigIntegerField(default=0)
    done_at = models.DateTimeField(null=True, blank=True)
    rows = models.BigIntegerField(default=0)
    points = models.BigIntegerField(default=0)

    class Meta:
        verbose_name = _("job chunk")
        verbose_name_plural = _("job chunks")
        indexes = [
            models.Index(fields=["run"], condition=Q(done_at__isnull=True), name="jobchunk_undone"),
        ]

    def __str__(self) -> str:
        return f"{self.run_id}: {self.scope} [{self.low}, {self.high})"
