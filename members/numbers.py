"""Member numbers the portal issues: ten digits, the last a Luhn check digit, so a mistyped digit or two
swapped neighbours are caught at the till. Legacy numbers from an old system are kept as they are."""

import re
import secrets

import phonenumbers
from django.conf import settings
from stdnum import luhn
from stdnum.exceptions import ValidationError

PREFIX = "8"  # every portal-issued number starts with 8, so it never collides with a legacy one of other shape
LENGTH = 10


def generate() -> str:
    return with_check_digit(PREFIX + "".join(str(secrets.randbelow(10)) for _ in range(LENGTH - len(PREFIX) - 1)))


def with_check_digit(body: str) -> str:
    """A nine-digit body starting with the prefix, completed by its check digit."""
    return body + luhn.calc_check_digit(body)


def normalise(value: str) -> str:
    """What a clerk types or a scanner sends, without spaces, dashes or dots."""
    return re.sub(r"[\s\-.]", "", value or "").upper()


def typed_forms(value: str) -> set[str]:
    """The stored numbers a typed card number may stand for: as typed, in capitals, or without spaces and
    dashes (legacy numbers are kept as printed, so all three are looked up)."""
    typed = (value or "").strip()
    return {typed, typed.upper(), normalise(typed)}


def looks_issued(value: str) -> bool:
    """Shaped like a number the portal issues (whether or not its check digit is right)."""
    return len(value) == LENGTH and value.isdigit() and value.startswith(PREFIX)


def check_digit_ok(value: str) -> bool:
    try:
        luhn.validate(value)
    except ValidationError:
        return False
    return True


def display(value: str) -> str:
    """Grouped for the card: 8123 4567 89."""
    if looks_issued(value):
        return f"{value[:4]} {value[4:8]} {value[8:]}"
    return value


def phone_prefix(typed: str, region: str | None = None) -> str:
    """The E.164 beginning of a phone number typed so far ("0470 12" -> "+3247012"), for as-you-type search."""
    digits = re.sub(r"[^\d+]", "", typed or "")
    if digits.startswith("+"):
        return "+" + digits[1:].replace("+", "")
    if digits.startswith("00"):
        return "+" + digits[2:]
    country = phonenumbers.country_code_for_region(region or settings.PHONENUMBER_DEFAULT_REGION)
    return f"+{country}{digits[1:] if digits.startswith('0') else digits}"
