"""Points engine benchmark on PostgreSQL.

    uv run python bench/engine.py                       # 1,000,000 accounts / 20,000,000 entries
    uv run python bench/engine.py --accounts 100000 --entries-per-account 20   # a quicker look
    uv run python bench/engine.py --jobs expire_due --workers 2   # one job, its chunks over 2 processes

1. Generates the data once with set-based SQL into the database `<name>_tpl` (kept for later runs;
   --regenerate rebuilds it).
2. For each batch job, copies that template into a fresh database (CREATE DATABASE ... TEMPLATE),
   runs the job through loyalty.services and reports rows, seconds and rows/s, then runs
   check_ledger's invariants on the result.
3. Measures earns per second through services.earn_for_purchase (one process, one connection),
   with p50/p99 latency and the queries one earn issues.

Connection: PGHOST/PGPORT/PGUSER (default 127.0.0.1:5432, postgres); database names from --name.
Figures go to stdout; bench/RESULTS.md records them with the command that produced them.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PG = {
    "host": os.environ.get("PGHOST", "127.0.0.1"),
    "port": os.environ.get("PGPORT", "5432"),
    "user": os.environ.get("PGUSER", "postgres"),
}


def database_url(name: str) -> str:
    return f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{name}"


def admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(
        f"host={PG['host']} port={PG['port']} user={PG['user']} dbname=postgres", autocommit=True
    ) as conn:
        conn.execute(statement)


def database_exists(name: str) -> bool:
    import psycopg

    with psycopg.connect(f"host={PG['host']} port={PG['port']} user={PG['user']} dbname=postgres") as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None


def fresh_copy(template: str, name: str) -> None:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def setup_django(name: str) -> None:
    os.environ["DATABASE_URL"] = database_url(name)
    os.environ["DEBUG"] = "False"  # DEBUG keeps every query in memory
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    import django

    django.setup()


def generate(name: str, accounts: int, per_account: int) -> None:
    """Build the template database: migrate, then members, accounts and ledger lots in a few statements."""
    import subprocess

    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": database_url(name), "DEBUG": "False"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env)
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--generate-inside",
            name,
            "--accounts",
            str(accounts),
            "--entries-per-account",
            str(per_account),
        ],
        check=True,
        env=env,
    )


def generate_inside(accounts: int, per_account: int) -> None:
    from decimal import Decimal

    from django.db import connection
    from django.utils import timezone

    from loyalty import services
    from loyalty.models import EarnRule, Program

    started = time.perf_counter()
    program = Program.objects.create(
        name="Bench",
        slug="bench",
        status=Program.Status.LIVE,
        expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN,
        expiry_months=12,
    )
    tiers = services.tier_ladder_save(
        program=program,
        tiers=[
            services.TierSpec(1, "Bronze", 0, Decimal("1")),
            services.TierSpec(2, "Silver", 1000, Decimal("1.25")),
            services.TierSpec(3, "Gold", 5000, Decimal("1.5")),
            services.TierSpec(4, "Platinum", 15000, Decimal("2")),
        ],
    )
    EarnRule.objects.create(
        program=program, name="Base", activity_type="purchase", calculation="per_currency_unit", rate=1
    )
    now = timezone.now()
    bronze, silver, gold, platinum = (tier.pk for tier in tiers)
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")  # bulk load: skip FK triggers, checked below
        cursor.execute(
            "INSERT INTO members_member (member_no, first_name, last_name, company, email, phone, street, postal_code,"
            " city, country, region, member_type, language, status, enrolment_channel, marketing_consent,"
            " marketing_consent_channel, enrolled_at)"
            " SELECT 'B' || g, 'Bench', 'Member ' || g, '', '', '', '', '', '', 'BE',"
            " (ARRAY['Brussels','Flanders','Wallonia'])[1 + g %% 3], 'consumer', (ARRAY['en','fr','nl'])[1 + g %% 3],"
            " 'active', 'import', false, '', %s FROM generate_series(1, %s) g",
            [now, accounts],
        )
        # 60% Bronze, 25% Silver, 10% Gold, 5% Platinum; every non-entry tier is due for review today.
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, tier_id, tier_since,"
            " tier_window_start, tier_review_at, lifetime_earned, lifetime_redeemed, lifetime_expired,"
            " last_activity_at, enrolled_at)"
            " SELECT m.id, %(program)s, 0, 0, t.tier, %(now)s - interval '13 months',"
            " CASE WHEN t.tier = %(bronze)s THEN NULL ELSE %(now)s - interval '12 months' END,"
            " CASE WHEN t.tier = %(bronze)s THEN NULL ELSE %(now)s - interval '1 day' END,"
            " 0, 0, 0, %(now)s, %(now)s - interval '14 months'"
            " FROM members_member m CROSS JOIN LATERAL (SELECT CASE WHEN m.id %% 20 < 12 THEN %(bronze)s"
            " WHEN m.id %% 20 < 17 THEN %(silver)s WHEN m.id %% 20 < 19 THEN %(gold)s ELSE %(platinum)s END AS tier) t",
            {"program": program.pk, "now": now, "bronze": bronze, "silver": silver, "gold": gold, "platinum": platinum},
        )
        # Lots every 20 days back from today: the two oldest of each account (380 and 400 days) have lapsed,
        # the newest (20 days) is still pending until 10 days from now.
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " expires_at, available_at, is_available, occurred_at, reason, fingerprint, created_at)"
            " SELECT %(program)s, a.id, 'earn', p.points, p.points, p.points, p.at + interval '12 months',"
            " CASE WHEN k = 1 THEN p.at + interval '30 days' ELSE p.at END, k > 1,"
            " p.at, p.points || ' pts: 1 pt per EUR 1 on EUR ' || p.points || ' (Base)', '', p.at"
            " FROM loyalty_account a CROSS JOIN generate_series(1, %(per)s) k"
            " CROSS JOIN LATERAL (SELECT 5 + (a.id * 7 + k * 13) %% 120 AS points,"
            " %(now)s - (k * 20) * interval '1 day' - (a.id %% 12) * interval '1 hour' AS at) p",
            {"program": program.pk, "per": per_account, "now": now},
        )
        cursor.execute(
            "UPDATE loyalty_account a SET balance = s.available, pending = s.total - s.available, lifetime_earned = s.total"
            " FROM (SELECT account_id, SUM(points) AS total, SUM(points) FILTER (WHERE is_available) AS available"
            " FROM loyalty_ledgerentry GROUP BY account_id) s"
            " WHERE s.account_id = a.id"
        )
        cursor.execute("SET session_replication_role = origin")
        cursor.execute(
            "SELECT COUNT(*) FROM loyalty_ledgerentry e LEFT JOIN loyalty_account a ON a.id = e.account_id WHERE a.id IS NULL"
        )
        assert cursor.fetchone()[0] == 0, "orphan entries"
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(
        f"generated {accounts:,} accounts and {accounts * per_account:,} entries in {time.perf_counter() - started:.0f} s"
    )


def _worker_init(name: str) -> None:
    setup_django(name)


def _run_chunk(job: str, low: int, high: int, as_of):
    from loyalty import services
    from loyalty.models import Program

    chunk = getattr(services, f"{job}_chunk")
    return chunk(program=Program.objects.get(slug="bench"), low=low, high=high, as_of=as_of)


def chunked(job: str, run: str, workers: int, as_of):
    """Run a batch job the way several workers would: its chunks (disjoint account ranges, one
    transaction each) shared out over `workers` processes, each with its own connection."""
    import multiprocessing

    from loyalty import services

    def run_job(program):
        chunks = [(job, low, high, as_of) for low, high in services.account_chunks(program=program)]
        with multiprocessing.get_context("spawn").Pool(workers, _worker_init, (run,)) as pool:
            results = pool.starmap(_run_chunk, chunks, chunksize=1)
        return sum(results, services.BatchResult())

    return run_job


def time_job(label: str, job) -> dict:
    from loyalty.models import Program
    from loyalty.selectors import ledger_breaches

    program = Program.objects.get(slug="bench")
    started = time.perf_counter()
    result = job(program)
    seconds = time.perf_counter() - started
    breaches = ledger_breaches(program=program, limit=5)
    row = {
        "job": label,
        "rows": result.rows,
        "points": result.points,
        "seconds": seconds,
        "ledger": breaches or "sound",
    }
    print(
        f"{label:<16} {result.rows:>12,} rows  {seconds:8.1f} s  {result.rows / seconds:>12,.0f} rows/s  ledger {row['ledger']}"
    )
    return row


def earns_per_second(count: int) -> None:
    from django.db import connection, reset_queries
    from django.test.utils import CaptureQueriesContext
    from django.utils import timezone

    from loyalty import services
    from loyalty.models import Account

    accounts = list(Account.objects.filter(program__slug="bench").order_by("?").values_list("pk", flat=True)[:count])
    latencies = []
    now = timezone.now()
    for probe in ("warm-up", "count"):  # the first earn of a process fills caches; count the second
        with CaptureQueriesContext(connection) as one_earn:
            services.earn_for_purchase(
                account=Account(pk=accounts[0]),
                amount="49.90",
                currency="EUR",
                receipt_number=probe,
                occurred_at=now,
                idempotency_key=f"bench-{probe}",
            )
    queries_per_earn = len(one_earn)  # read now: reset_queries() below empties the log it reads from
    started = time.perf_counter()
    for n, pk in enumerate(accounts):
        t0 = time.perf_counter()
        services.earn_for_purchase(
            account=Account(pk=pk),
            amount=f"{10 + n % 90}.50",
            currency="EUR",
            receipt_number=f"bench-{n}",
            occurred_at=now,
            idempotency_key=f"bench-{n}",
        )
        latencies.append((time.perf_counter() - t0) * 1000)
        reset_queries()
    seconds = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(
        f"earn_for_purchase {count:>8,} earns  {seconds:8.1f} s  {count / seconds:>8,.0f} earns/s"
        f"  p50 {statistics.median(latencies):.1f} ms  p99 {p99:.1f} ms  {queries_per_earn} queries per earn"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--entries-per-account", type=int, default=20)
    parser.add_argument("--earns", type=int, default=3000)
    parser.add_argument("--name", default="loyalty_bench")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild the template database.")
    parser.add_argument(
        "--jobs",
        default="expire_due,evaluate_tiers,release_pending,earn",
        help="Comma-separated: expire_due, evaluate_tiers, release_pending, earn.",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="Processes sharing each batch job's chunks (as Celery workers would)."
    )
    parser.add_argument("--generate-inside", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.generate_inside:
        setup_django(args.generate_inside)
        generate_inside(args.accounts, args.entries_per_account)
        return

    template, run = f"{args.name}_tpl", f"{args.name}_run"
    if args.regenerate or not database_exists(template):
        generate(template, args.accounts, args.entries_per_account)
    print(f"PostgreSQL, {os.cpu_count()} cores; data: {args.accounts:,} accounts x {args.entries_per_account} lots")

    from datetime import timedelta

    setup_django(run)
    from django.db import connection
    from django.utils import timezone

    now = timezone.now()
    as_of = {"expire_due": now, "evaluate_tiers": now, "release_pending": now + timedelta(days=11)}
    for job in [job for job in args.jobs.split(",") if job in as_of]:
        fresh_copy(template, run)
        label = job if args.workers == 1 else f"{job} x{args.workers}"
        time_job(label, chunked(job, run, args.workers, as_of[job]))
        connection.close()
    if "earn" in args.jobs.split(","):
        fresh_copy(template, run)
        earns_per_second(args.earns)
        connection.close()
    admin_sql(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')


if __name__ == "__main__":
    main()
