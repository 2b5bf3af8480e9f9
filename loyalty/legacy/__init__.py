"""Legacy member files: members, their accounts, opening balances and tiers, imported all or nothing.

`legacy_import` is the one way in, used by `manage.py import_members` and by the staff upload (as a
Celery task). It streams the file once, checking every cell in Python (loyalty.legacy.rows) and
landing good rows in a staging table; checks that need the whole file or the database, and every
write, are set-based SQL (loyalty.legacy.loading). A file with any error writes nothing.
"""

import csv
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from django.conf import settings
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from loyalty import engine
from loyalty.core.exceptions import ApplicationError
from loyalty.core.spreadsheets import spreadsheet_safe
from loyalty.legacy.loading import Stage
from loyalty.legacy.reading import FileFormat, LegacyFile
from loyalty.legacy.rows import CANONICAL_COLUMNS, ColumnMapping, RowError, RowParser
from loyalty.models import Program
from loyalty.services import program_entry_tier
from members import numbers
from members.models import Member

__all__ = ["CANONICAL_COLUMNS", "ColumnMapping", "ImportReport", "RowError", "legacy_import"]

PROGRESS_EVERY_ROWS = 20_000
ERRORS_SHOWN = 200
ERROR_HEADER = ("row", "column", "value", "message")

Progress = Callable[[str, int, int], None]  # (phase, done, total)


@dataclass
class ImportReport:
    format: FileFormat
    columns: dict[str, str]  # canonical column -> the file's header
    ignored_headers: list[str]
    dry_run: bool
    rows: int = 0
    errors: int = 0
    first_errors: list[RowError] = field(default_factory=list)
    members_created: int = 0
    members_updated: int = 0
    accounts_opened: int = 0
    tiers_raised: int = 0
    balances_posted: int = 0
    points_posted: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # phase -> seconds (manage.py import_members -v 2)

    @property
    def ok(self) -> bool:
        return self.errors == 0

    @property
    def members_unchanged(self) -> int:
        return max(self.rows - self.members_created - self.members_updated, 0) if self.ok else 0


class _ErrorLog:
    """Every error, in a spooled file (a million errors must not fill the memory), the first ones kept
    for the page."""

    def __init__(self):
        self.file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 - closed by close(), after the report is written
            max_size=8 * 1024 * 1024, mode="w+t", newline="", encoding="utf-8"
        )
        self.writer = csv.writer(self.file)
        self.count = 0
        self.first: list[RowError] = []

    def add(self, error: RowError) -> None:
        self.count += 1
        if len(self.first) < ERRORS_SHOWN:
            self.first.append(error)
        self.writer.writerow((error.row, error.column, error.value, error.message))

    def write_csv(self, out) -> None:
        """The report: row, column, value, message; cells a spreadsheet would run as formulas are made text."""
        writer = csv.writer(out)
        writer.writerow(ERROR_HEADER)
        self.file.seek(0)
        for row in csv.reader(self.file):
            writer.writerow([spreadsheet_safe(cell) for cell in row])

    def close(self) -> None:
        self.file.close()


def _issue_numbers(stage: Stage) -> None:
    """Portal numbers (with their check digit) for new members the file gives no number."""
    rows = stage.rows_needing_numbers()
    issued: set[str] = set()
    while rows:
        numbers_by_row = {}
        for row in rows:
            number = numbers.generate()
            while number in issued:
                number = numbers.generate()
            issued.add(number)
            numbers_by_row[row] = number
        rows = stage.give_numbers(numbers_by_row)  # those an existing member already holds, to draw again


def _sql_errors(stage: Stage, columns: dict[str, str], program: Program, log: _ErrorLog, *, draw_ids: bool) -> None:
    """The checks that need the whole file or the database, each one query."""

    def header(column: str) -> str:
        return columns.get(column, column)

    with stage.timed("checks: duplicates in the file"):
        for column, message in (
            ("member_no", _("Row %(row)s has the same member number: a member appears once in a file.")),
            ("email", _("Row %(row)s has the same email: a member appears once in a file.")),
            ("phone", _("Row %(row)s has the same phone: a member appears once in a file.")),
        ):
            if column in columns:
                for row, value, first_row in stage.duplicates_in_file(column):
                    log.add(RowError(row, header(column), value, message % {"row": first_row}))
    stage.match_by_email()
    stage.make_plan(program_id=program.pk, default_language=settings.LANGUAGE_CODE, draw_ids=draw_ids)
    with stage.timed("checks: against the portal"):
        statuses = dict(Member.Status.choices)
        for row, member_no, status in stage.inactive_members():
            log.add(
                RowError(
                    row,
                    header("member_no"),
                    member_no,
                    _("Member %(member_no)s is %(status)s in the portal: reopen them first, or leave them out.")
                    % {"member_no": member_no, "status": str(statuses.get(status, status)).lower()},
                )
            )
        for column, message in (
            ("email", _("Member %(member_no)s already uses this email.")),
            ("phone", _("Member %(member_no)s already uses this phone.")),
        ):
            if column in columns:
                for row, value, member_no in stage.taken_by_others(column):
                    log.add(RowError(row, header(column), value, message % {"member_no": member_no}))
        name_column = next((c for c in ("last_name", "first_name", "company") if c in columns), "last_name")
        for row, value in stage.nameless_new_members():
            log.add(RowError(row, header(name_column), value, _("Give the member's name or their company's name.")))
        for row, balance, prior in stage.opening_balance_conflicts():
            log.add(
                RowError(
                    row,
                    header("balance"),
                    str(balance),
                    _(
                        "An opening balance of %(points)s points was imported for this member before; an import "
                        "never posts it twice. Correct the balance with an adjustment on the member's page."
                    )
                    % {"points": prior},
                )
            )


def _stream_rows(
    legacy: LegacyFile, rows: Iterator, parser: RowParser, stage: Stage, log: _ErrorLog, progress: Progress | None
) -> int:
    count = 0
    with stage.timed("reading, checking cells, COPY to the stage"), stage.writer() as write:
        for row_no, cells in rows:
            count += 1
            staged, errors = parser.parse(row_no, cells)
            if errors:
                for error in errors:
                    log.add(error)
            else:
                write(staged)
            if progress and count % PROGRESS_EVERY_ROWS == 0:
                progress("reading", legacy.position(), legacy.size)
    return count


def legacy_import(
    *,
    program: Program,
    stream,
    mapping: ColumnMapping | None = None,
    dry_run: bool = False,
    created_by=None,
    errors_to=None,
    progress: Progress | None = None,
) -> ImportReport:
    """Import a legacy member file (a binary file object) into `program`. With `dry_run`, or when any
    row has an error, nothing is written; the report says what would happen or what to fix.
    `errors_to` (a text file) receives every error as CSV: row, column, value, message."""
    mapping = mapping or ColumnMapping()
    if program.status == Program.Status.CLOSED:
        raise ApplicationError(
            _("The program “%(program)s” is closed: members cannot be imported into it.") % {"program": program},
            code="program_closed",
        )
    entry_tier_id = program_entry_tier(program).pk
    legacy = LegacyFile(stream)
    headers, rows = legacy.records()
    found = mapping.resolve(headers)
    columns = {column: headers[index] for column, index in found.items()}
    used = set(found.values())
    report = ImportReport(
        format=legacy.format,
        columns=columns,
        ignored_headers=[header for index, header in enumerate(headers) if index not in used and header],
        dry_run=dry_run,
    )
    parser = RowParser(program=program, headers=headers, columns=found, date_format=mapping.date_format)
    log = _ErrorLog()
    stage = Stage()
    try:
        stage.create()
        report.rows = _stream_rows(legacy, rows, parser, stage, log, progress)
        if progress:
            progress("checking", legacy.size, legacy.size)
        stage.prepare()
        with transaction.atomic():
            stage.tune()
            # One import per program at a time; enrolments elsewhere go on (a clash is a unique-key error).
            program = Program.objects.select_for_update().get(pk=program.pk)
            _sql_errors(stage, columns, program, log, draw_ids=not dry_run and log.count == 0)
            if log.count == 0:
                if progress:
                    progress("writing", legacy.size, legacy.size)
                if not dry_run:
                    _write(stage, program=program, entry_tier_id=entry_tier_id, created_by=created_by)
                with stage.timed("counts"):
                    for name, value in stage.counts().items():
                        setattr(report, name, value)
            if log.count or dry_run:
                transaction.set_rollback(True)
            commit_started = time.perf_counter()
        if log.count == 0 and not dry_run:
            stage.timings["commit (deferred foreign-key checks)"] = time.perf_counter() - commit_started
        report.errors = log.count
        report.first_errors = log.first
        if errors_to is not None:
            log.write_csv(errors_to)
    finally:
        stage.drop()
        log.close()
    report.timings = stage.timings
    if progress:
        progress("done", legacy.size, legacy.size)
    return report


def _write(stage: Stage, *, program: Program, entry_tier_id: int, created_by) -> None:
    now = timezone.now()
    user_id = created_by.pk if created_by else None
    window_start, review_at = engine.tier_review_window(program, now)  # imported tiers are kept a full window
    with stage.timed("writes: portal numbers"):
        _issue_numbers(stage)
    references_as_a_set = stage.skip_row_triggers()
    if references_as_a_set:
        marks = stage.id_marks()
        stage.lock_referenced(program_id=program.pk, user_id=user_id)
    stage.insert_members(now=now, user_id=user_id)
    stage.update_members(now=now, user_id=user_id)
    stage.insert_accounts(
        program_id=program.pk,
        entry_tier_id=entry_tier_id,
        now=now,
        window_start=window_start,
        review_at=review_at,
        user_id=user_id,
    )
    stage.raise_tiers(entry_tier_id=entry_tier_id, now=now, window_start=window_start, review_at=review_at)
    reasons = {}
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            reasons[code] = _("Opening balance brought over from the previous program")
    stage.post_opening_balances(
        program_id=program.pk,
        now=now,
        policy_expiry=engine.lot_expiry(program, now),
        reasons=reasons,
        user_id=user_id,
    )
    if references_as_a_set:
        stage.check_references(marks)
        stage.restore_row_triggers()
