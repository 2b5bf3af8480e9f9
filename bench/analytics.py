"""Analytics pages benchmark on PostgreSQL.

    uv run python bench/analytics.py                      # 1,000,000 accounts / 20,000,000 entries
    uv run python bench/analytics.py --accounts 100000    # a quicker look

1. Builds the data once into `<name>_tpl` (kept; --regenerate rebuilds it): bench/engine.py's generator
   (members, accounts, 20 earn lots each), then set-based SQL for what analytics reads besides earns:
   the lapsed lots expired, a redemption for a third of the accounts (with its Redemption row), 200
   stores, enrolment dates over two years with later activity, upgrades, and a value ranking.
2. Checks that the ledger adds up to the balances (the roll-forward's closing must equal them).
3. Times the daily summary (`loyalty.analytics.ledger_months_refresh`), then every analytics page and
   CSV through Django's test client, signed in as a program manager: one warm-up, then the median of
   `--repeat` requests, with the queries each issues. Then once more with a day of entries posted after
   the summary (read live), and the liability page with no summary at all, for comparison.

Figures go to stdout; bench/RESULTS.md records them with the command that produced them.
"""

import argparse
import statistics
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
        # The nightly value ranking, over a made-up spend (the generator writes no purchases).
        "INSERT INTO loyalty_accountvalue (account_id, program_id, spend_12m, purchases_12m, decile, computed_at)"
        " SELECT id, program_id, s.spend, 1 + id %% 15, NTILE(10) OVER (ORDER BY s.spend DESC, id), %(now)s"
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


def time_page(client, name: str, repeat: int) -> tuple[float, float, int]:
    from django.db import connection
    from django.urls import reverse

    url = reverse(name)
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
    return statistics.median(seconds), max(seconds), len(queries)


def report(client, label: str, names: list[str], repeat: int) -> None:
    print(f"\n{label}\n| page | median s | max s | queries |\n|---|---:|---:|---:|")
    for name in names:
        median, worst, queries = time_page(client, name, repeat)
        print(f"| `{name}` | {median:.3f} | {worst:.3f} | {queries} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1_000_000)
    parser.add_argument("--entries-per-account", type=int, default=20)
    parser.add_argument("--name", default="loyalty_bench_analytics")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild the data.")
    parser.add_argument("--repeat", type=int, default=3)
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

    setup_django(name)
    from django.conf import settings
    from django.db import connection
    from django.db.models import Sum

    from loyalty import analytics
    from loyalty.models import Account, LedgerEntry, LedgerMonth, LedgerMonthMark, Program

    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    program = Program.objects.get(slug="bench")
    entries = LedgerEntry.objects.count()
    print(f"PostgreSQL, data: {Account.objects.count():,} accounts, {entries:,} ledger entries")

    LedgerMonth.objects.filter(program=program).delete()
    LedgerMonthMark.objects.filter(program=program).delete()
    started = time.perf_counter()
    rows = analytics.ledger_months_refresh(program=program)
    print(f"\nledger_months_refresh (the daily job): {rows} rows in {time.perf_counter() - started:.1f} s")

    ledger = analytics.ledger_read(program=program)
    owed = Account.objects.filter(program=program).aggregate(s=Sum("balance") + Sum("pending"))["s"]
    closing = analytics.roll_forward(ledger)[-1].closing
    print(f"roll-forward closing {closing:,} = balances + pending {owed:,}: {closing == owed}")
    assert closing == owed

    client = manager_client()
    report(client, "Summary fresh", PAGES, args.repeat)

    # A day of activity after the summary (1 in 50 accounts earns): read live from the ledger by id.
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO loyalty_ledgerentry (program_id, account_id, kind, points, qualifying_points, remaining,"
            " expires_at, available_at, is_available, occurred_at, reason, fingerprint, created_at)"
            " SELECT program_id, id, 'earn', 10, 10, 10, now() + interval '12 months', now(), true, now(),"
            " '10 pts', '', now() FROM loyalty_account WHERE id %% 50 = 0",
            [],
        )
        cursor.execute("UPDATE loyalty_account SET balance = balance + 10 WHERE id %% 50 = 0", [])
        tail = cursor.rowcount
    report(client, f"{tail:,} entries posted since the summary", PAGES[:2], args.repeat)

    LedgerMonthMark.objects.filter(program=program).delete()
    LedgerMonth.objects.filter(program=program).delete()
    report(client, "No summary at all (the whole ledger read live)", ["staff:analytics_liability"], 1)
    analytics.ledger_months_refresh(program=program)
    admin_sql("SELECT 1")


if __name__ == "__main__":
    main()
