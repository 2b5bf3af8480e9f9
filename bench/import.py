"""Legacy member import on PostgreSQL: the fast path against a plain django-import-export resource.

    uv run python bench/import.py                          # 1,000,000 rows; plain path on 20,000
    uv run python bench/import.py --rows 100000 --plain-rows 5000   # a quicker look

1. A fresh database (`--name`, default loyalty_bench_import), migrated, with one live program (four
   tiers, 24-month expiry), 200 stores and two member types.
2. A legacy export as an old system writes it: UTF-8 with a BOM, semicolon-separated, French headers
   (so a mapping is needed), dd/mm/yyyy dates, balances with a decimal comma, 70% with a phone.
3. The fast path: `manage.py import_members FILE --program bench --mapping MAP.json` in its own
   process, timed from outside; its peak memory is the child's maximum resident set size. Then
   check_ledger's invariants on the result.
4. The plain path most Django projects use: a `resources.ModelResource` for Member with default
   settings (import_id_fields = member_no), `import_data` on a slice of the same kind of rows with
   new numbers, emails and phones (rows it accepts: the rate of a clean import), also in its own
   process. It writes members only: no accounts, balances or tiers.

5. With `--floor`: the least PostgreSQL itself needs to write what the fast path wrote. The same rows
   are copied by `INSERT … SELECT` into empty copies of the five tables, with every index and CHECK
   constraint (`LIKE … INCLUDING ALL`) but no foreign keys, no checks, no Python and no file, in one
   transaction, timed in the same run, then dropped. It is the bound for one connection writing these
   rows with these indexes on this machine and server.

Figures go to stdout (rows/s, ratio, peak memory); bench/RESULTS.md records them with this command.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine import admin_sql, database_url  # noqa: E402

HEADERS = [
    "N° carte", "Prénom", "Nom", "Société", "E-mail", "Téléphone", "Rue", "Code postal", "Ville", "Région",
    "Langue", "Type", "Magasin", "Inscrit le", "Solde", "Niveau", "Niveau depuis", "Consentement",
]  # fmt: skip
MAPPING = dict(
    zip(
        HEADERS,
        ["member_no", "first_name", "last_name", "company", "email", "phone", "street", "postal_code", "city",
         "region", "language", "member_type", "store", "enrolled_on", "balance", "tier", "tier_since",
         "marketing_consent"],
        strict=True,
    )
)  # fmt: skip
FIRST = ["Anna", "Bram", "Chloé", "Dirk", "Emma", "François", "Greet", "Hélène", "Ilse", "Jan", "Koen", "Léa"]
LAST = ["Peeters", "Janssens", "Maes", "Dubois", "Lambert", "Willems", "Mertens", "Dupont", "Claes", "Goossens"]
CITIES = [("1000", "Bruxelles", "Brussels"), ("9000", "Gent", "Flanders"), ("4000", "Liège", "Wallonia")]
TIERS = ["Bronze"] * 70 + ["Silver"] * 20 + ["Gold"] * 8 + ["Platinum"] * 2
PLAIN_SCRIPT = """
import resource, sys, time, tablib
from import_export import resources
from members.models import Member

class PlainMemberResource(resources.ModelResource):
    class Meta:
        model = Member
        import_id_fields = ["member_no"]

with open(sys.argv[-1], encoding="utf-8") as f:
    dataset = tablib.Dataset().load(f.read(), format="csv")
started = time.perf_counter()
result = PlainMemberResource().import_data(dataset, dry_run=False)
seconds = time.perf_counter() - started
print("PLAIN", len(dataset), seconds, result.has_errors(), result.has_validation_errors(),
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def write_legacy_file(path: Path, rows: int, first_number: int, seed: int) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8-sig", newline="") as out:
        out.write(";".join(HEADERS) + "\r\n")
        for n in range(first_number, first_number + rows):
            postal, city, region = CITIES[n % 3]
            year = 2010 + n % 14
            tier = TIERS[n % 100]
            phone = f"+32 47{n % 10} {n // 10 % 100:02d} {n // 1000 % 100:02d} {n // 100000 % 100:02d}"
            out.write(
                ";".join(
                    [
                        f"LEG{n:08d}",
                        FIRST[n % len(FIRST)],
                        LAST[n // 7 % len(LAST)],
                        "Dakwerken BV" if n % 25 == 0 else "",
                        f"member{n}@legacy.example.com" if n % 10 else "",
                        phone if n % 10 < 7 else "",
                        f"Rue du Marché {n % 300}",
                        postal,
                        city,
                        region,
                        ("fr", "nl", "en")[n % 3],
                        "contractor" if n % 25 == 0 else "consumer",
                        f"st-{n % 200:03d}",
                        f"{1 + n % 28:02d}/{1 + n % 12:02d}/{year}",
                        f"{rng.randrange(0, 5000)},00",
                        tier,
                        f"{1 + n % 28:02d}/{1 + (n + 5) % 12:02d}/{min(year + 1, 2025)}" if tier != "Bronze" else "",
                        "oui" if n % 3 else "non",
                    ]
                )
                + "\r\n"
            )


def write_plain_file(path: Path, rows: int, first_number: int) -> None:
    """The same kind of members in the model's own column names, as a ModelResource expects them, and rows it
    accepts: phones (+32 49x) that none of the legacy file's members (+32 47x) has, so no row is refused."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["member_no", "first_name", "last_name", "company", "email", "phone", "street",
                         "postal_code", "city", "region", "language", "member_type", "marketing_consent"])  # fmt: skip
        for n in range(first_number, first_number + rows):
            postal, city, region = CITIES[n % 3]
            writer.writerow([
                f"LEG{n:08d}", FIRST[n % len(FIRST)], LAST[n // 7 % len(LAST)], "", f"member{n}@legacy.example.com",
                f"+3249{n % 10}{n // 10 % 1000000:06d}" if n % 10 < 7 else "", f"Rue du Marché {n % 300}", postal,
                city, region, ("fr", "nl", "en")[n % 3], "consumer", "1" if n % 3 else "0",
            ])  # fmt: skip


def prepare_database(name: str) -> dict:
    admin_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin_sql(f'CREATE DATABASE "{name}"')
    env = {**os.environ, "DATABASE_URL": database_url(name), "DEBUG": "False", "REDIS_URL": ""}
    env.setdefault("DJANGO_SETTINGS_MODULE", "loyalty.settings.local")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env, cwd=ROOT)
    setup = """
from decimal import Decimal
from loyalty.models import Program, Tier
from members.models import MemberType, Store
program = Program.objects.create(name="Bench", slug="bench", status="live", expiry_policy="months_after_earn",
                                 expiry_months=24)
for rank, tier, threshold in ((1, "Bronze", 0), (2, "Silver", 1000), (3, "Gold", 5000), (4, "Platinum", 15000)):
    Tier.objects.create(program=program, rank=rank, name=tier, threshold=threshold)
Store.objects.bulk_create([Store(code=f"st-{n:03d}", name=f"Store {n}", region="Brussels") for n in range(200)])
MemberType.objects.get_or_create(code="contractor", defaults={"name": "Contractor"})
"""
    subprocess.run([sys.executable, "manage.py", "shell", "-c", setup], check=True, env=env, cwd=ROOT)
    return env


def run_child(args: list[str], env: dict) -> tuple[subprocess.CompletedProcess, float, float]:
    """(process, seconds, peak resident MB of that child alone: os.wait4 gives its own rusage)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(args, env=env, cwd=ROOT, stdout=out, stderr=err, text=True)
        _pid, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        done = subprocess.CompletedProcess(args, child.returncode, out.read(), err.read())
    return done, seconds, usage.ru_maxrss / 1024


FLOOR_TABLES = (
    "members_member",
    "members_consentrecord",
    "loyalty_account",
    "loyalty_tierchange",
    "loyalty_ledgerentry",
)


def write_floor(name: str) -> dict[str, float]:
    """Seconds to INSERT … SELECT each table's rows (all the import's, on the fresh database) into an empty
    copy with the same indexes and CHECK constraints, committed, then dropped."""
    import psycopg

    seconds = {}
    with psycopg.connect(database_url(name), autocommit=True) as conn:
        # From a clean start, as the import had on its fresh database: the sources read once and vacuumed (no
        # first-read hint-bit writes in the timed part), and not amid the checkpoint the import's writes caused.
        for table in FLOOR_TABLES:
            conn.execute(f"VACUUM ANALYZE {table}")
            # A table like the portal's (logged, in shared buffers), not a temporary one, which writes no WAL.
            conn.execute(f"CREATE TABLE floor_{table} (LIKE {table} INCLUDING ALL)")
        conn.execute("CHECKPOINT")
        try:
            with conn.transaction():
                conn.execute("SET LOCAL work_mem = '128MB'")
                for table in FLOOR_TABLES:
                    started = time.perf_counter()
                    conn.execute(f"INSERT INTO floor_{table} SELECT * FROM {table}")
                    seconds[table] = time.perf_counter() - started
                started = time.perf_counter()
            seconds["commit"] = time.perf_counter() - started
        finally:
            for table in FLOOR_TABLES:
                conn.execute(f"DROP TABLE IF EXISTS floor_{table}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--plain-rows", type=int, default=20_000)
    parser.add_argument("--name", default="loyalty_bench_import")
    parser.add_argument("--dir", default="/tmp", help="Where the generated files go.")
    parser.add_argument("--floor", action="store_true", help="Also time PostgreSQL writing the same rows alone.")
    options = parser.parse_args()
    folder = Path(options.dir)
    legacy, mapping, plain = folder / "legacy-members.csv", folder / "legacy-map.json", folder / "plain-members.csv"

    started = time.perf_counter()
    write_legacy_file(legacy, options.rows, first_number=1, seed=7)
    mapping.write_text(json.dumps({**MAPPING, "date_format": "%d/%m/%Y"}, ensure_ascii=False), encoding="utf-8")
    write_plain_file(plain, options.plain_rows, first_number=options.rows + 1)
    size = legacy.stat().st_size / 1e6
    print(f"generated {options.rows:,} legacy rows ({size:.0f} MB) in {time.perf_counter() - started:.1f} s")

    env = prepare_database(options.name)
    command = ["manage.py", "import_members", str(legacy), "--program", "bench", "--mapping", str(mapping), "-v", "2"]
    done, seconds, peak = run_child([sys.executable, *command], env)
    print(done.stdout.strip(), done.stderr.strip(), sep="\n")
    if done.returncode:
        sys.exit(f"the fast path failed (exit {done.returncode})")
    fast_rate = options.rows / seconds
    print(f"fast path:  {options.rows:,} rows in {seconds:.1f} s = {fast_rate:,.0f} rows/s, peak memory {peak:.0f} MB")
    checked = subprocess.run(
        [sys.executable, "manage.py", "check_ledger"], env=env, cwd=ROOT, capture_output=True, text=True
    )
    print("check_ledger:", (checked.stdout or checked.stderr).strip().splitlines()[-1])
    if options.floor:
        floor = write_floor(options.name)
        for table, table_seconds in floor.items():
            print(f"    {table_seconds:6.2f} s  floor: {table}")  # and its commit
        total = sum(floor.values())
        print(
            f"floor:      the same rows written by PostgreSQL alone in {total:.1f} s; fast path / floor: {seconds / total:.2f}"
        )

    done = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", PLAIN_SCRIPT.replace("sys.argv[-1]", repr(str(plain)))],
        env=env, cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    line = next((line for line in done.stdout.splitlines() if line.startswith("PLAIN ")), None)
    if line is None:
        sys.exit(f"the plain path failed:\n{done.stderr[-3000:]}")
    _label, count, plain_seconds, errors, validation_errors, plain_peak = line.split()
    if errors != "False" or validation_errors != "False":
        print("the plain path refused rows: its rate is not the rate of a clean import")
    plain_rate = int(count) / float(plain_seconds)
    print(
        f"plain path: {int(count):,} rows in {float(plain_seconds):.1f} s = {plain_rate:,.0f} rows/s, "
        f"peak memory {int(plain_peak) / 1024:.0f} MB (errors: {errors}, validation errors: {validation_errors})"
    )
    print(f"ratio: the fast path imports {fast_rate / plain_rate:.0f}x the plain path's rows per second")


if __name__ == "__main__":
    main()
