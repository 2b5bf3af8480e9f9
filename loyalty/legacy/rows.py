"""The canonical columns of a legacy member file (DESIGN.md), the mapping from a file's own headers to
them, and the check of every row: each cell is parsed once, here, and either lands in the staging
table in its stored form or becomes an error with its row, column, value and message."""

import datetime
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from members.services import phone_normalise

CANONICAL_COLUMNS = (
    "member_no",
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "language",
    "member_type",
    "store",
    "enrolled_on",
    "balance",
    "tier",
    "tier_since",
    "points_expire_on",
    "marketing_consent",
)
TEXT_LIMITS = {
    "member_no": 32,
    "first_name": 100,
    "last_name": 100,
    "company": 200,
    "email": 254,
    "street": 200,
    "postal_code": 20,
    "city": 100,
    "region": 80,
}
YES = frozenset({"1", "y", "yes", "true", "x", "oui", "o", "ja", "j", "vrai", "waar"})
NO = frozenset({"0", "n", "no", "false", "non", "nee", "faux", "onwaar"})
MAX_BALANCE = 10_000_000_000

# The row as the staging table holds it (loyalty.legacy.loading): stored forms, None for "not given".
STAGE_FIELDS = (
    "row_no",
    "member_no",
    "first_name",
    "last_name",
    "company",
    "email",
    "phone",
    "street",
    "postal_code",
    "city",
    "region",
    "language",
    "member_type",
    "store_id",
    "enrolled_at",
    "balance",
    "tier_id",
    "tier_since",
    "expires_at",
    "consent",
)


def _key(header: str) -> str:
    return re.sub(r"[\s\-]+", "_", header.strip().lower())


@dataclass
class ColumnMapping:
    """From a file's headers to canonical columns: `{"N° carte": "member_no", ...}` plus an optional
    `"date_format"` (strftime, e.g. "%m/%d/%Y"). Headers already canonical need no entry."""

    columns: dict[str, str] = field(default_factory=dict)
    date_format: str = ""

    @classmethod
    def from_json(cls, data) -> "ColumnMapping":
        if not isinstance(data, dict):
            raise ApplicationError(
                _("A mapping is a JSON object from a header of the file to a column, e.g. {\"N° carte\": \"member_no\"}."),
                code="invalid_mapping",
            )
        data = dict(data)
        date_format = data.pop("date_format", "") or ""
        if not isinstance(date_format, str) or (date_format and "%" not in date_format):
            raise ApplicationError(
                _("“date_format” must be a pattern such as “%%d/%%m/%%Y”, not “%(value)s”.") % {"value": date_format},
                code="invalid_mapping",
            )
        unknown = {header: column for header, column in data.items() if column not in CANONICAL_COLUMNS and column}
        if unknown:
            header, column = next(iter(unknown.items()))
            raise ApplicationError(
                _("The mapping sends “%(header)s” to “%(column)s”, which is not a column. Columns: %(columns)s.")
                % {"header": header, "column": column, "columns": ", ".join(CANONICAL_COLUMNS)},
                code="invalid_mapping",
            )
        return cls(columns={str(header): column for header, column in data.items()}, date_format=date_format)

    def as_json(self) -> dict:
        data = dict(self.columns)
        if self.date_format:
            data["date_format"] = self.date_format
        return data

    def resolve(self, headers: list[str]) -> dict[str, int]:
        """Canonical column -> index in a row. Headers the mapping leaves out and that are not canonical
        are ignored; a header mapped to "" is ignored on purpose."""
        by_key = {_key(header): column for header, column in self.columns.items()}
        found: dict[str, int] = {}
        for index, header in enumerate(headers):
            column = self.columns.get(header, by_key.get(_key(header)))
            if column is None and _key(header) in CANONICAL_COLUMNS:
                column = _key(header)
            if not column:
                continue
            if column in found:
                raise ApplicationError(
                    _("Two columns of the file give “%(column)s”: “%(first)s” and “%(second)s”. Map one of them only.")
                    % {"column": column, "first": headers[found[column]], "second": header},
                    code="invalid_mapping",
                )
            found[column] = index
        if "member_no" not in found and "email" not in found:
            raise ApplicationError(
                _(
                    "The file needs a member number or an email column, so members are recognised when the file "
                    "is imported again. Headers found: %(headers)s."
                )
                % {"headers": ", ".join(headers)},
                code="invalid_mapping",
            )
        return found

    def guess(self, headers: list[str]) -> dict[str, str]:
        """Header -> canonical column for the upload page: the saved mapping first, then canonical names."""
        guessed = {}
        by_key = {_key(header): column for header, column in self.columns.items()}
        for header in headers:
            column = self.columns.get(header, by_key.get(_key(header)))
            if column is None and _key(header) in CANONICAL_COLUMNS:
                column = _key(header)
            guessed[header] = column or ""
        return guessed


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    value: str
    message: str


DAY_FIRST = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?")


class RowParser:
    """Checks the cells of one program's import; everything it looks up is loaded once."""

    def __init__(self, *, program, headers: list[str], columns: dict[str, int], date_format: str = ""):
        from loyalty.models import Tier
        from members.models import MemberType, Store

        self.headers = headers
        self.columns = columns
        self.date_format = date_format
        self.tiers = {tier.name.casefold(): tier.pk for tier in Tier.objects.filter(program=program)}
        self.tier_names = ", ".join(Tier.objects.filter(program=program).order_by("rank").values_list("name", flat=True))
        self.stores = {code.casefold(): pk for pk, code in Store.objects.values_list("pk", "code")}
        self.member_types = {code.casefold(): code for code in MemberType.objects.values_list("code", flat=True)}
        self.languages = {code for code, _name in settings.LANGUAGES}
        self.today = timezone.localdate()
        self.email_validator = EmailValidator()
        self._dates: dict[str, datetime.date | None] = {}
        self._midnights: dict[datetime.date, datetime.datetime] = {}

    # -- cells ---------------------------------------------------------------------------------------

    def _date(self, value: str) -> datetime.date:
        try:
            return self._dates[value]
        except KeyError:
            pass
        day = None
        match = ISO.fullmatch(value)
        try:
            if match:
                day = datetime.date(int(match[1]), int(match[2]), int(match[3]))
            elif self.date_format:
                day = datetime.datetime.strptime(value, self.date_format).date()
            elif match := DAY_FIRST.fullmatch(value):
                day = datetime.date(int(match[3]), int(match[2]), int(match[1]))
        except ValueError:
            day = None
        self._dates[value] = day
        return day

    def _midnight(self, day: datetime.date) -> datetime.datetime:
        moment = self._midnights.get(day)
        if moment is None:
            moment = self._midnights[day] = timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))
        return moment

    def _date_error(self, value: str) -> str:
        expected = self.date_format or "31/12/2024"
        return _("“%(value)s” is not a date. Write it as %(expected)s or 2024-12-31.") % {
            "value": value,
            "expected": expected.replace("%d", "31").replace("%m", "12").replace("%Y", "2024").replace("%y", "24"),
        }

    @staticmethod
    def _whole_number(value: str) -> int:
        """1200, 1 200, 1.200, 1,200, 1200,00, 1.200,00 or 1,200.00; a fraction of a point is refused."""
        text = value.replace("\u00a0", "").replace("\u202f", "").replace(" ", "").replace("'", "")
        if "." in text and "," in text:
            decimal = max(text.rfind("."), text.rfind(","))
            text = text[:decimal].replace(".", "").replace(",", "") + "." + text[decimal + 1 :]
        for separator in ".,":
            # one separator kind only: grouping when every group after it has three digits (points are whole)
            if separator in text and re.fullmatch(rf"-?\d{{1,3}}(\{separator}\d{{3}})+", text):
                text = text.replace(separator, "")
        number = Decimal(text.replace(",", "."))
        if number != number.to_integral_value():
            raise ValueError("fraction")
        return int(number)

    # -- rows ----------------------------------------------------------------------------------------

    def parse(self, row_no: int, cells: list[str]) -> tuple[tuple | None, list[RowError]]:
        errors: list[RowError] = []
        values: dict[str, object] = {}
        width = len(cells)

        def fail(column: str, value: str, message: str) -> None:
            errors.append(RowError(row_no, self.headers[self.columns[column]], value, message))

        for column, index in self.columns.items():
            raw = cells[index].strip() if index < width else ""
            if not raw:
                continue
            limit = TEXT_LIMITS.get(column)
            if limit and len(raw) > limit:
                fail(column, raw, _("Too long: at most %(limit)s characters.") % {"limit": limit})
                continue
            if column == "email":
                email = raw.rsplit("@", 1)
                email = f"{email[0]}@{email[1].lower()}" if len(email) == 2 else raw
                try:
                    self.email_validator(email)
                except ValidationError:
                    fail(column, raw, _("“%(value)s” is not an email address.") % {"value": raw})
                    continue
                values[column] = email
            elif column == "phone":
                try:
                    values[column] = phone_normalise(raw)
                except ApplicationError as error:
                    fail(column, raw, error.message)
            elif column == "language":
                code = raw.lower().replace("_", "-").split("-")[0]
                if code not in self.languages:
                    fail(
                        column,
                        raw,
                        _("Unknown language “%(value)s”. Use one of: %(codes)s.")
                        % {"value": raw, "codes": ", ".join(sorted(self.languages))},
                    )
                    continue
                values[column] = code
            elif column == "member_type":
                code = self.member_types.get(raw.casefold())
                if code is None:
                    fail(
                        column,
                        raw,
                        _("Unknown member type “%(value)s”. Use one of: %(codes)s, or add it in the admin first.")
                        % {"value": raw, "codes": ", ".join(sorted(self.member_types.values()))},
                    )
                    continue
                values[column] = code
            elif column == "store":
                store_id = self.stores.get(raw.casefold())
                if store_id is None:
                    fail(column, raw, _("No store has the code “%(value)s”.") % {"value": raw})
                    continue
                values["store_id"] = store_id
            elif column == "tier":
                tier_id = self.tiers.get(raw.casefold())
                if tier_id is None:
                    fail(
                        column,
                        raw,
                        _("The program has no tier “%(value)s”. Its tiers: %(tiers)s.")
                        % {"value": raw, "tiers": self.tier_names},
                    )
                    continue
                values["tier_id"] = tier_id
            elif column == "balance":
                try:
                    balance = self._whole_number(raw)
                except (ValueError, InvalidOperation):
                    fail(column, raw, _("The balance must be a whole number of points, e.g. 1200."))
                    continue
                if balance < 0:
                    fail(column, raw, _("The balance cannot be negative."))
                    continue
                if balance > MAX_BALANCE:
                    fail(column, raw, _("The balance is too large."))
                    continue
                values["balance"] = balance
            elif column in {"enrolled_on", "tier_since", "points_expire_on"}:
                day = self._date(raw)
                if day is None:
                    fail(column, raw, self._date_error(raw))
                elif column == "points_expire_on":
                    if day < self.today:
                        fail(column, raw, _("This date has passed: points that expired are not imported."))
                    else:  # the points stay valid through that day
                        values["expires_at"] = self._midnight(day + datetime.timedelta(days=1))
                elif day > self.today:
                    fail(column, raw, _("This date is in the future."))
                else:
                    values["enrolled_at" if column == "enrolled_on" else "tier_since"] = self._midnight(day)
            elif column == "marketing_consent":
                answer = raw.casefold()
                if answer in YES:
                    values["consent"] = True
                elif answer in NO:
                    values["consent"] = False
                else:
                    fail(column, raw, _("Write yes or no (or 1 or 0)."))
            else:
                values[column] = raw
        if "member_no" not in values and "email" not in values and not any(e.column in {
            self.headers[self.columns[c]] for c in ("member_no", "email") if c in self.columns
        } for e in errors):
            column = "member_no" if "member_no" in self.columns else "email"
            fail(
                column,
                "",
                _("Give a member number or an email, so the member is recognised when the file is imported again."),
            )
        if errors:
            return None, errors
        values["row_no"] = row_no
        return tuple(values.get(name) for name in STAGE_FIELDS), errors
