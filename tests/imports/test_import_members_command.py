"""`manage.py import_members FILE --program SLUG [--dry-run] [--mapping MAP.json] [--errors OUT.csv]`
(DESIGN.md): exit 0 only if every row was valid and imported; otherwise nothing is written, the
errors file lists row, column, value and message, and the exit code is 1."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from members.models import Member
from tests.imports.conftest import csv_text

ROOT = Path(__file__).resolve().parents[2]


def test_a_valid_file_imports_and_reports_what_it_did(program, tmp_path, capsys):
    path = tmp_path / "members.csv"
    path.write_text(csv_text("M-1,Ann,A,,,,,,,,,,,,40,,,,", "M-2,Bob,B,,,,,,,,,,,,,,,,"), encoding="utf-8")

    call_command("import_members", str(path), program="blue")

    out = capsys.readouterr().out
    assert "2 members were created" in out and "1 opening balances were posted (40 points)" in out
    assert Member.objects.filter(member_no__in=["M-1", "M-2"]).count() == 2


def test_errors_exit_1_write_nothing_and_list_every_error_with_formulas_made_text(program, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(csv_text("M-1,Ann,A,,,,,,,,,,,,40,,,,", "M-2,Bob,B,,=HYPERLINK(1),,,,,,,,,,,,,,"), encoding="utf-8")
    errors = tmp_path / "errors.csv"

    with pytest.raises(CommandError, match="1 error") as raised:
        call_command("import_members", str(path), program="blue", errors=str(errors))

    assert raised.value.returncode == 1
    assert not Member.objects.filter(member_no="M-1").exists()
    with errors.open(encoding="utf-8", newline="") as report:
        rows = list(csv.reader(report))
    assert rows[0] == ["row", "column", "value", "message"]
    assert rows[1][:3] == ["3", "email", "'=HYPERLINK(1)"]


def test_dry_run_and_mapping_options(program, tmp_path, capsys):
    path = tmp_path / "legacy.csv"
    path.write_text("Kaart;Naam;Punten;Sinds\nK-1;Jansen;90;12/31/2020\n", encoding="utf-8")
    mapping = tmp_path / "map.json"
    mapping.write_text(
        json.dumps(
            {
                "Kaart": "member_no",
                "Naam": "last_name",
                "Punten": "balance",
                "Sinds": "enrolled_on",
                "date_format": "%m/%d/%Y",
            }
        ),
        encoding="utf-8",
    )

    call_command("import_members", str(path), program="blue", dry_run=True, mapping=str(mapping))
    assert "Dry run: 1 members would be created" in capsys.readouterr().out
    assert not Member.objects.filter(member_no="K-1").exists()

    call_command("import_members", str(path), program="blue", mapping=str(mapping))
    assert Member.objects.get(member_no="K-1").accounts.get().balance == 90


def test_unknown_program_and_unreadable_mapping_are_clear_errors(program, tmp_path):
    path = tmp_path / "members.csv"
    path.write_text(csv_text("M-1,Ann,A,,,,,,,,,,,,,,,,"), encoding="utf-8")
    with pytest.raises(CommandError, match=r"No program with slug 'gold'\. Programs: blue"):
        call_command("import_members", str(path), program="gold")
    bad = tmp_path / "map.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CommandError, match="Cannot read the mapping"):
        call_command("import_members", str(path), program="blue", mapping=str(bad))


SQLITE_SCRIPT = """
import json, sys
from loyalty.legacy import legacy_import
from loyalty.models import Account, LedgerEntry, Program, Tier, TierChange
from members.models import Member
program = Program.objects.create(name="Blue", slug="blue", status="live")
for rank, name, threshold in ((1, "Bronze", 0), (2, "Silver", 1000), (3, "Gold", 5000)):
    Tier.objects.create(program=program, rank=rank, name=name, threshold=threshold)
for path in sys.argv[1:]:
    with open(path, "rb") as stream:
        report = legacy_import(program=program, stream=stream)
    print("REPORT", report.ok, report.members_created, report.members_updated, report.balances_posted)
"""


def _books():
    """What an import leaves, without ids or times that differ between two databases."""
    from loyalty.models import Account, LedgerEntry, TierChange

    members = sorted(
        Member.objects.values_list(
            "member_no",
            "first_name",
            "last_name",
            "email",
            "phone",
            "city",
            "language",
            "marketing_consent",
            "enrolment_channel",
        )
    )
    accounts = sorted(
        (a.member.member_no, a.balance, a.tier.name, a.tier_since.date().isoformat(), a.lifetime_earned)
        for a in Account.objects.select_related("member", "tier")
    )
    entries = sorted(
        LedgerEntry.objects.values_list("account__member__member_no", "kind", "points", "remaining", "idempotency_key")
    )
    changes = sorted(TierChange.objects.values_list("account__member__member_no", "to_tier__name", "reason"))
    return {"members": members, "accounts": accounts, "entries": entries, "tier_changes": changes}


def test_the_sqlite_fallback_gives_the_same_result_as_postgresql(db, tmp_path):
    first = tmp_path / "first.csv"
    first.write_text(
        csv_text(
            "S-1,Ann,Äbel,,ann@example.com,0470 12 34 56,,,Liège,,fr,,,2019-03-04,1200,Gold,2023-05-06,,yes",
            "S-2,Bob,B,,,,,,,,nl,,,04/03/2020,0,,,,no",
            'S-3,Cy,"C, Jr.",,cy@example.com,,,,,,,,,,75,Silver,,,',
        ),
        encoding="utf-8",
    )
    second = tmp_path / "second.csv"
    second.write_text("member_no,city,balance\nS-2,Ghent,\nS-1,Namur,1200\n", encoding="utf-8")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "loyalty.settings.local",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'import.sqlite3'}",
        "REDIS_URL": "",
        "CACHE_URL": "",
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True, timeout=300)
    dump = "import json; from tests.imports.test_import_members_command import _books; print('BOOKS', json.dumps(_books(), default=str))"
    ran = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-c",
            SQLITE_SCRIPT.replace("sys.argv[1:]", repr([str(first), str(second)])) + "\n" + dump,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    reports = [line.split()[1:] for line in ran.stdout.splitlines() if line.startswith("REPORT")]
    sqlite_books = json.loads(next(line for line in ran.stdout.splitlines() if line.startswith("BOOKS "))[6:])

    from loyalty.legacy import legacy_import
    from loyalty.models import Program, Tier

    program = Program.objects.create(name="Blue", slug="blue", status="live")
    for rank, name, threshold in ((1, "Bronze", 0), (2, "Silver", 1000), (3, "Gold", 5000)):
        Tier.objects.create(program=program, rank=rank, name=name, threshold=threshold)
    pg_reports = []
    for path in (first, second):
        with path.open("rb") as stream:
            report = legacy_import(program=program, stream=stream)
        pg_reports.append(
            [str(report.ok), str(report.members_created), str(report.members_updated), str(report.balances_posted)]
        )

    assert reports == pg_reports == [["True", "3", "0", "2"], ["True", "0", "2", "0"]]
    assert json.loads(json.dumps(_books(), default=str)) == sqlite_books
