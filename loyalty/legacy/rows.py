"""The canonical columns of a legacy member file (DESIGN.md), the mapping from a file's own headers to
them, and the check of every row: each cell is parsed once, here, and either lands in the staging
table in its stored form or becomes an error with its row, column, value and message."""

import datetime
import re
import sys
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from loyalty.models import Tier
from members.models import MemberType, Store
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
MEMBER_NO, EMAIL = STAGE_FIELDS.index("member_no"), STAGE_FIELDS.index("email")
NO_LIMIT = sys.maxsize


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
                _('A mapping is a JSON object from a header of the file to a column, e.g. {"N° carte": "member_no"}.'),
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

    def columns_of(self, headers: list[str]) -> list[str]:
        """The canonical column of each header ("" to ignore it): the mapping's, matched as written or
        loosely (case, spaces, dashes), else the header itself when it is canonical."""
        by_key = {_key(header): column for header, column in self.columns.items()}
        found = []
        for header in headers:
            column = self.columns.get(header, by_key.get(_key(header)))
            if column is None and _key(header) in CANONICAL_COLUMNS:
                column = _key(header)
            found.append(column or "")
        return found

    def resolve(self, headers: list[str]) -> dict[str, int]:
        """Canonical column -> index in a row. Headers the mapping leaves out and that are not canonical
        are ignored; a header mapped to "" is ignored on purpose."""
        found: dict[str, int] = {}
        for index, (header, column) in enumerate(zip(headers, self.columns_of(headers), strict=True)):
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


class CellError(Exception):
    def __init__(self, message: str):
        self.message = message


@dataclass(frozen=True)
class RowError:
    row: int
    column: str
    value: str
    message: str


DAY_FIRST = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})")
ISO = re.compile(r"(\d{4})-(\d{2})-(\d{2})(?:[T ].*)?")
CACHE_LIMIT = 20_000  # distinct values remembered per column; the memory stays flat on a file of unique values

# The ASCII subset of Django's EmailValidator (dot-atom user, hostname labels, a letters-only top-level
# domain): an address it matches, Django accepts; anything else goes to Django's validator itself.
PLAIN_EMAIL = re.compile(
    r"[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+(?:\.[-!#$%&'*+/=?^_`{}|~0-9A-Za-z]+)*"
    r"@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.(?!-)[a-z-]{2,63}(?<!-)"
)
EMAIL_MAX_LENGTH = 320  # EmailValidator's own limit (RFC 3696)


def email_is_plain(email: str) -> bool:
    """True when the address is in the ASCII subset that Django's EmailValidator accepts without further
    thought (within its 320 characters); False says nothing (ask the validator)."""
    return len(email) <= EMAIL_MAX_LENGTH and PLAIN_EMAIL.fullmatch(email) is not None


class RowParser:
    """Checks the cells of one program's import; everything it looks up is loaded once."""

    def __init__(self, *, program, headers: list[str], columns: dict[str, int], date_format: str = ""):
        self.headers = headers
        self.columns = columns
        self.date_format = date_format
        tiers = list(Tier.objects.filter(program=program).order_by("rank"))
        self.tiers = {tier.name.casefold(): tier.pk for tier in tiers}
        self.tier_names = ", ".join(tier.name for tier in tiers)
        self.stores = {code.casefold(): pk for pk, code in Store.objects.values_list("pk", "code")}
        self.member_types = {code.casefold(): code for code in MemberType.objects.values_list("code", flat=True)}
        self.languages = {code for code, _name in settings.LANGUAGES}
        self.today = timezone.localdate()
        self.email_validator = EmailValidator()
        self.identity_headers = [headers[columns[c]] for c in ("member_no", "email") if c in columns]
        self.plan = self._plan()

    # -- cells ---------------------------------------------------------------------------------------

    def _date(self, value: str) -> datetime.date | None:
        match = ISO.fullmatch(value)
        try:
            if match:
                return datetime.date(int(match[1]), int(match[2]), int(match[3]))
            if self.date_format:
                return datetime.datetime.strptime(value, self.date_format).date()
            if match := DAY_FIRST.fullmatch(value):
                return datetime.date(int(match[3]), int(match[2]), int(match[1]))
        except ValueError:
            pass
        return None

    @staticmethod
    def _midnight(day: datetime.date) -> datetime.datetime:
        return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))

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

    @staticmethod
    def _remembered(handle):
        """`handle` once per distinct value (balances, dates, languages repeat across a file), its answer or its
        error kept for the next row that has the same value."""
        answers: dict[str, tuple[object, str | None]] = {}

        def remembered(raw: str):
            try:
                value, message = answers[raw]
            except KeyError:
                try:
                    value, message = handle(raw), None
                except CellError as error:
                    value, message = None, error.message
                if len(answers) >= CACHE_LIMIT:
                    answers.clear()
                answers[raw] = value, message
            if message is not None:
                raise CellError(message)
            return value

        return remembered

    # -- cells, one handler per canonical column that is not plain text: value -> stored value, or CellError --

    def _email(self, raw: str):
        if len(raw) > TEXT_LIMITS["email"]:
            raise CellError(_("Too long: at most %(limit)s characters.") % {"limit": TEXT_LIMITS["email"]})
        local, at, domain = raw.rpartition("@")
        email = f"{local}@{domain.lower()}" if at else raw
        if not email_is_plain(email):  # the unusual rest: Django's validator decides
            try:
                self.email_validator(email)
            except ValidationError:
                raise CellError(_("“%(value)s” is not an email address.") % {"value": raw}) from None
        return email

    @staticmethod
    def _phone(raw: str):
        try:
            return phone_normalise(raw)  # E.164, as the desk and the API store phones
        except ApplicationError as error:
            raise CellError(error.message) from None

    def _language(self, raw: str):
        code = raw.lower().replace("_", "-").split("-")[0]
        if code not in self.languages:
            raise CellError(
                _("Unknown language “%(value)s”. Use one of: %(codes)s.")
                % {"value": raw, "codes": ", ".join(sorted(self.languages))}
            )
        return code

    def _member_type(self, raw: str):
        code = self.member_types.get(raw.casefold())
        if code is None:
            raise CellError(
                _("Unknown member type “%(value)s”. Use one of: %(codes)s, or add it in the admin first.")
                % {"value": raw, "codes": ", ".join(sorted(self.member_types.values()))}
            )
        return code

    def _store(self, raw: str):
        store_id = self.stores.get(raw.casefold())
        if store_id is None:
            raise CellError(_("No store has the code “%(value)s”.") % {"value": raw})
        return store_id

    def _tier(self, raw: str):
        tier_id = self.tiers.get(raw.casefold())
        if tier_id is None:
            raise CellError(
                _("The program has no tier “%(value)s”. Its tiers: %(tiers)s.")
                % {"value": raw, "tiers": self.tier_names}
            )
        return tier_id

    def _balance(self, raw: str):
        try:
            balance = int(raw) if raw.isdigit() else self._whole_number(raw)
        except (ValueError, InvalidOperation):
            raise CellError(_("The balance must be a whole number of points, e.g. 1200.")) from None
        if balance < 0:
            raise CellError(_("The balance cannot be negative."))
        if balance > MAX_BALANCE:
            raise CellError(_("The balance is too large."))
        return balance

    def _past_date(self, raw: str):
        day = self._date(raw)
        if day is None:
            raise CellError(self._date_error(raw))
        if day > self.today:
            raise CellError(_("This date is in the future."))
        return self._midnight(day)

    def _expiry(self, raw: str):
        day = self._date(raw)
        if day is None:
            raise CellError(self._date_error(raw))
        if day < self.today:
            raise CellError(_("This date has passed: points that expired are not imported."))
        return self._midnight(day + datetime.timedelta(days=1))  # valid through that day

    def _consent(self, raw: str):
        answer = raw.casefold()
        if answer in YES:
            return True
        if answer in NO:
            return False
        raise CellError(_("Write yes or no (or 1 or 0)."))

    def _plan(self) -> list[tuple[int, str, int, int, object]]:
        """(index in the row, header, index in the staged row, length limit, handler or None for plain text)."""
        special = {
            "email": ("email", self._email),
            "phone": ("phone", self._phone),
            "language": ("language", self._remembered(self._language)),
            "member_type": ("member_type", self._member_type),
            "store": ("store_id", self._store),
            "tier": ("tier_id", self._tier),
            "balance": ("balance", self._remembered(self._balance)),
            "enrolled_on": ("enrolled_at", self._remembered(self._past_date)),
            "tier_since": ("tier_since", self._remembered(self._past_date)),
            "points_expire_on": ("expires_at", self._remembered(self._expiry)),
            "marketing_consent": ("consent", self._consent),
        }
        plan = []
        for column, index in self.columns.items():
            field_name, handle = special.get(column, (column, None))
            limit = TEXT_LIMITS.get(column, NO_LIMIT)
            plan.append((index, self.headers[index], STAGE_FIELDS.index(field_name), limit, handle))
        return plan

    # -- rows ----------------------------------------------------------------------------------------

    def parse(self, row_no: int, cells: list[str]) -> tuple[list | None, list[RowError]]:
        """(the row for the staging table, in STAGE_FIELDS order, []) or (None, its errors)."""
        staged: list = [None] * len(STAGE_FIELDS)
        staged[0] = row_no
        errors: list[RowError] = []
        width = len(cells)
        for index, header, slot, limit, handle in self.plan:
            if index >= width:
                continue
            raw = cells[index].strip()
            if not raw:
                continue
            if handle is None:  # plain text: only its length is checked
                if len(raw) > limit:
                    message = _("Too long: at most %(limit)s characters.") % {"limit": limit}
                    errors.append(RowError(row_no, header, raw, message))
                else:
                    staged[slot] = raw
                continue
            try:
                staged[slot] = handle(raw)
            except CellError as error:
                errors.append(RowError(row_no, header, raw, error.message))
        unknown = staged[MEMBER_NO] is None and staged[EMAIL] is None
        if unknown and not any(error.column in self.identity_headers for error in errors):
            errors.append(
                RowError(
                    row_no,
                    self.identity_headers[0],
                    "",
                    _("Give a member number or an email, so the member is recognised when the file is imported again."),
                )
            )
        if errors:
            return None, errors
        return staged, errors
