"""The points engine's scheduled jobs (registered with loyalty.core.jobs; the SQL is in services).

Each is planned as chunks of account ids per program, so several workers share one run.
"""

import datetime

from django.utils.translation import gettext_lazy as _

from loyalty import services
from loyalty.core import jobs
from loyalty.models import Program


def _plan(as_of: datetime.datetime, chunk_size: int):
    for program in Program.objects.exclude(status=Program.Status.DRAFT).order_by("pk"):
        for low, high in services.account_chunks(program=program, chunk_size=chunk_size):
            yield str(program.pk), low, high


def _engine_job(chunk_service, **fields) -> jobs.Job:
    """A job of the engine: chunks of account ids per program, each done by `chunk_service`."""

    def run_chunk(scope: str, low: int, high: int, as_of: datetime.datetime) -> tuple[int, int]:
        result = chunk_service(program=Program.objects.get(pk=scope), low=low, high=high, as_of=as_of)
        return result.rows, result.points

    return jobs.register(jobs.Job(plan=_plan, run_chunk=run_chunk, **fields))


_engine_job(
    services.release_pending_chunk,
    name="loyalty.release_pending",
    title=_("Release pending points"),
    description=_("Points whose return window has passed become available to spend."),
    cadence="hourly",
    crontab={"minute": "5", "hour": "*"},
    counts_points=True,
)
_engine_job(
    services.expire_due_chunk,
    name="loyalty.expire_points",
    title=_("Expire points"),
    description=_("The unspent part of lapsed points lots becomes an expiry entry on the statement."),
    cadence="daily",
    crontab={"minute": "15", "hour": "2"},
    counts_points=True,
)
_engine_job(
    services.expiry_warnings_send_chunk,
    name="loyalty.warn_expiring_points",
    title=_("Warn of expiring points"),
    description=_("Members with points expiring in the next 30 days get one email, once for each lot."),
    cadence="weekly",
    crontab={"minute": "0", "hour": "8", "day_of_week": "1"},
    counts_points=True,
)
_engine_job(
    services.evaluate_tiers_chunk,
    name="loyalty.evaluate_tiers",
    title=_("Review tiers"),
    description=_("Members whose qualification window has closed keep, or go down from, their tier."),
    cadence="daily",
    crontab={"minute": "45", "hour": "2"},
)


def _programs(as_of: datetime.datetime, chunk_size: int):
    for program in Program.objects.exclude(status=Program.Status.DRAFT).order_by("pk"):
        yield str(program.pk), 0, 0


jobs.register(
    jobs.Job(
        name="loyalty.refresh_account_values",
        title=_("Rank members by value"),
        description=_(
            "Each member's spend and earned points over the last 30, 90, 180 and 365 days, spend over the last "
            "12 months and value decile, read by segments and the value pyramid."
        ),
        cadence="daily",
        crontab={"minute": "30", "hour": "3"},
        plan=_programs,
        run_chunk=lambda scope, low, high, as_of: (
            services.account_values_refresh(program=Program.objects.get(pk=scope), as_of=as_of),
            0,
        ),
    )
)


def _summarise_ledger(scope: str, low: int, high: int, as_of: datetime.datetime) -> tuple[int, int]:
    from loyalty import analytics  # the analytics module imports models only; kept out of start-up

    return analytics.summaries_refresh(program=Program.objects.get(pk=scope)), 0


jobs.register(
    jobs.Job(
        name="loyalty.summarise_ledger",
        title=_("Sum the ledger by month"),
        description=_(
            "Points issued, redeemed, expired and adjusted per month, and members enrolled, upgraded and "
            "downgraded, read by the analytics pages; what happened since is added live."
        ),
        cadence="daily",
        crontab={"minute": "0", "hour": "4"},
        plan=_programs,
        run_chunk=_summarise_ledger,
    )
)
