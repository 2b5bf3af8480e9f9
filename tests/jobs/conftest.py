"""Fixtures of the job tests: a program with many accounts made by set-based SQL, and real Celery workers.

`books(program, accounts)` gives every account the same shape, derived from its position (not its id),
so two programs built with it hold the same books: one can run through a worker, the other through
the services, and their ledgers compare line by line.
"""

import datetime
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

from loyalty.celery import app as celery_app
from loyalty.models import Account, LedgerEntry, Program, TierChange
from tests.conftest import TIER_LADDER, _require
from tests.factories import EarnRuleFactory, ProgramFactory, TierFactory

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2026, 11, 23, 9, 0, tzinfo=datetime.UTC)


def make_program(slug: str) -> Program:
    """A live program whose points expire 12 months after earning, with the suite's four-tier ladder."""
    program = ProgramFactory(
        name=slug.title(),
        slug=slug,
        expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN,
        expiry_months=12,
    )
    for rank, name, threshold, multiplier in TIER_LADDER:
        TierFactory(program=program, rank=rank, name=name, threshold=threshold, earn_multiplier=Decimal(multiplier))
    EarnRuleFactory(program=program, name="Base earning")
    return program


def books(program: Program, accounts: int, *, now: datetime.datetime = NOW) -> None:
    """`accounts` members with an account each: five lots, earned 10 to 400 days ago (the two oldest
    lapsed, the newest still pending), tiers spread over the ladder and every non-entry tier due for review today."""
    tiers = [tier.pk for tier in program.tiers.order_by("rank")]
    prefix = program.slug.upper()
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO members_member (member_no, first_name, last_name, company, email, phone, street, postal_code,"
            " city, country, region, member_type, language, status, enrolment_channel, marketing_consent,"
            " marketing_consent_channel, enrolled_at)"
            " SELECT %s || '-' || g, 'Member', 'No ' || g, '', '', '', '', '', '', 'BE', 'Brussels', 'consumer',"
            " (ARRAY['en','fr','nl'])[1 + g %% 3], 'active', 'import', false, '', %s FROM generate_series(1, %s) g",
            [prefix, now, accounts],
        )
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, tier_id, tier_since,"
            " tier_window_start, tier_review_at, lifetime_earned, lifetime_redeemed, lifetime_expired,"
            " last_activity_at, enrolled_at)"
            " SELECT m.id, %(program)s, 0, 0, (%(tiers)s::bigint[])[1 + s.g %% 4], %(now)s - interval '13 months',"
            " CASE WHEN s.g %% 4 = 0 THEN NULL ELSE %(now)s - interval '12 months' END,"
            " CASE WHEN s.g %% 4 = 0 THEN NULL ELSE %(now)s - interval '1 day' END,"
            " 0, 0, 0, %(now)s, %(now)s - interval '14 months'"
            " FROM members_member m CROSS JOIN LATERAL (SELECT split_part(m.member_no, '-', 2)::int AS g) s"
            " WHERE m.member_no LIKE %(prefix)s ORDER BY s.g",
            {"program": program.pk, "tiers": tiers, "now": now, "prefix": f"{prefix}-%"},
        )
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " expires_at, available_at, is_available, occurred_at, reason, fingerprint, created_at)"
            " SELECT %(program)s, a.id, 'earn', p.points, p.points, p.points, p.at + interval '12 months',"
            " CASE WHEN k = 1 THEN p.at + interval '30 days' ELSE p.at END, k > 1,"
            " p.at, p.points || ' pts: 1 pt per EUR 1 on EUR ' || p.points || ' (Base earning)', '', p.at"
            " FROM loyalty_account a JOIN members_member m ON m.id = a.member_id"
            " CROSS JOIN LATERAL (SELECT split_part(m.member_no, '-', 2)::int AS g) s"
            " CROSS JOIN generate_series(1, 5) k"
            " CROSS JOIN LATERAL (SELECT 5 + (s.g * 7 + k * 13) %% 1500 AS points,"
            " %(now)s - (ARRAY[10, 120, 240, 380, 400])[k] * interval '1 day' - (s.g %% 12) * interval '1 hour' AS at) p"
            " WHERE a.program_id = %(program)s ORDER BY a.id, k",
            {"program": program.pk, "now": now},
        )
        cursor.execute(
            "UPDATE loyalty_account a SET balance = s.available, pending = s.total - s.available, lifetime_earned = s.total"
            " FROM (SELECT account_id, SUM(points) AS total, SUM(points) FILTER (WHERE is_available) AS available"
            " FROM loyalty_ledgerentry WHERE program_id = %s GROUP BY account_id) s WHERE s.account_id = a.id",
            [program.pk],
        )


def lapsed_lots(program: Program, as_of: datetime.datetime) -> int:
    return LedgerEntry.objects.filter(program=program, kind="earn", remaining__gt=0, expires_at__lte=as_of).count()


def ledger_of(program) -> list[tuple]:
    """The program's books in a form two programs can be compared by: member number without the program's
    prefix, every entry's content (not ids or write times), every account's standing, every tier change."""
    number = "account__member__member_no"
    entries = sorted(
        (row[0].split("-")[1], *row[1:])
        for row in LedgerEntry.objects.filter(program=program).values_list(
            number, "kind", "points", "qualifying_points", "remaining", "reason", "is_available", "expires_at",
            "available_at", "occurred_at", "reverses__points", "reverses__occurred_at",
        )
    )  # fmt: skip
    accounts = sorted(
        (row[0].split("-")[1], *row[1:])
        for row in Account.objects.filter(program=program).values_list(
            "member__member_no", "balance", "pending", "tier__rank", "tier_since", "tier_window_start",
            "tier_review_at", "lifetime_earned", "lifetime_expired",
        )
    )  # fmt: skip
    changes = sorted(
        (row[0].split("-")[1], *row[1:])
        for row in TierChange.objects.filter(account__program=program).values_list(
            "account__member__member_no", "from_tier__rank", "to_tier__rank", "reason", "changed_at"
        )
    )
    return [entries, accounts, changes]


# --- real workers ---------------------------------------------------------------------------------


class Worker:
    """`celery worker` in its own process group on this checkout's queue, against the test database."""

    def __init__(self, name: str, log: Path, pool: str = "solo", concurrency: int = 1):
        database = settings.DATABASES["default"]
        url = f"postgres://{database['USER']}@{database['HOST'] or '127.0.0.1'}:{database['PORT'] or 5432}/{database['NAME']}"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "loyalty.settings.test",
            "DATABASE_URL": url,
            "TEST_REDIS_URL": settings.REDIS_URL,
            "CELERY_EAGER": "false",
        }
        self.log = log
        self._file = log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "--app", "loyalty", "worker", "--pool", pool, "--concurrency",
             str(concurrency), "--hostname", f"{name}@%h", "--loglevel", "INFO", "--without-gossip",
             "--without-mingle", "--queues", settings.CELERY_TASK_DEFAULT_QUEUE],
            cwd=ROOT, env=env, stdout=self._file, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log.read_text():
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.1)
        raise AssertionError(f"the worker did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL to the worker and every process it forked: what a power cut does."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.kill()
        self._file.close()


@pytest.fixture
def queue_only():
    """Tasks queued in this test go to Redis and stay there (no worker takes them): a run is recorded
    and planned without being worked, as when every worker is down."""
    _require(settings.REDIS_AVAILABLE, f"Redis is not reachable at {settings.REDIS_URL}")
    celery_app.conf.task_always_eager = False
    yield
    celery_app.conf.task_always_eager = True
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


@pytest.fixture
def start_worker(transactional_db, tmp_path):
    """start_worker(name, pool=..., concurrency=...) -> a ready Worker; tasks this test queues go to Redis."""
    _require(connection.vendor == "postgresql", "PostgreSQL is not reachable (set DATABASE_URL)")
    _require(settings.REDIS_AVAILABLE, f"Redis is not reachable at {settings.REDIS_URL}")
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)
    celery_app.conf.task_always_eager = False
    workers = []

    def _start(name: str, **kwargs) -> Worker:
        worker = Worker(name, tmp_path / f"{name}.log", **kwargs)
        workers.append(worker)
        worker.wait_ready()
        return worker

    yield _start
    for worker in workers:
        worker.stop()
    celery_app.conf.task_always_eager = True
    with celery_app.connection_for_write() as broker:
        broker.default_channel.queue_purge(settings.CELERY_TASK_DEFAULT_QUEUE)


def wait_for(condition, *, timeout: float = 120, every: float = 0.05, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")
