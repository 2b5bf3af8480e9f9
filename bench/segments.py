"""Segment counts and materialisation on 1,000,000 members, on PostgreSQL.

    uv run python bench/segments.py                      # 1,000,000 members (data kept for later runs)
    uv run python bench/segments.py --members 200000     # a quicker look
    uv run python bench/segments.py --regenerate --runs 7

1. A fresh database (`<name>_<members>`, kept for later runs unless --regenerate; a kept one is
   migrated to the current schema), with one live program (Bronze/Silver/Gold/Platinum), 200 stores
   in five regions and three member types.
2. Members, accounts and purchases generated in Python and loaded with COPY: 97% of members active,
   60% consenting, a quarter without a purchase in 14 months, the others 1 to 15 purchases
   (3% partly returned), copied in time order as tills post them; each account's last activity is
   its latest purchase, else its enrolment. Then --entries-per-account ledger entries (default 20:
   20,000,000 at a million members, four in five earns) in one INSERT … SELECT, in time order.
3. The nightly value ranking (`loyalty.services.account_values_refresh`, timed once, then VACUUM
   ANALYZE as autovacuum would), which the decile, spend and points criteria read. Then, for each
   representative segment: the count (`segments.segment_count`) and the materialisation (INSERT INTO
   a temporary table SELECT … of `segments.segment_accounts`, as a campaign's launch does), each timed
   over --runs runs; p50 and max in milliseconds. For spend and points criteria, the baseline in the same
   run: the criterion summed live over the period at the count (what segments did before they read
   the ranking's sums), which must select as many members. --explain prints each count's plan.
4. --tuned measures the same with per-session `jit = off` and `work_mem = 64MB`.

Connection: PGHOST/PGPORT/PGUSER as bench/engine.py. Figures go to stdout; bench/RESULTS.md records them.
"""

import argparse
import datetime
import os
import random
import statistics
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import PG, admin_sql, database_exists, database_url, setup_django  # noqa: E402

REGIONS = ["Brussels", "Flanders", "Wallonia", "Limburg", "Luxembourg"]
TIERS = [("Bronze", 60), ("Silver", 25), ("Gold", 10), ("Platinum", 5)]
MEMBER_TYPES = [("consumer", 70), ("contractor", 20), ("roofer", 10)]
STORES = 200
TUNED_SESSION = ("SET jit = off", "SET work_mem = '64MB'")
SETUP = f"""
from loyalty.models import Program, Tier
from members.models import MemberType, Store
program = Program.objects.create(name="Bench", slug="bench", status="live")
for rank, tier in enumerate({[tier for tier, _share in TIERS]!r}, start=1):
    Tier.objects.create(program=program, rank=rank, name=tier, threshold=(rank - 1) * 5000)
regions = {REGIONS!r}
stores = Store.objects.bulk_create(
    [Store(code=f"st-{{n:03d}}", name=f"Store {{n:03d}}", region=regions[n % len(regions)]) for n in range({STORES})]
)
program.stores.set(stores)
for position, code in enumerate({[code for code, _share in MEMBER_TYPES]!r}):
    MemberType.objects.get_or_create(code=code, defaults={{"name": code.title(), "position": position}})
"""


def _pick(weighted: list[tuple], rng: random.Random):
    values, weights = zip(*weighted, strict=True)
    return rng.choices(values, weights)[0]


def generate(name: str, members: int, entries_per_account: int, seed: int = 11) -> None:
    """Migrate a fresh database, then COPY members, accounts and purchases into it; ledger entries in SQL."""
    import psycopg

    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": database_url(name), "DEBUG": "False", "REDIS_URL": ""}
    env.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    started = time.perf_counter()
    rng = random.Random(seed)
    now = datetime.datetime.now(datetime.UTC)
    subprocess.run([sys.executable, "manage.py", "shell", "-c", SETUP], check=True, env=env, cwd=ROOT)
    with psycopg.connect(f"host={PG['host']} port={PG['port']} user={PG['user']} dbname={name}") as conn:
        program = conn.execute("SELECT id FROM loyalty_program WHERE slug = 'bench'").fetchone()[0]
        tiers = dict(conn.execute("SELECT name, id FROM loyalty_tier WHERE program_id = %s", [program]).fetchall())
        stores = conn.execute("SELECT id, region FROM members_store ORDER BY code").fetchall()
        tier_weights = [(tiers[tier], share) for tier, share in TIERS]
        first_member = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM members_member").fetchone()[0]
        first_account = conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM loyalty_account").fetchone()[0]

        accounts, purchases = [], []
        with conn.cursor().copy(
            "COPY members_member (member_no, first_name, last_name, company, email, phone, street, postal_code,"
            " city, country, region, member_type, language, status, enrolment_channel, marketing_consent,"
            " marketing_consent_channel, enrolled_at, home_store_id) FROM STDIN"
        ) as copy:
            for n in range(members):
                store, region = stores[rng.randrange(STORES)] if rng.random() < 0.9 else (None, rng.choice(REGIONS))
                enrolled = now - datetime.timedelta(days=rng.uniform(1, 6 * 365))
                status = "active" if rng.random() < 0.97 else rng.choice(["suspended", "closed"])
                copy.write_row(
                    (f"S{n:09d}", "Bench", f"Member {n}", "", "", "", "", "", "", "BE", region,
                     _pick(MEMBER_TYPES, rng), rng.choice(["en", "fr", "nl"]), status, "import",
                     rng.random() < 0.6, "", enrolled, store)
                )  # fmt: skip
                last = enrolled
                bought = 0 if rng.random() < 0.25 else rng.randint(1, 15)
                for _ in range(bought):
                    at = max(now - datetime.timedelta(days=rng.uniform(0, 425)), enrolled)
                    amount = Decimal(rng.lognormvariate(3.8, 0.9)).quantize(Decimal("0.01")) + Decimal("1")
                    returned = (amount / 2).quantize(Decimal("0.01")) if rng.random() < 0.03 else Decimal("0")
                    purchases.append((first_account + n, store or stores[0][0], amount, returned, at))
                    last = max(last, at)
                accounts.append(
                    (first_member + n, _pick(tier_weights, rng), int(rng.paretovariate(1.2) * 200), last, enrolled)
                )
        print(f"members: {members:,} copied in {time.perf_counter() - started:.0f} s", flush=True)
        with conn.cursor().copy(
            "COPY loyalty_account (member_id, program_id, balance, pending, tier_id, tier_since, lifetime_earned,"
            " lifetime_redeemed, lifetime_expired, last_activity_at, enrolled_at) FROM STDIN"
        ) as copy:
            for member, tier, balance, last, enrolled in accounts:
                copy.write_row(
                    (member, program, min(balance, 10_000_000), 0, tier, enrolled, balance, 0, 0, last, enrolled)
                )
        print(f"accounts: {len(accounts):,} copied in {time.perf_counter() - started:.0f} s", flush=True)
        purchases.sort(key=lambda purchase: purchase[4])  # as tills post them: the table is in time order
        with conn.cursor().copy(
            "COPY loyalty_purchase (program_id, account_id, store_id, receipt_number, amount, currency, lines,"
            " returned_amount, occurred_at, idempotency_key, fingerprint, created_at) FROM STDIN"
        ) as copy:
            for n, (account, store, amount, returned, at) in enumerate(purchases):
                copy.write_row((program, account, store, f"R{n}", amount, "EUR", "[]", returned, at, f"k{n}", "", at))
        print(f"purchases: {len(purchases):,} copied in {time.perf_counter() - started:.0f} s", flush=True)
        if entries_per_account:
            add_ledger_entries(conn, program=program, per_account=entries_per_account, now=now)
            print(f"ledger entries: added in {time.perf_counter() - started:.0f} s", flush=True)
        conn.commit()
    with psycopg.connect(
        f"host={PG['host']} port={PG['port']} user={PG['user']} dbname={name}", autocommit=True
    ) as conn:
        conn.execute("VACUUM ANALYZE")
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)


def add_ledger_entries(conn, *, program: int, per_account: int, now: datetime.datetime) -> None:
    """`per_account` entries per account over the last 425 days, inserted in time order as the engine
    writes them: four in five earn 5 to 124 points, one in five redeems 20 to 219. They feed the
    points-earned criterion only (balances are not reconciled with them)."""
    conn.execute("SET session_replication_role = replica")  # bulk load: no per-row foreign key triggers
    conn.execute(
        "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
        " available_at, is_available, occurred_at, reason, fingerprint, created_at)"
        " SELECT %(program)s, a.id, e.kind, e.points, GREATEST(e.points, 0), 0, e.at, true, e.at, e.points || ' pts',"
        " '', e.at FROM loyalty_account a CROSS JOIN generate_series(1, %(per)s) k"
        " CROSS JOIN LATERAL (SELECT CASE WHEN (a.id + k) %% 5 = 0 THEN 'redeem' ELSE 'earn' END AS kind,"
        " CASE WHEN (a.id + k) %% 5 = 0 THEN -(20 + (a.id * 3 + k * 11) %% 200) ELSE 5 + (a.id * 7 + k * 13) %% 120"
        " END AS points, %(now)s - ((a.id * 7919 + k * 104729) %% 612000) * interval '1 minute' AS at) e"
        " WHERE a.program_id = %(program)s ORDER BY e.at",
        {"program": program, "per": per_account, "now": now},
    )
    conn.execute("SET session_replication_role = origin")


def segments_to_measure(program, *, with_points: bool) -> list[tuple[str, dict | None]]:
    gold, platinum = program.tiers.get(name="Gold"), program.tiers.get(name="Platinum")
    cases = [
        ("tier Gold/Platinum + region Flanders", {"tiers": [gold, platinum], "regions": ["Flanders"]}),
        ("inactive for 90 days", {"inactive_for_days": 90}),
        ("value deciles 1-2", {"decile_best": 1, "decile_worst": 2}),
        ("spent 100-500 over 90 days", {"period_days": 90, "spend_min": Decimal(100), "spend_max": Decimal(500)}),
        ("spent at most 50 over 90 days", {"period_days": 90, "spend_max": Decimal(50)}),
        ("spent at least 300 over 365 days", {"period_days": 365, "spend_min": Decimal(300)}),
        ("consent + 3 member types + store", None),  # filled in main(): a mix of member-side criteria
        ("all members", None),
    ]
    if with_points:
        cases += [
            ("earned 100-400 points over 90 days", {"period_days": 90, "points_min": 100, "points_max": 400}),
            ("earned at most 100 points over 90 days", {"period_days": 90, "points_max": 100}),
        ]
    return cases


LIVE_SUM = """
SELECT count(*) FROM loyalty_account a
JOIN members_member m ON m.id = a.member_id AND m.status = 'active'
LEFT JOIN (
    SELECT account_id, SUM({amount}) AS total FROM {table}
    WHERE program_id = %(program)s AND occurred_at > %(start)s AND occurred_at <= %(end)s {kind}
    GROUP BY account_id
) s ON s.account_id = a.id
WHERE a.program_id = %(program)s AND COALESCE(s.total, 0) >= %(low)s AND COALESCE(s.total, 0) <= %(high)s
"""


def live_count(cursor, program, criteria: dict, as_of) -> int | None:
    """The baseline: the same spend or points criterion summed live over the period at the count (what
    segments did before the nightly sums), as one hash join. None for a segment without such a criterion."""
    source = "spend" if "spend_min" in criteria or "spend_max" in criteria else "points"
    if f"{source}_min" not in criteria and f"{source}_max" not in criteria:
        return None
    table, amount, kind = (
        ("loyalty_purchase", "amount - returned_amount", "")
        if source == "spend"
        else ("loyalty_ledgerentry", "points", "AND kind = 'earn'")
    )
    cursor.execute(
        LIVE_SUM.format(table=table, amount=amount, kind=kind),
        {
            "program": program.pk,
            "start": as_of - datetime.timedelta(days=criteria["period_days"]),
            "end": as_of,
            "low": criteria.get(f"{source}_min") or 0,
            "high": criteria.get(f"{source}_max", 10**12),
        },
    )
    return cursor.fetchone()[0]


def timed(call, runs: int) -> tuple[float, float, object]:
    results, latencies = None, []
    for _ in range(runs):
        started = time.perf_counter()
        results = call()
        latencies.append((time.perf_counter() - started) * 1000)
    return statistics.median(latencies), max(latencies), results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--name", default="loyalty_bench_segments")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--regenerate", action="store_true")
    parser.add_argument("--explain", action="store_true", help="Print EXPLAIN ANALYZE of each count.")
    parser.add_argument("--tuned", action="store_true", help="Per session: jit off, work_mem 64MB.")
    parser.add_argument("--entries-per-account", type=int, default=20, help="Ledger entries generated per account.")
    args = parser.parse_args()

    name = f"{args.name}_{args.members}"
    if args.regenerate or not database_exists(name):
        generate(name, args.members, args.entries_per_account)
    else:  # a kept database gets the indexes the code now expects
        env = {**os.environ, "DATABASE_URL": database_url(name), "DEBUG": "False", "REDIS_URL": ""}
        env.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
        subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    setup_django(name)
    from django.db import connection, transaction
    from django.utils import timezone

    from campaigns import segments
    from campaigns.models import Segment
    from loyalty.models import LedgerEntry, Program, Purchase

    program = Program.objects.get(slug="bench")
    Segment.objects.filter(program=program).delete()
    as_of = timezone.now()
    with connection.cursor() as cursor:
        if args.tuned:
            for statement in TUNED_SESSION:
                cursor.execute(statement)
        cursor.execute("SHOW work_mem")
        work_mem = cursor.fetchone()[0]
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'loyalty_purchase' ORDER BY 1")
        purchase_indexes = ", ".join(row[0] for row in cursor.fetchall())
    entries = LedgerEntry.objects.count()
    print(
        f"PostgreSQL, {os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f}, work_mem {work_mem}, jit {jit};"
        f" {name}: {program.accounts.count():,} accounts, {Purchase.objects.count():,} purchases, {entries:,} ledger"
        f" entries; {args.runs} runs each\npurchase indexes: {purchase_indexes}"
    )
    from loyalty.services import account_values_refresh

    started = time.perf_counter()
    ranked = account_values_refresh(program=program, as_of=as_of)
    print(
        f"nightly value ranking (account_values_refresh): {ranked:,} accounts in {time.perf_counter() - started:.1f} s"
    )
    with connection.cursor() as cursor:
        # What autovacuum does within minutes of the nightly rewrite: measured right after it, the planner
        # would read the ranking's old statistics (a few rows per decile) and probe accounts one by one.
        cursor.execute("VACUUM ANALYZE loyalty_accountvalue")
    print(
        f"{'segment':<40} {'accounts':>10} {'count p50':>10} {'max':>8} {'insert p50':>11} {'max':>8}"
        f" {'live sum p50':>13} {'ratio':>6}  (ms)"
    )
    cases = segments_to_measure(program, with_points=entries > 0)
    some_stores = list(segments.program_stores(program=program)[:40])
    mixed = next(n for n, (_label, criteria) in enumerate(cases) if criteria is None)
    cases[mixed] = (
        cases[mixed][0],
        {"consent": Segment.Consent.GIVEN, "member_types": ["contractor", "roofer", "consumer"], "stores": some_stores},
    )
    for label, criteria in cases:
        segment = None
        if criteria is not None:
            segment = segments.segment_save(program=program, name=label, created_by=None, **criteria)
            segment = Segment.objects.get(pk=segment.pk)  # as a campaign reads it: choices in SQL

        def count(segment=segment):
            return segments.segment_count(program=program, segment=segment, as_of=as_of)

        def materialise(segment=segment):
            accounts = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
            sql, params = accounts.order_by().values_list("pk").query.sql_with_params()
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("CREATE TEMPORARY TABLE picked (account_id bigint) ON COMMIT DROP")
                cursor.execute(f"INSERT INTO picked (account_id) {sql}", params)
                return cursor.rowcount

        count_p50, count_max, found = timed(count, args.runs)
        insert_p50, insert_max, inserted = timed(materialise, args.runs)
        assert found == inserted, (label, found, inserted)
        baseline = ""
        if criteria and "period_days" in criteria:
            with connection.cursor() as cursor:
                live_p50, _live_max, live = timed(
                    lambda criteria=criteria: live_count(cursor, program, criteria, as_of), args.runs
                )
            # The ranking summed the same period up to the same instant: the same members.
            assert live == found, (label, live, found)
            baseline = f" {live_p50:>13.0f} {live_p50 / count_p50:>5.1f}x"
        print(
            f"{label:<40} {found:>10,} {count_p50:>10.0f} {count_max:>8.0f} {insert_p50:>11.0f} {insert_max:>8.0f}"
            f"{baseline}",
            flush=True,
        )
        if args.explain:
            query = segments.segment_accounts(program=program, segment=segment, as_of=as_of)
            print(query.order_by().values("pk").explain(analyze=True, buffers=True), "\n", flush=True)


if __name__ == "__main__":
    main()
