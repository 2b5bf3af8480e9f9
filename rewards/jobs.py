"""The reward catalogue's scheduled jobs (registered with loyalty.core.jobs)."""

from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.core import jobs
from rewards import services

jobs.register(
    jobs.Job(
        name="rewards.expire_vouchers",
        title=_("Expire vouchers"),
        description=_("Active vouchers past their last day are marked expired."),
        cadence="daily",
        crontab={"minute": "10", "hour": "0"},
        run_chunk=jobs.whole(lambda as_of: services.vouchers_expire(as_of=timezone.localdate(as_of))),
    )
)
