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
from loyalty import services
from loyalty.models import Program
program = Program.objects.get(slug="blue-rewards")
later = timezone.now() + datetime.timedelta(days=800)
print(services.release_pending(program=program, as_of=later).rows)
print(services.expire_due(program=program, as_of=later).rows)
print(services.evaluate_tiers(program=program, as_of=later).rows)
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
    _released, expired, reviewed = (int(line) for line in jobs.stdout.split()[-3:])
    assert expired > 0 and reviewed > 0  # 800 days on, every lot has lapsed and every tier is reviewed
    assert "every invariant holds" in checked.stdout
