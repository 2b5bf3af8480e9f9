"""The base of the admin's import/export resources (django-import-export).

A file is imported all or nothing: every row goes through the app's own services (so a row is checked
exactly as a form or the API would check it), each refusal is attached to the row and to the file's
column at fault, and one refused row rolls the whole file back, in the preview and on confirm alike.
Exported cells that a spreadsheet would run as a formula are escaped (loyalty.core.spreadsheets).
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import models
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from import_export import resources, widgets
from import_export.results import Result, RowResult

from loyalty.core.exceptions import ApplicationError
from loyalty.core.spreadsheets import spreadsheet_safe, spreadsheet_text

# --- cells: each widget reads one kind of cell and says what to write instead when it cannot ----------


class YesNoWidget(widgets.BooleanWidget):
    """yes/no, true/false or 1/0 in any case; anything else is refused (the library's own widget would
    quietly read it as "no")."""

    YES = frozenset({"1", "yes", "y", "true"})
    NO = frozenset({"0", "no", "n", "false"})

    def clean(self, value, row=None, **kwargs):
        if value is None or isinstance(value, bool):
            return value
        answer = str(value).strip().casefold()
        if not answer:
            return None
        if answer in self.YES:
            return True
        if answer in self.NO:
            return False
        raise ValueError(_("Write yes or no (or 1 or 0)."))


_SPACES = re.compile(r"[\s\u00a0\u202f']")
_GROUPED = re.compile(r"-?\d{1,3}([.,])\d{3}(\1\d{3})*")


class WholeNumberWidget(widgets.IntegerWidget):
    """1200, 1 200, 1,200 or 1.200 whatever the page's language; a fraction is refused rather than cut off.
    Written without grouping, so any spreadsheet reads it back."""

    def clean(self, value, row=None, **kwargs):
        if self.is_empty(value):
            return None
        text = _SPACES.sub("", str(value))
        if _GROUPED.fullmatch(text):
            text = text.replace(",", "").replace(".", "")
        if not re.fullmatch(r"-?\d{1,18}", text):
            raise ValueError(_("“%(value)s” is not a whole number. Write digits only, e.g. 250.") % {"value": value})
        return int(text)

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class DecimalNumberWidget(widgets.DecimalWidget):
    """12.50 or 12,50 whatever the page's language (the last separator is the decimal one)."""

    def clean(self, value, row=None, **kwargs):
        if self.is_empty(value):
            return None
        text = _SPACES.sub("", str(value))
        point = max(text.rfind("."), text.rfind(","))
        if point >= 0:
            text = text[:point].replace(".", "").replace(",", "") + "." + text[point + 1 :]
        try:
            number = Decimal(text)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            raise ValueError(_("“%(value)s” is not a number. Write it like 12.50.") % {"value": value})
        return number

    def render(self, value, obj=None, **kwargs):
        return "" if value is None else str(value)


class IsoDateWidget(widgets.DateWidget):
    """Dates as 2024-12-31 both ways, so a file exported here imports again unchanged."""

    def __init__(self):
        super().__init__(format="%Y-%m-%d")

    def clean(self, value, row=None, **kwargs):
        try:
            return super().clean(value, row, **kwargs)
        except ValueError:
            raise ValueError(_("“%(value)s” is not a date. Write it as 2024-12-31.") % {"value": value}) from None


class ChoiceWidget(widgets.CharWidget):
    """One of a model field's choices, written as its code (what an export writes)."""

    def __init__(self, choices):
        super().__init__(allow_blank=True)
        self.codes = [code for code, _label in choices]

    def clean(self, value, row=None, **kwargs):
        code = super().clean(value, row, **kwargs).strip()
        if code and code not in self.codes:
            raise ValueError(
                _("“%(value)s” is not a choice here. Use one of: %(codes)s.")
                % {"value": value, "codes": ", ".join(self.codes)}
            )
        return code


class ListWidget(widgets.SimpleArrayWidget):
    """A list in one cell, comma-separated ("Brussels, Flanders")."""

    def clean(self, value, row=None, **kwargs):
        return [item.strip() for item in str(value or "").split(self.separator) if item.strip()]


class CodeWidget(widgets.ForeignKeyWidget):
    """A related row named by its code in the file (as printed, else in any case); an unknown code is
    refused with `unknown`, a message with %(value)s."""

    def __init__(self, model, field: str, *, unknown: str):
        super().__init__(model, field)
        self.unknown = unknown

    def get_instance_by_lookup_fields(self, value, row, **kwargs):
        value = str(value).strip()
        candidates = self.get_queryset(value, row, **kwargs)
        found = candidates.filter(**{self.field: value}).first()
        if found is None:
            matches = list(candidates.filter(**{f"{self.field}__iexact": value})[:2])
            found = matches[0] if len(matches) == 1 else None
        if found is None:
            raise ValueError(str(self.unknown) % {"value": value})
        return found


# --- the resource ------------------------------------------------------------------------------------


def _take_over(instance: models.Model, saved: models.Model) -> None:
    """The row's instance becomes the row the service saved (for the preview's diff and the admin log)."""
    for model_field in saved._meta.concrete_fields:
        setattr(instance, model_field.attname, getattr(saved, model_field.attname))
    instance._state.adding, instance._state.db = False, saved._state.db
    instance._state.fields_cache = dict(saved._state.fields_cache)


class ServiceResource(resources.ModelResource):
    """A ModelResource whose rows are written by services (subclasses implement `write`).

    - All or nothing: transactions always, and a validation error rolls the whole file back too (the
      library's default keeps the valid rows), whatever the caller passes.
    - Cells are parsed by the widgets; the services then check the row as everywhere else. Every
      refusal is keyed by the file's column (or is a row-level error), so the preview can show it there.
    - A key (e.g. a member number) may appear once per file: a second row for it is refused.
    - Exports escape cells that start like a formula; imports drop that escape again.
    """

    class Meta:
        use_transactions = True
        clean_model_instances = False  # the services run full_clean(), with their own messages
        skip_unchanged = False
        report_skipped = True  # every row has its RowResult, in file order (the preview relies on it)
        store_row_values = True  # an invalid row's cells are shown beside its errors

    def write(self, *, instance, new: bool, values: dict, user) -> models.Model:
        """Create (new) or change `instance` from the row's parsed `values` through the app's services."""
        raise NotImplementedError

    # -- all or nothing --

    def import_data(
        self,
        dataset,
        dry_run=False,
        raise_errors=False,
        use_transactions=None,
        collect_failed_rows=False,
        rollback_on_validation_errors=False,
        **kwargs,
    ):
        return super().import_data(
            dataset,
            dry_run=dry_run,
            raise_errors=raise_errors,
            use_transactions=True,
            collect_failed_rows=collect_failed_rows,
            rollback_on_validation_errors=True,
            **kwargs,
        )

    # -- reading a row --

    def get_import_fields(self):
        return [f for f in super().get_import_fields() if not f.readonly]  # export-only columns are not read

    def before_import(self, dataset, **kwargs):
        self._keys_seen: dict[tuple, int] = {}
        headers = dataset.headers or []
        missing = [self.fields[name].column_name for name in self.get_import_id_fields()]
        missing = [column for column in missing if column not in headers]
        if missing:
            raise ApplicationError(
                _("The file has no “%(columns)s” column: add it (it says which row is which) and upload it again.")
                % {"columns": "”, “".join(missing)},
                code="missing_column",
            )

    def before_import_row(self, row, **kwargs):
        for column, value in row.items():
            if isinstance(value, str):
                row[column] = spreadsheet_text(value.strip()).strip()

    def get_instance(self, instance_loader, row):
        try:
            return super().get_instance(instance_loader, row)
        except ValueError:
            return None  # a key cell that cannot be read: import_instance() reports it on its column

    def row_keys(self, instance, row) -> list[tuple]:
        """What makes two rows of the file the same record: their key cells, or the record they found."""
        cells = tuple(str(row.get(self.fields[name].column_name) or "") for name in self.get_import_id_fields())
        keys = [("cells", *cells)] if any(cells) else []
        return keys if instance._state.adding else [*keys, ("pk", instance.pk)]

    def _first_row_for(self, keys: list[tuple], row_number: int) -> int | None:
        """The earlier row of the file that was for the same record, if any (and this row's claim on it)."""
        earlier = [first for key in keys if (first := self._keys_seen.setdefault(key, row_number)) != row_number]
        return min(earlier, default=None)

    def import_instance(self, instance, row, **kwargs):
        """Parse every cell of the row (the instance itself is left as it is: `write` receives the values)."""
        errors: dict[str, list[str]] = {}
        values = {}
        for resource_field in self.get_import_fields():
            if not resource_field.attribute or resource_field.column_name not in row:
                continue
            try:
                values[resource_field.attribute] = resource_field.clean(row, **kwargs)
            except ValueError as error:
                errors[resource_field.column_name] = [str(error)]
        first = self._first_row_for(self.row_keys(instance, row), kwargs["row_number"])
        if first is not None:
            column = self.fields[self.get_import_id_fields()[0]].column_name
            errors.setdefault(column, []).append(
                _("Row %(row)s of this file is for the same %(record)s: keep one row for it.")
                % {"row": first + 1, "record": self._meta.model._meta.verbose_name}
            )
        self._row_values = values
        if errors:
            raise ValidationError(errors)

    # -- writing a row --

    def save_instance(self, instance, is_create, row, **kwargs):
        try:
            saved = self.write(instance=instance, new=is_create, values=self._row_values, user=kwargs.get("user"))
        except ApplicationError as error:
            fields = error.extra.get("fields") or {error.extra.get("field"): [error.message]}
            raise ValidationError(self._by_column(fields, row)) from None
        except ValidationError as error:  # full_clean() refusals of services that pass them on as they are
            fields = getattr(error, "message_dict", {None: error.messages})
            raise ValidationError(self._by_column(fields, row)) from None
        _take_over(instance, saved)
        self._first_row_for([("pk", saved.pk)], kwargs["row_number"])  # a later row that finds it is a repeat

    def save_m2m(self, instance, row, **kwargs):
        pass  # the services write related rows themselves

    def _by_column(self, fields: dict, row) -> dict[str, list[str]]:
        """Errors by model field -> errors by the file's column; a field with no column in this file
        becomes a row-level error that names the column to add."""
        columns = {f.attribute: f.column_name for f in self.get_import_fields()}
        errors: dict[str, list[str]] = {}
        for name, messages in fields.items():
            messages = [str(message) for message in (messages if isinstance(messages, list | tuple) else [messages])]
            column = columns.get(name)
            if column is not None and column in row:
                errors.setdefault(column, []).extend(messages)
            elif column is not None:
                errors.setdefault(NON_FIELD_ERRORS, []).extend(f"{column}: {message}" for message in messages)
            else:
                errors.setdefault(NON_FIELD_ERRORS, []).extend(messages)
        return errors

    # -- export --

    def export_field(self, field, instance, **kwargs):
        return spreadsheet_safe(super().export_field(field, instance, **kwargs))


# --- the preview -------------------------------------------------------------------------------------


@dataclass
class PreviewCell:
    value: str
    errors: list[str] = field(default_factory=list)


@dataclass
class PreviewRow:
    number: int  # as a spreadsheet numbers it: the header is row 1
    kind: str  # RowResult.import_type: new, update, skip, invalid or error
    cells: list[PreviewCell]
    errors: list[str] = field(default_factory=list)  # about the row as a whole


@dataclass
class ImportPreview:
    columns: list[str]
    rows: list[PreviewRow]
    file_errors: list[str]  # about the file as a whole (a missing column, an unreadable file)
    new: int
    updated: int
    invalid: int

    @property
    def refused(self) -> bool:
        return bool(self.invalid or self.file_errors)

    @property
    def headings(self) -> list[str]:
        """The column names, free to wrap after an underscore (marketing_<wbr>consent) in a narrow table."""
        return [mark_safe(conditional_escape(column).replace("_", "_<wbr>")) for column in self.columns]


def import_preview(result: Result) -> ImportPreview:
    """Every row of an import's result in file order, each error beside its row and column. Only the
    resource's columns that the file has are shown (the others change nothing)."""
    headers = [str(column) for column in result.diff_headers]
    in_file = {column for row_result in result.rows for column in row_result.row_values}
    shown = [index for index, column in enumerate(headers) if column in in_file] if in_file else []
    columns = [headers[index] for index in shown]
    rows = []
    for number, row_result in enumerate(result.rows, start=2):
        raw = row_result.row_values
        if row_result.import_type == RowResult.IMPORT_TYPE_INVALID:
            by_column = dict(row_result.validation_error.message_dict)
            row_errors = by_column.pop(NON_FIELD_ERRORS, [])
            cells = [PreviewCell(str(raw.get(column, "")), by_column.pop(column, [])) for column in columns]
            row_errors += [f"{column}: {message}" for column, messages in by_column.items() for message in messages]
        elif row_result.import_type == RowResult.IMPORT_TYPE_ERROR:
            cells = [PreviewCell(str(raw.get(column, ""))) for column in columns]
            row_errors = [str(error.error) for error in row_result.errors]
        else:
            diff = row_result.diff or [""] * len(headers)
            cells = [PreviewCell(diff[index]) for index in shown]
            row_errors = []
        rows.append(PreviewRow(number=number, kind=row_result.import_type, cells=cells, errors=row_errors))
    totals = result.totals
    return ImportPreview(
        columns=columns,
        rows=rows,
        file_errors=[str(error.error) for error in result.base_errors],
        new=totals[RowResult.IMPORT_TYPE_NEW],
        updated=totals[RowResult.IMPORT_TYPE_UPDATE],
        invalid=totals[RowResult.IMPORT_TYPE_INVALID] + totals[RowResult.IMPORT_TYPE_ERROR],
    )
