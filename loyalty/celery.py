import os

from celery import Celery
from celery.signals import worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")

app = Celery("loyalty")
# Every Celery setting lives in Django settings under the CELERY_ prefix.
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_ready.connect
def resume_interrupted_job_runs(sender, **kwargs):
    """A worker that starts picks up the runs a killed one left (their done chunks stay done)."""
    sender.app.send_task("core.resume_job_runs")
