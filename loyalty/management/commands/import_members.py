import json
import time
from contextlib import ExitStack
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from loyalty.core.exceptions import ApplicationError
from loyalty.legacy import ColumnMapping, legacy_import
from loyalty.models import Program

ERRORS_PRINTED = 20


class Command(BaseCommand):
    help = (
        "Import legacy members (with balances and tiers) from a CSV file into a program, all or nothing. "
        "Exit 0 only if every row was valid and imported; otherwise nothing is written and the exit code is 1."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="The CSV file (UTF-8, UTF-16 or Windows-1252; comma, semicolon or tab).")
        parser.add_argument("--program", required=True, help="The program's slug.")
        parser.add_argument("--dry-run", action="store_true", help="Check the file and report; write nothing.")
        parser.add_argument(
            "--mapping",
            help='A JSON file: {"legacy header": "column", ..., "date_format": "%%d/%%m/%%Y"} (optional).',
        )
        parser.add_argument("--errors", help="Write every error (row, column, value, message) to this CSV file.")

    def handle(self, *args, file: str, program: str, dry_run: bool, mapping: str | None, errors: str | None, **opts):
        found = Program.objects.filter(slug=program).first()
        if found is None:
            slugs = ", ".join(Program.objects.values_list("slug", flat=True)) or "none yet"
            raise CommandError(f"No program with slug {program!r}. Programs: {slugs}.")
        try:
            column_mapping = ColumnMapping.from_json(json.loads(Path(mapping).read_text("utf-8"))) if mapping else None
        except (OSError, ValueError) as error:
            raise CommandError(f"Cannot read the mapping {mapping}: {error}") from None
        except ApplicationError as error:
            raise CommandError(error.message) from None
        started = time.perf_counter()
        try:
            with ExitStack() as files:
                stream = files.enter_context(open(file, "rb"))
                errors_out = files.enter_context(open(errors, "w", encoding="utf-8", newline="")) if errors else None
                report = legacy_import(
                    program=found, stream=stream, mapping=column_mapping, dry_run=dry_run, errors_to=errors_out
                )
        except OSError as error:
            raise CommandError(f"Cannot read {file}: {error.strerror}.") from None
        except ApplicationError as error:
            raise CommandError(error.message) from None
        seconds = time.perf_counter() - started
        self.stderr.write(
            f"{file}: {report.format.encoding}, {report.format.delimiter_name}-separated, {report.rows} rows "
            f"in {seconds:.1f} s. Columns: "
            + ", ".join(f"{header} -> {column}" for column, header in report.columns.items())
        )
        if report.ignored_headers:
            self.stderr.write("Ignored columns: " + ", ".join(report.ignored_headers))
        if opts["verbosity"] >= 2:
            for phase, phase_seconds in report.timings.items():
                self.stderr.write(f"  {phase_seconds:7.2f} s  {phase}")
        if not report.ok:
            for error in report.first_errors[:ERRORS_PRINTED]:
                self.stderr.write(f"row {error.row}, {error.column} = {error.value!r}: {error.message}")
            more = report.errors - min(len(report.first_errors), ERRORS_PRINTED)
            if more > 0:
                self.stderr.write(f"... and {more} more" + (f" (all in {errors})." if errors else "; use --errors."))
            raise CommandError(f"{report.errors} error(s): nothing was imported.", returncode=1)
        verb = "would be" if dry_run else "were"
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Dry run: ' if dry_run else ''}{report.members_created} members {verb} created, "
                f"{report.members_updated} updated, {report.members_unchanged} unchanged; "
                f"{report.accounts_opened} accounts {verb} opened, {report.tiers_raised} tiers raised; "
                f"{report.balances_posted} opening balances {verb} posted ({report.points_posted} points)."
            )
        )
