"""Analytics pages benchmark on PostgreSQL.

    uv run python bench/analytics.py                      # 1,000,000 accounts / 20,000,000 entries
    uv run python bench/analytics.py --accounts 100000    # a quicker look

1. Builds the data once into `<name>_tpl` (kept; --regenerate rebuilds it): bench/engine.py's generator
   (members, accounts, 20 earn lots each), then set-based SQL for what analytics reads besides earns:
   the lapsed lots expired, a redemption for a third of the accounts (with its Redemption row), 200
   stores, enrolment dates over two years with later activity, upgrades, and a value ranking.
2. Applies the migrations added since (the summary tables), checks that the ledger adds up to the
   balances (the roll-forward's closing must equal them).
3. Times the daily job `loyalty.summarise_ledger` (`loyalty.analytics.summaries_refresh`: the member
   summary, then the ledger's), from scratch and on its next run with an earn posted while it runs
   (timed, rolled back: the job locks no table), then every analytics page and CSV through Django's
   test client, signed in as a program manager: one warm-up, then p50 and p99 (nearest rank: the
   slowest of fewer than 100) of `--repeat` requests, with the queries each issues; the overview also
   with a region, a store and a 3-month period, the value pyramid with a region, the cohorts with a
   store.
4. The overview and the value pyramid without the member summary (read live), in the same run, and
   whether every CSV (each page's figures) is byte for byte the same with the summaries as without them,
   for the whole program, a region, a store and a period.
5. A day of activity after the summaries (1 in 50 accounts earns, 1 in 1,000 redeems, 1 in 1,500 has a
   redemption refunded, 2,000 members join, 1 in 500 accounts moves up a tier), every page and filter of
   step 3 read on top of them, and the same CSV comparison; rolled back once measured, so a rerun sees
   the same data.
   Last, the liability page with no ledger summary at all.

Figures go to stdout; bench/RESULTS.md records them with the command that produced them.
"""

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.engine import admin_sql, database_exists, generate, setup_django

PAGES = [
    "staff:analytics",
    "staff:analytics_liability",
    "staff:analytics_value",
    "staff:analytics_cohorts",
    "staff:analytics_csv",
    "staff:analytics_liability_csv",
    "staff:analytics_value_csv",
    "staff:analytics_cohorts_csv",
]
CSVS = [name for name in PAGES if name.endswith("_csv")]


def enrich() -> None:
    """What the engine's generator leaves out, in a few set-based statements."""
    from django.db import connection, transaction
    from django.utils import timezone

    from loyalty.models import Program
    from members.models import Store
    from rewards.models import Reward

    started = time.perf_counter()
    program = Program.objects.get(slug="bench")
    Program.objects.filter(pk=program.pk).update(point_value="0.01")
    stores = Store.objects.bulk_create(
        Store(code=f"bench-{n:03d}", name=f"Bench store {n}", region=("Brussels", "Flanders", "Wallonia")[n % 3])
        for n in range(200)
    )
    program.stores.add(*stores)
    reward = Reward.objects.create(
        program=program, name="EUR 5 voucher", kind="voucher_amount", points_cost=5, value=5, fulfilment="voucher"
    )
    bronze = program.tiers.order_by("rank").first().pk
    params = {"program": program.pk, "now": timezone.now(), "store": stores[0].pk, "reward": reward.pk}
    statements = [
        # Enrolled over two years at one of the 200 stores; back now and then since.
        "UPDATE loyalty_account SET enrolled_at = %(now)s - ((id * 37) %% 730) * interval '1 day',"
        " enrolled_at_store_id = %(store)s + id %% 200,"
        " last_activity_at = LEAST(%(now)s, %(now)s - ((id * 37) %% 730) * interval '1 day'"
        " + ((id * 13) %% 500) * interval '1 day')",
        "UPDATE members_member SET enrolment_channel = (ARRAY['counter','online','import','api'])[1 + id %% 4]",
        # The unspent part of lapsed lots becomes an expire entry naming its lot (what expire_due writes).
        "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
        " available_at, is_available, occurred_at, reason, fingerprint, created_at, reverses_id)"
        " SELECT program_id, account_id, 'expire', -remaining, 0, 0, expires_at, true, expires_at,"
        " 'Expired', '', expires_at, id FROM loyalty_ledgerentry"
        " WHERE kind = 'earn' AND is_available AND remaining > 0 AND expires_at <= %(now)s",
        "UPDATE loyalty_ledgerentry SET remaining = 0"
        " WHERE kind = 'earn' AND is_available AND remaining > 0 AND expires_at <= %(now)s",
        # A third of the accounts spent 5 points of their lot of 40 days ago on a voucher, ten days later.
        "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
        " available_at, is_available, occurred_at, reason, fingerprint, created_at, reverses_id)"
        " SELECT program_id, account_id, 'redeem', -5, 0, 0, occurred_at + interval '10 days', true,"
        " occurred_at + interval '10 days', 'EUR 5 voucher', '', occurred_at + interval '10 days', NULL"
        " FROM loyalty_ledgerentry WHERE kind = 'earn' AND account_id %% 3 = 0 AND is_available AND remaining >= 5"
        " AND occurred_at > %(now)s - interval '41 days' AND occurred_at <= %(now)s - interval '39 days'",
        "UPDATE loyalty_ledgerentry SET remaining = remaining - 5"
        " WHERE kind = 'earn' AND account_id %% 3 = 0 AND is_available AND remaining >= 5"
        " AND occurred_at > %(now)s - interval '41 days' AND occurred_at <= %(now)s - interval '39 days'",
        "INSERT INTO rewards_redemption (program_id, account_id, reward_id, points, status, channel, entry_id,"
        " created_at, idempotency_key, fingerprint, cancel_reason)"
        " SELECT program_id, account_id, %(reward)s, 5, 'fulfilled', 'desk', id, occurred_at, 'bench-' || id, '', ''"
        " FROM loyalty_ledgerentry WHERE kind = 'redeem'",
        "UPDATE loyalty_account a SET balance = s.available, pending = s.total - s.available,"
        " lifetime_expired = s.expired, lifetime_redeemed = s.redeemed"
        " FROM (SELECT account_id, SUM(points) AS total, SUM(points) FILTER (WHERE is_available) AS available,"
        " COALESCE(-SUM(points) FILTER (WHERE kind = 'expire'), 0) AS expired,"
        " COALESCE(-SUM(points) FILTER (WHERE kind = 'redeem'), 0)"
        " AS redeemed FROM loyalty_ledgerentry GROUP BY account_id) s WHERE s.account_id = a.id",
        "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, changed_at)"
        " SELECT id, %(bronze)s, tier_id, 'upgrade', %(now)s - ((id * 11) %% 365) * interval '1 day'"
        " FROM loyalty_account WHERE tier_id <> %(bronze)s",
        # The nightly value ranking, over a made-up spend (the generator writes no purchases); the per-period
        # spend and points segments count are not read by analytics.
        "INSERT INTO loyalty_accountvalue (account_id, program_id, spend_12m, purchases_12m, decile, computed_at,"
        " spend_30d, spend_90d, spend_180d, spend_365d, points_30d, points_90d, points_180d, points_365d)"
        " SELECT id, program_id, s.spend, 1 + id %% 15, NTILE(10) OVER (ORDER BY s.spend DESC, id), %(now)s,"
        " 0, 0, 0, 0, 0, 0, 0, 0"
        " FROM loyalty_account CROSS JOIN LATERAL (SELECT ((id * 7919) %% 5000) + 0.5 AS spend) s",
    ]
    params["bronze"] = bronze
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL session_replication_role = replica")  # bulk load, as the engine's generator does
        for statement in statements:
            cursor.execute(statement, params)
    connection.close()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    print(f"enriched in {time.perf_counter() - started:.0f} s")


def manager_client():
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.test import Client

    from members import services as member_services
    from members.models import User
    from members.roles import Role

    user = User.objects.filter(email="bench.manager@example.com").first() or member_services.staff_user_create(
        email="bench.manager@example.com", password="bench-Password-9", role=Role.PROGRAM_MANAGER
    )
    if not user.authenticator_set.exists():
        TOTP.activate(user, generate_totp_secret())
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    return client


def percentile(seconds: list[float], p: float) -> float:
    """Nearest rank: with fewer than 100 requests, p99 is the slowest."""
    ordered = sorted(seconds)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def time_page(client, name: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.urls import reverse

    name, _sep, query = name.partition("?")
    url = reverse(name) + (f"?{query}" if query else "")
    queries = []  # counted by a wrapper: the request_started signal empties connection.queries
    with connection.execute_wrapper(
        lambda execute, sql, params, many, context: queries.append(sql) or execute(sql, params, many, context)
    ):
        assert client.get(url).status_code == 200, url  # warm-up, and the queries it issues
    seconds = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        seconds.append(time.perf_counter() - started)
        assert response.status_code == 200
    return percentile(seconds, 50), percentile(seconds, 99), len(queries)


def report(client, label: str, names: list[str], repeat: int) -> dict[str, float]:
    print(f"\n{label} ({repeat} requests each)\n| page | p50 s | p99 s | queries | < 1 s |\n|---|---:|---:|---:|:---:|")
    p99s = {}
    for name in names:
        p50, p99, queries = time_page(client, name, repeat)
        print(f"| `{name}` | {p50:.3f} | {p99:.3f} | {queries} | {'met' if p99 < 1 else '**missed**'} |", flush=True)
        p99s[name] = p99
    return p99s


def csv_contents(client, filters: list[str]) -> dict[str, bytes]:
    from django.urls import reverse

    return {(name, query): client.get(f"{reverse(name)}?{query}").content for name in CSVS for query in filters}


def same(summarised: dict[str, bytes], live: dict[str, bytes]) -> None:
    """Every CSV (every figure of every page) byte for byte, from the summaries and read live."""
    differ = [key for key in summarised if summarised[key] != live[key]]
    print(
        f"{len(summarised)} CSVs (4 pages x {len(summarised) // 4} filters) the same from the summaries as read live:"
        f" {not differ}{'' if not differ else f' (differ: {differ})'}",
        flush=True,
    )


def a_day_of_activity(program) -> int:
    """After the summaries: 1 in 50 accounts earns 10 points, 1 in 1,000 redeems 5, 1 in 1,500 has its
    redemption refunded, 2,000 members join at the stores, 1 in 500 accounts moves up from the entry
    tier. Returns the entries posted."""
    from django.db import connection
    from django.utils import timezone

    bronze, silver = program.tiers.order_by("rank").values_list("pk", flat=True)[:2]
    params = {"program": program.pk, "now": timezone.now(), "bronze": bronze, "silver": silver}
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " expires_at, available_at, is_available, occurred_at, reason, fingerprint, created_at)"
            " SELECT program_id, id, 'earn', 10, 10, 10, %(now)s + interval '12 months', %(now)s, true, %(now)s,"
            " '10 pts', '', %(now)s FROM loyalty_account WHERE id %% 50 = 0",
            params,
        )
        entries = cursor.rowcount
        cursor.execute("UPDATE loyalty_account SET balance = balance + 10 WHERE id %% 50 = 0", params)
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " available_at, is_available, occurred_at, reason, fingerprint, created_at)"
            " SELECT program_id, id, 'redeem', -5, 0, 0, %(now)s, true, %(now)s, 'EUR 5 voucher', '', %(now)s"
            " FROM loyalty_account WHERE id %% 1000 = 1 AND balance >= 5",
            params,
        )
        entries += cursor.rowcount
        cursor.execute("UPDATE loyalty_account SET balance = balance - 5 WHERE id %% 1000 = 1 AND balance >= 5", params)
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " available_at, is_available, occurred_at, reason, fingerprint, created_at, reverses_id)"
            " SELECT program_id, account_id, 'reverse', 5, 0, 0, %(now)s, true, %(now)s, 'Refund', '', %(now)s, id"
            " FROM loyalty_ledgerentry WHERE kind = 'redeem' AND account_id %% 1500 = 0",
            params,
        )
        entries += cursor.rowcount
        cursor.execute(
            "UPDATE loyalty_account SET balance = balance + 5 WHERE id %% 1500 = 0 AND lifetime_redeemed > 0", params
        )
        cursor.execute(
            "INSERT INTO members_member (member_no, first_name, last_name, company, email, phone, street,"
            " postal_code, city, country, region, member_type, language, status, enrolment_channel,"
            " marketing_consent, marketing_consent_channel, enrolled_at)"
            " SELECT 'T' || g, 'Today', 'Member ' || g, '', '', '', '', '', '', 'BE',"
            " (ARRAY['Brussels','Flanders','Wallonia'])[1 + g %% 3], 'consumer', 'en', 'active', 'counter', false,"
            " '', %(now)s FROM generate_series(1, 2000) g",
            params,
        )
        cursor.execute(
            "INSERT INTO loyalty_account (member_id, program_id, balance, pending, tier_id, tier_since,"
            " lifetime_earned, lifetime_redeemed, lifetime_expired, last_activity_at, enrolled_at,"
            " enrolled_at_store_id)"
            " SELECT m.id, %(program)s, 0, 0, %(bronze)s, %(now)s, 0, 0, 0, %(now)s, %(now)s,"
            " (SELECT MIN(id) FROM members_store WHERE code LIKE 'bench-%%') + m.id %% 200"
            " FROM members_member m WHERE m.member_no LIKE 'T%%'",
            params,
        )
        cursor.execute(
            "INSERT INTO loyalty_tierchange (account_id, from_tier_id, to_tier_id, reason, changed_at)"
            " SELECT id, %(bronze)s, %(silver)s, 'upgrade', %(now)s FROM loyalty_account"
            " WHERE id %% 500 = 0 AND tier_id = %(bronze)s",
            params,
        )
        cursor.execute(
            "UPDATE loyalty_account SET tier_id = %(silver)s WHERE id %% 500 = 0 AND tier_id = %(bronze)s", params
        )
    return entries


def earn_during_the_daily_job(program) -> None:
    """The daily job run as the job runner runs it (in one transaction), and an earn posted from another
    connection while it runs, timed; the earn is rolled back (the data stays as generated)."""
    import threading

    from django.db import connection, transaction
    from django.utils import timezone

    from loyalty import analytics, services
    from loyalty.models import Account

    account = Account.objects.filter(program=program).order_by("pk").first()
    seconds = {}

    def job():
        started = time.perf_counter()
        with transaction.atomic():
            analytics.summaries_refresh(program=program)
        seconds["job"] = time.perf_counter() - started
        connection.close()

    runner = threading.Thread(target=job)
    runner.start()
    time.sleep(3)  # well inside the job: its mark is taken, it is summing
    started = time.perf_counter()
    with transaction.atomic():
        services.earn_for_purchase(
            account=account,
            amount="12.00",
            currency="EUR",
            receipt_number="bench-during-job",
            occurred_at=timezone.now(),
            idempotency_key="bench-during-job",
        )
        seconds["earn"] = time.perf_counter() - started
        transaction.set_rollback(True)
    job_running = runner.is_alive()
    runner.join()
    print(
        f"  the daily job again, in one transaction (its next run): {seconds['job']:.1f} s; an earn posted 3 s"
        f" into it took {seconds['earn'] * 1000:.0f} ms (job still running then: {job_running})",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--entries-per-account", type=int, default=20)
    parser.add_argument("--name", default="loyalty_bench_analytics")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild the data.")
    parser.add_argument("--generate-only", action="store_true", help="Build the data if missing; measure nothing.")
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--enrich-inside", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.enrich_inside:
        setup_django(args.enrich_inside)
        enrich()
        return

    name = f"{args.name}_{args.accounts}"
    if args.regenerate or not database_exists(name):
        import os
        import subprocess

        started = time.perf_counter()
        generate(name, args.accounts, args.entries_per_account)
        env = {**os.environ, "DEBUG": "False"}
        subprocess.run([sys.executable, __file__, "--enrich-inside", name], check=True, env=env)
        print(f"data ready in {time.perf_counter() - started:.0f} s")
    if args.generate_only:
        return

    setup_django(name)
    from dateutil.relativedelta import relativedelta
    from django.conf import settings
    from django.core.management import call_command
    from django.db import transaction
    from django.db.models import Sum
    from django.utils import timezone

    from loyalty import analytics
    from loyalty.models import (
        Account,
        LedgerEntry,
        LedgerMonth,
        LedgerMonthMark,
        MemberDecile,
        MemberMonth,
        MemberMonthMark,
        Program,
    )
    from members.models import Store

    call_command("migrate", verbosity=0)  # the tables added since the data was generated
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    program = Program.objects.get(slug="bench")
    entries = LedgerEntry.objects.count()
    print(f"PostgreSQL, data: {Account.objects.count():,} accounts, {entries:,} ledger entries")

    def drop_member_summary():
        MemberMonthMark.objects.filter(program=program).delete()
        MemberMonth.objects.filter(program=program).delete()
        MemberDecile.objects.filter(program=program).delete()

    drop_member_summary()
    LedgerMonth.objects.filter(program=program).delete()
    LedgerMonthMark.objects.filter(program=program).delete()
    print("\nThe daily job loyalty.summarise_ledger (loyalty.analytics.summaries_refresh), from scratch:")
    started = time.perf_counter()
    rows = analytics.member_months_refresh(program=program)
    members_seconds = time.perf_counter() - started
    print(f"  member_months_refresh: {rows:,} rows in {members_seconds:.1f} s")
    started = time.perf_counter()
    rows = analytics.ledger_months_refresh(program=program)
    ledger_seconds = time.perf_counter() - started
    print(f"  ledger_months_refresh: {rows:,} rows in {ledger_seconds:.1f} s")
    print(f"  in all {members_seconds + ledger_seconds:.1f} s")
    started = time.perf_counter()
    analytics.member_months_refresh(program=program)
    print(f"  member_months_refresh again (its next run): {time.perf_counter() - started:.1f} s")
    earn_during_the_daily_job(program)

    ledger = analytics.ledger_read(program=program)
    owed = Account.objects.filter(program=program).aggregate(s=Sum("balance") + Sum("pending"))["s"]
    closing = analytics.roll_forward(ledger)[-1].closing
    print(f"roll-forward closing {closing:,} = balances + pending {owed:,}: {closing == owed}")
    assert closing == owed

    client = manager_client()
    store = Store.objects.filter(code="bench-007").first()
    this_month = analytics.month_start(timezone.now())
    period = f"start={this_month - relativedelta(months=2):%Y-%m}&end={this_month:%Y-%m}"
    filters = [f"program={program.pk}", "region=Flanders", f"store={store.pk}", period]
    filtered = [
        "staff:analytics?region=Flanders",
        f"staff:analytics?store={store.pk}",
        f"staff:analytics?{period}",
        "staff:analytics_value?region=Flanders",
        f"staff:analytics_cohorts?store={store.pk}",
    ]
    report(client, "Summaries fresh", PAGES + filtered, args.repeat)
    summarised = csv_contents(client, filters)

    with transaction.atomic():
        drop_member_summary()
        report(
            client,
            "No member summary (the same pages read live; same data, same run)",
            ["staff:analytics", "staff:analytics_value", "staff:analytics_csv", "staff:analytics_value_csv"],
            1,
        )
        same(summarised, csv_contents(client, filters))
        transaction.set_rollback(True)

    with transaction.atomic():
        tail = a_day_of_activity(program)
        report(
            client,
            f"{tail:,} entries (earns, redemptions, refunds), 2,000 enrolments and 1 in 500 upgrades since the"
            " summaries (rolled back after)",
            PAGES + filtered,
            args.repeat,
        )
        summarised = csv_contents(client, filters)
        with transaction.atomic():
            drop_member_summary()
            same(summarised, csv_contents(client, filters))
            transaction.set_rollback(True)
        transaction.set_rollback(True)

    LedgerMonthMark.objects.filter(program=program).delete()
    LedgerMonth.objects.filter(program=program).delete()
    report(client, "No ledger summary at all (the whole ledger read live)", ["staff:analytics_liability"], 1)
    analytics.summaries_refresh(program=program)
    admin_sql("SELECT 1")


if __name__ == "__main__":
    main()
