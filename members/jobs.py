"""The members app's scheduled jobs (registered with loyalty.core.jobs)."""

from django.utils.translation import gettext_lazy as _

from loyalty.core import jobs
from members import services

jobs.register(
    jobs.Job(
        name="members.purge_api_requests",
        title=_("Forget old API responses"),
        description=_("Recorded point-of-sale responses older than 48 hours are deleted (keys are honoured 24 hours)."),
        cadence="daily",
        crontab={"minute": "30", "hour": "4"},
        run_chunk=jobs.whole(lambda as_of: services.api_requests_purge()),
    )
)
