"""Voucher codes: twelve characters from an alphabet without look-alikes (no 0/O, 1/I/L, 5/S, 2/Z, 8/B, U/V),
the last a Luhn mod-N check character (python-stdnum), so a mistyped character is caught before any
lookup and says nothing about other members' codes. 11 random characters of 24: about 50 bits."""

import re
import secrets

from stdnum import luhn
from stdnum.exceptions import ValidationError

# An even count: Luhn mod N catches every single mistyped character only for even N (odd N doubles two alike).
ALPHABET = "ACDEFGHJKMNPQRTUWXY34679"
LENGTH = 12


def generate() -> str:
    body = "".join(secrets.choice(ALPHABET) for _ in range(LENGTH - 1))
    return body + luhn.calc_check_digit(body, alphabet=ALPHABET)


def normalise(value: str) -> str:
    """What a clerk types or a scanner reads: any case, with spaces or dashes."""
    return re.sub(r"[\s\-.]", "", value or "").upper()


def well_formed(code: str) -> bool:
    """Twelve characters of the alphabet with a right check character (a normalised code)."""
    if len(code) != LENGTH or any(character not in ALPHABET for character in code):
        return False
    try:
        luhn.validate(code, alphabet=ALPHABET)
    except ValidationError:
        return False
    return True


def display(code: str) -> str:
    """Grouped as printed: ABCD-EFGH-JKMN."""
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
