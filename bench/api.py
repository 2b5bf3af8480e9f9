"""Point-of-sale API throughput: purchases through gunicorn, against the floor any earn must pay.

    uv run python bench/api.py                       # 100,000 members, 2,000,000 ledger entries
    uv run python bench/api.py --members 20000 --seconds 10

Builds (once) a template database with the members, accounts and ledger lots of bench/engine.py's
generator, copies it, adds 5 stores with 10 tills each (one API key per till), category rules and a
return window, and serves the app with gunicorn on 127.0.0.1 under production settings (PostgreSQL,
Redis for the rate limit's counters, persistent database connections). Then, for the real
`POST /api/v1/purchases/` and for the floor (`bench/floor.py`: same DRF view class and key
authentication, then lock one account row and insert one row):

1. closed loop: `--clients` concurrent clients, each with its own keep-alive connection, post as
   fast as answers come back for `--seconds`: requests/s, p50, p99;
2. paced: `--rate` requests/s scheduled at fixed instants for `--seconds`; latency counts from the
   scheduled instant, so a slow answer also delays the ones queued behind it (no coordinated omission).

Each purchase names a random member, a new receipt number, a new Idempotency-Key, 0-4 product lines.
Every answer must be 201 (the bench stops otherwise); `check_ledger` runs at the end. Prints the
figures and the ratio purchases/floor. Record results in bench/RESULTS.md.
"""

import argparse
import datetime
import http.client
import json
import os
import random
import secrets
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import database_exists, database_url, fresh_copy, generate, setup_django

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent

CATEGORIES = ["PAINT", "TOOLS", "GARDEN", "LIGHTING", "OTHER"]


def prepare(run: str, members: int) -> tuple[list[str], list[str]]:
    """Stores, tills and their keys, the category rules and the floor's table; returns (keys, member numbers)."""
    setup_django(run)
    from decimal import Decimal

    from django.core.management import call_command
    from django.db import connection
    from floor import CREATE_TABLE

    from loyalty.models import EarnRule, Program
    from members.models import Member, Store
    from members.services import api_key_create

    call_command("migrate", verbosity=0)  # the template may predate the latest migrations
    program = Program.objects.get(slug="bench")
    program.pending_days = 14
    program.currency = "EUR"
    program.save()
    for category, rate in (("PAINT", "2"), ("GARDEN", "1.5")):
        EarnRule.objects.create(
            program=program,
            name=f"{category} bonus",
            activity_type="purchase",
            calculation="per_currency_unit",
            rate=Decimal(rate),
            product_categories=[category],
        )
    keys = []
    for n in range(1, 6):
        store = Store.objects.create(code=f"BENCH-{n:02d}", name=f"Bench store {n}", region="Brussels")
        program.stores.add(store)
        keys += [api_key_create(store=store, name=f"Till {t}")[1] for t in range(1, 11)]
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
        cursor.execute("ANALYZE")
    member_nos = list(Member.objects.order_by("?").values_list("member_no", flat=True)[: min(members, 50_000)])
    connection.close()
    return keys, member_nos


class Server:
    """gunicorn with the production settings (plus the floor's URL), on 127.0.0.1."""

    def __init__(self, run: str, port: int, workers: int, threads: int):
        self.port = port
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(BENCH), str(ROOT)]),
            "DJANGO_SETTINGS_MODULE": "floor_settings",
            "DATABASE_URL": database_url(run),
            "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
            "CACHE_KEY_PREFIX": f"bench-{secrets.token_hex(4)}",  # fresh rate-limit counters every run
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "EMAIL_URL": "smtp://127.0.0.1:2525",
            "API_RATE_LIMIT": "100000/min",
            "LOG_LEVEL": "WARNING",
        }
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "loyalty.wsgi",
                "--bind",
                f"127.0.0.1:{port}",
                "--worker-class",
                "gthread",
                "--workers",
                str(workers),
                "--threads",
                str(threads),
                "--keep-alive",
                "30",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz/", headers={"X-Forwarded-Proto": "https"})
                if connection.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.3)
        self.stop()
        sys.exit("gunicorn did not answer /healthz/ within 60 s")

    def stop(self):
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(timeout=30)


class Till:
    """One client: a keep-alive connection, a key, and realistic purchases for random members."""

    def __init__(self, port: int, key: str, member_nos: list[str], seed: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.key = key
        self.member_nos = member_nos
        self.rng = random.Random(seed)
        self.seed = seed
        self.count = 0

    def body(self) -> dict:
        self.count += 1
        lines = [
            {"category": self.rng.choice(CATEGORIES), "amount": f"{self.rng.uniform(2, 80):.2f}"}
            for _ in range(self.rng.randint(0, 4))
        ]
        amount = sum(float(line["amount"]) for line in lines) or self.rng.uniform(5, 300)
        return {
            "member": self.rng.choice(self.member_nos),
            "amount": f"{amount:.2f}",
            "currency": "EUR",
            "receipt_number": f"R{self.seed}-{self.count}-{uuid.uuid4().hex[:8]}",
            "occurred_at": datetime.datetime.now(datetime.UTC).isoformat(),
            "lines": lines,
        }

    def post(self, path: str) -> float:
        payload = json.dumps(self.body())
        headers = {
            "Authorization": f"Api-Key {self.key}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
            "X-Forwarded-Proto": "https",
            "Host": "127.0.0.1",
        }
        started = time.perf_counter()
        self.connection.request("POST", path, payload, headers)
        response = self.connection.getresponse()
        content = response.read()
        elapsed = time.perf_counter() - started
        if response.status != 201:
            raise RuntimeError(f"{path} answered {response.status}: {content[:300]!r}")
        return elapsed


def percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(int(len(sorted_values) * share), len(sorted_values) - 1)]


def summary(label: str, latencies: list[float], seconds: float) -> dict:
    latencies = sorted(latencies)
    figures = {
        "requests": len(latencies),
        "rps": len(latencies) / seconds,
        "p50": statistics.median(latencies) * 1000,
        "p99": percentile(latencies, 0.99) * 1000,
    }
    print(
        f"  {label:<34} {figures['requests']:>7} requests  {figures['rps']:8.1f} req/s"
        f"  p50 {figures['p50']:6.1f} ms  p99 {figures['p99']:6.1f} ms",
        flush=True,
    )
    return figures


def closed_loop(port, keys, member_nos, path, clients, seconds) -> tuple[list[float], float]:
    tills = [Till(port, keys[i % len(keys)], member_nos, seed=i) for i in range(clients)]
    latencies: list[list[float]] = [[] for _ in tills]
    errors = []
    stop_at = time.perf_counter() + seconds

    def run(i):
        try:
            while time.perf_counter() < stop_at:
                latencies[i].append(tills[i].post(path))
        except Exception as error:  # reported below: the bench must not hide a failed request
            errors.append(error)

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if errors:
        raise errors[0]
    return [value for per_till in latencies for value in per_till], elapsed


def paced(port, keys, member_nos, path, rate, seconds, pool=48) -> tuple[list[float], float]:
    """`rate` requests a second at fixed instants; a request's latency counts from its instant."""
    total = int(rate * seconds)
    start = time.perf_counter() + 0.2
    instants = iter(start + i / rate for i in range(total))
    lock = threading.Lock()
    latencies, errors = [], []
    tills = [Till(port, keys[i % len(keys)], member_nos, seed=1000 + i) for i in range(pool)]

    def run(till):
        try:
            while True:
                with lock:
                    instant = next(instants, None)
                if instant is None:
                    return
                wait = instant - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                till.post(path)
                latencies.append(time.perf_counter() - instant)
        except Exception as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(till,)) for till in tills]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return latencies, time.perf_counter() - start


def check_ledger(run: str) -> str:
    env = {**os.environ, "DATABASE_URL": database_url(run), "DEBUG": "False"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check_ledger"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    return (result.stdout + result.stderr).strip().splitlines()[-1] if result.returncode == 0 else result.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--entries-per-account", type=int, default=20)
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients of the closed loop")
    parser.add_argument("--rate", type=float, default=200, help="requests/s of the paced run")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=(os.cpu_count() or 1) * 2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--port", type=int, default=8471)
    parser.add_argument("--name", default="loyalty_bench_api")
    parser.add_argument("--regenerate", action="store_true", help="Rebuild the template database.")
    parser.add_argument(
        "--skeleton", action="store_true", help="Also measure bench/floor.py's skeleton of a purchase's statements."
    )
    parser.add_argument(
        "--only",
        choices=["floor", "purchases", "skeleton", "skeleton-pair"],
        help="Measure this endpoint alone (e.g. to profile the server while it runs); no ratio is printed.",
    )
    args = parser.parse_args()

    template, run = f"{args.name}_tpl", args.name
    if args.regenerate or not database_exists(template):
        generate(template, args.members, args.entries_per_account)
    fresh_copy(template, run)
    keys, member_nos = prepare(run, args.members)
    print(
        f"{os.cpu_count()} cores; {args.members:,} members, {args.members * args.entries_per_account:,} entries;"
        f" gunicorn gthread {args.workers} workers x {args.threads} threads; {len(keys)} till keys",
        flush=True,
    )
    server = Server(run, args.port, args.workers, args.threads)
    results = {}
    try:
        endpoints = [("floor", "/bench/floor/"), ("purchases", "/api/v1/purchases/")]
        if args.skeleton or args.only in {"skeleton", "skeleton-pair"}:
            # last: their rows do not weigh on the purchases
            endpoints += [("skeleton", "/bench/skeleton/"), ("skeleton-pair", "/bench/skeleton-pair/")]
        if args.only:
            endpoints = [(label, path) for label, path in endpoints if label == args.only]
        for label, path in endpoints:
            closed_loop(args.port, keys, member_nos, path, args.clients, 3)  # warm-up: connections, caches
            latencies, elapsed = closed_loop(args.port, keys, member_nos, path, args.clients, args.seconds)
            results[label, "closed"] = summary(f"{label}: {args.clients} clients, flat out", latencies, elapsed)
            latencies, elapsed = paced(args.port, keys, member_nos, path, args.rate, args.seconds)
            results[label, "paced"] = summary(f"{label}: paced at {args.rate:g} req/s", latencies, elapsed)
    finally:
        server.stop()
    if args.only:
        print(f"  check_ledger: {check_ledger(run)}")
        return
    ratio = results["purchases", "closed"]["rps"] / results["floor", "closed"]["rps"]
    paced_p99 = results["purchases", "paced"]["p99"]
    print(f"  purchases / floor throughput: {ratio:.2f} (goal >= 0.7)")
    if args.skeleton:
        skeleton = results["skeleton", "closed"]["rps"] / results["floor", "closed"]["rps"]
        print(f"  skeleton / floor throughput: {skeleton:.2f} (the statements alone, without the engine)")
        pair = results["skeleton-pair", "closed"]["rps"] / results["floor", "closed"]["rps"]
        print(f"  skeleton-pair / floor throughput: {pair:.2f} (the same writes in two statements)")
    print(f"  purchases p99 at {args.rate:g} req/s: {paced_p99:.1f} ms (goal < 25 ms)")
    print(f"  check_ledger: {check_ledger(run)}")


if __name__ == "__main__":
    main()
