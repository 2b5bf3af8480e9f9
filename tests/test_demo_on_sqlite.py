"""`make run` serves the demo on SQLite: the demo's own path (migrate, seed, every batch job,
check_ledger) must work there, though the suite itself runs on PostgreSQL."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
JOBS = """
import datetime
from django.utils import timezone
from loyalty.core import jobs
later = timezone.now() + datetime.timedelta(days=800)
for job in jobs.registered():  # as "run now" on the jobs page does: eagerly, in this process
    run, _created = jobs.job_run_start(job=job.name, as_of=later)
    run = jobs.runs_with_progress().get(pk=run.pk)
    print("JOB", job.name, run.status, run.rows)
"""


def _manage(*args, env):
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True
    )


def test_the_demo_seeds_and_runs_every_batch_job_on_sqlite(tmp_path):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'demo.sqlite3'}",
        "REDIS_URL": "",
        "CACHE_URL": "",
    }
    _manage("migrate", "-v0", env=env)
    seeded = _manage("seed_demo", "--members", "8", env=env)
    jobs = _manage("shell", "-c", JOBS, env=env)
    checked = _manage("check_ledger", env=env)

    assert "member01@demo.example.com" in seeded.stdout
    runs = {line.split()[1]: line.split()[2:] for line in jobs.stdout.splitlines() if line.startswith("JOB ")}
    assert {status for status, _rows in runs.values()} == {"succeeded"}
    # 800 days on, every lot has lapsed and every tier is reviewed
    assert int(runs["loyalty.expire_points"][1]) > 0 and int(runs["loyalty.evaluate_tiers"][1]) > 0
    assert "every invariant holds" in checked.stdout
