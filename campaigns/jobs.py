"""The campaigns' scheduled job (registered with loyalty.core.jobs; the work is in campaigns.services)."""

from django.utils.translation import gettext_lazy as _

from campaigns import services, transitions
from campaigns.models import Transition
from loyalty.core import jobs

jobs.register(
    jobs.Job(
        name="campaigns.tick",
        title=_("Run campaigns"),
        description=_(
            "Start scheduled campaigns on their first day, end them after their last, add new members to "
            "welcome series, and issue win-back and period-end vouchers (each once)."
        ),
        cadence="5 minutes",
        crontab={"minute": "*/5", "hour": "*"},
        run_chunk=jobs.whole(lambda as_of: services.campaigns_tick(as_of=as_of)),
    )
)


def _migrate_chunk(scope: str, low: int, high: int, as_of) -> tuple[int, int]:
    return transitions.transition_migrate_chunk(
        transition=Transition.objects.get(pk=scope), low=low, high=high, as_of=as_of
    )


jobs.register(
    jobs.Job(
        name="campaigns.migrate_transition",
        title=_("Migrate accounts of a program transition"),
        description=_(
            "From the cut-over day, move each account of a transition being migrated to the new program, "
            "or convert or close it, once; started from the transition's page, and resumed by the schedule "
            "if it stopped."
        ),
        cadence="daily",
        crontab={"minute": "30", "hour": "3"},
        plan=transitions.migration_plan_chunks,
        run_chunk=_migrate_chunk,
        counts_points=True,
    )
)
