"""Batch jobs through real Celery workers on 1,000,000 accounts / 20,000,000 ledger entries.

    uv run python bench/jobs.py                      # expiry, pending release and tier review, 2 worker processes
    uv run python bench/jobs.py --jobs loyalty.expire_points --concurrency 2 --baseline
    uv run python bench/jobs.py --jobs loyalty.expire_points --setting jit=off   # a server setting, per copy
    uv run python bench/jobs.py --jobs loyalty.expire_points --migrate-to loyalty:0013_segment_spend \
        --sql "VACUUM FULL loyalty_account"                                       # the schema before 0014

For each job: a fresh copy of the engine benchmark's template database (bench/engine.py builds it,
`loyalty_bench_tpl`), migrated; a `celery worker` (prefork, --concurrency processes) on its own Redis
database and queue; the run started through loyalty.core.jobs as the schedule would, and timed from
start to the run's last chunk. Then check_ledger's invariants on the result. With --baseline, the same
job on another fresh copy through the services in this one process (no Celery), for the ratio.
--setting sets a PostgreSQL setting on each copy (ALTER DATABASE ... SET); --migrate-to migrates each
copy back to an earlier migration, to measure a schema change against the schema before it; --sql runs
statements on each copy after that (e.g. VACUUM FULL to rewrite a table at a restored fillfactor).

Connection: PGHOST/PGPORT/PGUSER as bench/engine.py; Redis at BENCH_REDIS_URL (default db 14).
"""

import argparse
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import admin_sql, database_exists, database_url, fresh_copy, generate, setup_django  # noqa: E402

REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = "bench-jobs"
JOBS = {  # job -> (service doing the whole job in one process, days after now for its clock)
    "loyalty.expire_points": ("expire_due", 0),
    "loyalty.release_pending": ("release_pending", 11),
    "loyalty.evaluate_tiers": ("evaluate_tiers", 0),
}


def migrate(name: str, target: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": database_url(name), "DEBUG": "False"}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0", *target], check=True, env=env, cwd=ROOT)


def start_worker(name: str, concurrency: int, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": database_url(name),
        "REDIS_URL": REDIS,
        "CELERY_QUEUE": QUEUE,
        "DEBUG": "False",
        "DJANGO_SETTINGS_MODULE": "loyalty.settings.local",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "loyalty", "worker", "--pool", "prefork", "--concurrency",
         str(concurrency), "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--queues", QUEUE],
        cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    return process


def stop_worker(process: subprocess.Popen) -> None:
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def through_worker(job: str, as_of, concurrency: int) -> dict:
    from django.utils import timezone

    from loyalty.core import jobs
    from loyalty.core.models import JobRun

    log = Path("/tmp") / f"bench-jobs-{job}.log"
    worker = start_worker(os.environ["BENCH_DB"], concurrency, log)
    try:
        time.sleep(3)  # the worker connects to Redis and PostgreSQL
        started = time.perf_counter()
        run, _created = jobs.job_run_start(job=job, period=f"bench {timezone.now():%H%M%S}", as_of=as_of)
        while JobRun.objects.filter(pk=run.pk, status=JobRun.Status.RUNNING).exists():
            time.sleep(0.2)
        seconds = time.perf_counter() - started
    finally:
        stop_worker(worker)
    run = jobs.runs_with_progress().get(pk=run.pk)
    assert run.status == JobRun.Status.SUCCEEDED, f"{job} {run.status}: {run.error} (see {log})"
    return {"rows": run.rows, "seconds": seconds, "chunks": run.chunks_total}


def in_process(job: str, as_of) -> dict:
    from loyalty import services
    from loyalty.models import Program

    service = getattr(services, JOBS[job][0])
    started = time.perf_counter()
    result = service(program=Program.objects.get(slug="bench"), as_of=as_of)
    return {"rows": result.rows, "seconds": time.perf_counter() - started, "chunks": None}


def on_copy(name: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(database_url(name), autocommit=True) as conn:  # VACUUM refuses a transaction
        conn.execute(statement)


def measure(
    template: str, run_db: str, job: str, how, *, target: list[str], settings: list[str], statements: list[str]
) -> dict:
    from django.db import connection
    from django.utils import timezone

    from loyalty.selectors import ledger_breaches

    connection.close()
    fresh_copy(template, run_db)
    migrate(run_db, target)
    for setting in settings:
        name, value = setting.split("=", 1)
        admin_sql(f'ALTER DATABASE "{run_db}" SET {name} = {value}')  # for every connection opened from now
    for statement in statements:
        on_copy(run_db, statement)
    as_of = timezone.now() + timedelta(days=JOBS[job][1])
    figures = how(job, as_of)
    figures["ledger"] = ledger_breaches(limit=5) or "sound"
    connection.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--name", default="loyalty_bench", help="Template is <name>_tpl (bench/engine.py).")
    parser.add_argument("--jobs", default=",".join(JOBS))
    parser.add_argument("--concurrency", type=int, default=2, help="Worker processes.")
    parser.add_argument("--baseline", action="store_true", help="Also run each job in this process, no Celery.")
    parser.add_argument("--setting", action="append", default=[], help="NAME=VALUE: a PostgreSQL setting per copy.")
    parser.add_argument("--migrate-to", help="APP:MIGRATION: migrate each copy back to it before the job.")
    parser.add_argument("--sql", action="append", default=[], help="A statement to run on each copy before the job.")
    args = parser.parse_args()
    target = args.migrate_to.split(":", 1) if args.migrate_to else []

    template, run_db = f"{args.name}_tpl", f"{args.name}_jobs"
    if not database_exists(template):
        generate(template, 1_000_000, 20)
    os.environ["BENCH_DB"] = run_db
    # This process queues the runs' work on the workers' Redis and queue (not eagerly in itself).
    os.environ.update(JOB_PARALLELISM=str(args.concurrency), REDIS_URL=REDIS, CELERY_QUEUE=QUEUE)
    admin_sql(f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{run_db}" TEMPLATE "{template}"')
    setup_django(run_db)
    subprocess.run(["redis-cli", "-u", REDIS, "DEL", QUEUE], check=False, capture_output=True)
    print(
        f"PostgreSQL, {os.cpu_count()} cores; worker: prefork x{args.concurrency}; {template}"
        f"; settings {args.setting or 'as installed'}; schema {args.migrate_to or 'latest'} {args.sql or ''}"
    )
    print(f"{'job':<26} {'how':<18} {'rows':>11} {'chunks':>7} {'seconds':>8} {'rows/s':>9}  ledger")
    for job in args.jobs.split(","):
        ways = [("worker", lambda j, a: through_worker(j, a, args.concurrency))]
        if args.baseline:
            ways.append(("one process", in_process))
        results = {}
        for label, how in ways:
            figures = measure(template, run_db, job, how, target=target, settings=args.setting, statements=args.sql)
            results[label] = figures
            print(
                f"{job:<26} {label:<18} {figures['rows']:>11,} {figures['chunks'] or '':>7} {figures['seconds']:>8.1f}"
                f" {figures['rows'] / figures['seconds']:>9,.0f}  {figures['ledger']}",
                flush=True,
            )
        if len(results) == 2:
            print(
                f"{job:<26} ratio one process / worker: {results['one process']['seconds'] / results['worker']['seconds']:.2f}x"
            )
    admin_sql(f'DROP DATABASE IF EXISTS "{run_db}" WITH (FORCE)')


if __name__ == "__main__":
    main()
