"""The campaigns' scheduled job (registered with loyalty.core.jobs; the work is in campaigns.services)."""

from django.utils.translation import gettext_lazy as _

from campaigns import services
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
