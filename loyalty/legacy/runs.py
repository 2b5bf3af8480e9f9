"""Staff uploads of legacy member files: store the file, map its columns, check it, import it. The
check and the import run as Celery tasks (loyalty.tasks) that record their progress on the
LegacyImport row, so the page can show a progress bar and, at the end, the error report."""

import io

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from loyalty.legacy import ColumnMapping, legacy_import
from loyalty.legacy.reading import LegacyFile
from loyalty.models import LegacyImport, Program

MAX_UPLOAD_BYTES = 1024 * 1024 * 1024  # a million members with history is well under 1 GB


def _mapping(item: LegacyImport) -> ColumnMapping:
    return ColumnMapping.from_json({**item.mapping, "date_format": item.date_format})


def legacy_import_upload(*, program: Program, upload, created_by) -> LegacyImport:
    """Keep the file; find its encoding, delimiter and headers; start from the program's last mapping."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise ApplicationError(_("The file is larger than 1 GB: split it in parts."), code="file_too_large")
    legacy = LegacyFile(upload.file)
    headers, _sample = legacy.preview(0)
    if not any(headers):
        raise ApplicationError(_("The file has no header row."), code="empty_file")
    previous = program.legacy_imports.exclude(mapping={}).first()
    saved = _mapping(previous) if previous else ColumnMapping()
    columns = saved.columns_of(headers)
    item = LegacyImport(
        program=program,
        original_name=upload.name[:200],
        size=upload.size,
        encoding=legacy.format.encoding,
        delimiter=legacy.format.delimiter,
        headers=headers,
        mapping={header: column for header, column in zip(headers, columns, strict=True) if column},
        date_format=saved.date_format,
        created_by=created_by,
    )
    upload.file.seek(0)
    item.file.save(upload.name, upload, save=False)
    item.save()
    return item


def legacy_import_preview(*, item: LegacyImport, rows: int = 5) -> tuple[list[str], list[list[str]]]:
    with item.file.open("rb") as stream:
        return LegacyFile(stream, encoding=item.encoding, delimiter=item.delimiter).preview(rows)


def legacy_import_map(*, item: LegacyImport, mapping: dict[str, str], date_format: str = "") -> LegacyImport:
    """A new mapping (checked against the file's headers) makes the file need a new check."""
    if item.running:
        raise ApplicationError(_("Wait until the current run ends."), code="import_running")
    if item.status == LegacyImport.Status.IMPORTED:
        raise ApplicationError(_("This file was imported already."), code="import_done")
    column_mapping = ColumnMapping.from_json({**{h: c for h, c in mapping.items() if c}, "date_format": date_format})
    column_mapping.resolve(item.headers)
    item.mapping, item.date_format = column_mapping.columns, column_mapping.date_format
    item.status = LegacyImport.Status.UPLOADED
    item.save(update_fields=["mapping", "date_format", "status"])
    return item


@transaction.atomic
def legacy_import_start(*, item: LegacyImport, dry_run: bool) -> LegacyImport:
    """Queue the check (dry run) or, once a check found no error, the import."""
    from loyalty.tasks import run_legacy_import

    item = LegacyImport.objects.select_for_update().get(pk=item.pk)
    if item.running:
        raise ApplicationError(_("This file is being processed already."), code="import_running")
    if not dry_run and item.status != LegacyImport.Status.CHECKED:
        raise ApplicationError(_("Check the file first: it is imported only after a check without errors."))
    item.status = LegacyImport.Status.CHECKING if dry_run else LegacyImport.Status.IMPORTING
    item.phase, item.bytes_done, item.failure = "", 0, ""
    item.started_at, item.finished_at = timezone.now(), None
    item.save()
    run_legacy_import.delay_on_commit(item.pk)
    return item


def legacy_import_run(*, import_id: int) -> LegacyImport:
    """The task's body: check or import the file, recording progress, counts and the error report."""
    item = LegacyImport.objects.select_related("program", "created_by").get(pk=import_id)
    if not item.running:
        return item  # a duplicate delivery of a task already done
    dry_run = item.status == LegacyImport.Status.CHECKING

    def progress(phase: str, done: int, total: int) -> None:
        LegacyImport.objects.filter(pk=item.pk).update(phase=phase, bytes_done=done)

    report_file = io.StringIO()
    try:
        with item.file.open("rb") as stream:
            report = legacy_import(
                program=item.program,
                stream=stream,
                mapping=_mapping(item),
                dry_run=dry_run,
                created_by=item.created_by,
                errors_to=report_file,
                progress=progress,
            )
    except Exception as error:
        item.status, item.finished_at = LegacyImport.Status.FAILED, timezone.now()
        item.failure = error.message if isinstance(error, ApplicationError) else f"{type(error).__name__}: {error}"
        item.save()
        if isinstance(error, ApplicationError):
            return item  # the file's own fault, told on the page
        raise
    for name in ("rows", "members_created", "members_updated", "accounts_opened", "tiers_raised"):
        setattr(item, name, getattr(report, name))
    item.balances_posted, item.points_posted = report.balances_posted, report.points_posted
    item.errors = report.errors
    item.first_errors = [[e.row, e.column, e.value, e.message] for e in report.first_errors]
    if report.errors:
        item.status = LegacyImport.Status.INVALID
        item.error_report.save("errors.csv", ContentFile(report_file.getvalue().encode("utf-8")), save=False)
    else:
        item.status = LegacyImport.Status.CHECKED if dry_run else LegacyImport.Status.IMPORTED
    item.phase, item.bytes_done, item.finished_at = "done", item.size, timezone.now()
    item.save()
    return item
