"""Desk search and member lookups at 1,000,000 members, on PostgreSQL.

    uv run python bench/members.py            # needs the template database of bench/engine.py

Copies the template built by bench/engine.py (1,000,000 members, each with an account), makes a store
run the bench program, and times the clerk desk's as-you-type search (`desk_member_search`) for the
beginning of a card number, a phone, an email and a last name, and the duplicate check run before
enrolment: p50/p99 latency and queries per call. Figures go to bench/RESULTS.md.
"""

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import admin_sql, database_exists, fresh_copy, setup_django


def timed(label: str, calls: list) -> float:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as one:
        calls[0]()
    latencies = []
    for call in calls:
        started = time.perf_counter()
        call()
        latencies.append((time.perf_counter() - started) * 1000)
    latencies.sort()
    p99 = latencies[max(int(len(latencies) * 0.99) - 1, 0)]
    p50 = statistics.median(latencies)
    print(f"{label:<30} {len(calls):>5} calls  p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  {len(one)} queries per call")
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="loyalty_bench")
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    template, run = f"{args.name}_tpl", f"{args.name}_members"
    if not database_exists(template):
        sys.exit(f"Build the data first: uv run python bench/engine.py (template database {template}).")
    fresh_copy(template, run)
    setup_django(run)
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)  # the template may predate the latest migrations
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE members_member")
    from loyalty import selectors
    from loyalty.models import Program
    from members.models import Member, Store
    from members.services import member_duplicates

    store = Store.objects.create(code="BENCH-01", name="Bench store")
    Program.objects.get(slug="bench").stores.add(store)
    # Give a slice of the members the contact details a real base has (the generator leaves them empty).
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE members_member SET phone = '+3247' || lpad(id::text, 7, '0'),"
            " email = 'member' || id || '@example.com', last_name = (ARRAY['Peeters','Maes','Janssens','Claes',"
            "'Dubois','Lambert','Willems','Mertens'])[1 + id % 8] || ' ' || id WHERE id % 2 = 0"
        )
        cursor.execute("ANALYZE members_member")
    total = Member.objects.count()
    print(f"PostgreSQL, {os.cpu_count()} cores; {total:,} members")
    rng = random.Random(7)
    ids = [rng.randrange(2, total, 2) for _ in range(args.calls)]
    cases = {
        "search: card number prefix": lambda i: selectors.desk_member_search(store=store, query=f"B{i}"[:5]),
        "search: phone prefix": lambda i: selectors.desk_member_search(store=store, query=f"047{i:07d}"[:8]),
        "search: email prefix": lambda i: selectors.desk_member_search(store=store, query=f"member{i}@"),
        "search: last name prefix": lambda i: selectors.desk_member_search(store=store, query=f"Maes {i}"[:7]),
        "duplicate check (email+phone)": lambda i: member_duplicates(
            email=f"MEMBER{i}@example.com", phone=f"+3247{i:07d}"
        ),
    }
    with_indexes = {label: timed(label, [lambda i=i, call=call: call(i) for i in ids]) for label, call in cases.items()}
    # Baseline in the same run: the same calls without migration 0007's pattern-ops indexes.
    from importlib import import_module

    search_indexes = import_module("members.migrations.0007_member_search_indexes").INDEXES
    with connection.cursor() as cursor:
        for name in search_indexes:
            cursor.execute(f"DROP INDEX {name}")
        cursor.execute("ANALYZE members_member")
    print("without the search indexes (baseline):")
    for label, call in cases.items():
        p50 = timed(label, [lambda i=i, call=call: call(i) for i in ids[:20]])
        print(f"{'':<28} indexes make it {p50 / with_indexes[label]:,.0f}x faster (p50)")
    connection.close()
    admin_sql(f'DROP DATABASE IF EXISTS "{run}" WITH (FORCE)')


if __name__ == "__main__":
    main()
