"""The legacy import's shortcuts give the answers of the checks they stand in for: the ASCII email pattern
accepts only what Django's EmailValidator accepts, the "+32 470 12 34 56" phone path (inside
phone_normalise) gives what phonenumbers gives, an answer remembered for a value is given again on every row that has it, and the
set-based writes draw new ids in the file's order, with a number of queries that does not grow with the
file."""

import phonenumbers
import pytest
from django.conf import settings as django_settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator
from django.db import connection
from django.test.utils import CaptureQueriesContext
from hypothesis import given, settings
from hypothesis import strategies as st

from loyalty.legacy import loading as legacy_loading
from loyalty.legacy import rows as legacy_rows
from loyalty.legacy.rows import PLAIN_EMAIL, email_is_plain
from loyalty.models import Account
from members.models import Member
from members.services import international_phone_e164
from tests.imports.conftest import csv_text

validate_email = EmailValidator()


def django_accepts(email: str) -> bool:
    try:
        validate_email(email)
    except ValidationError:
        return False
    return True


def normalised(raw: str, region: str | None = None) -> str | None:
    """What phonenumbers itself makes of a phone (phone_normalise's answer without its shortcut)."""
    try:
        number = phonenumbers.parse(raw, region or django_settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


EVERYDAY_EMAILS = [
    "ann@example.com",
    "ann.peeters+loyalty@mail.example.co.uk",
    "o'brien@example.ie",
    "member123@legacy.example.com",
    "j_doe-2@sub.domain-name.be",
]
TRICKY_EMAILS = [
    *EVERYDAY_EMAILS,
    "a@b.co",
    "user@localhost",
    "user@[192.168.0.1]",
    "user@[::1]",
    '"quoted local"@example.com',
    "ann@example",
    "ann@-example.com",
    "ann@example-.com",
    "ann@example.com.",
    "ann@example..com",
    "ann..peeters@example.com",
    ".ann@example.com",
    "ann.@example.com",
    "ann@exa_mple.com",
    "ann@example.c",
    "ann@example.123",
    "ann@example.c-m",
    "ann@example.-com",
    "ann@example.com-",
    "ann@xn--bcher-kva.ch",
    "ann@bücher.ch",
    "zoë@example.com",
    "\u212a@example.com",  # the Kelvin sign, which Django's case-blind pattern takes for a K
    "ann@EXAMPLE.COM",
    "ann@@example.com",
    "ann@",
    "@example.com",
    "ann example@example.com",
    "ann@example.com\n",
    "a" * 64 + "@example.com",
    "ann@" + "a" * 63 + ".com",
    "ann@" + "a" * 64 + ".com",
    "ann@example." + "c" * 63,
    "ann@example." + "c" * 64,
]


def test_the_plain_email_pattern_accepts_only_addresses_djangos_validator_accepts():
    accepted = [email for email in TRICKY_EMAILS if email_is_plain(email)]

    assert all(django_accepts(email) for email in accepted), [e for e in accepted if not django_accepts(e)]
    assert set(EVERYDAY_EMAILS) <= set(accepted)  # the validator is seldom asked on a real file


@settings(max_examples=300, deadline=None)
@given(email=st.from_regex(PLAIN_EMAIL, fullmatch=True))
def test_any_address_the_plain_pattern_matches_djangos_validator_accepts(email):
    assert not email_is_plain(email) or django_accepts(email)


def test_an_address_longer_than_djangos_limit_is_not_plain_whatever_its_shape():
    email = "a." * 160 + "a@example.com"  # 333 characters

    assert PLAIN_EMAIL.fullmatch(email) and not django_accepts(email)
    assert not email_is_plain(email)


@settings(max_examples=300, deadline=None)
@given(email=st.text(alphabet="ab9.-_+'@\"[]:éK\u212a ", min_size=1, max_size=24))
def test_near_miss_addresses_get_the_same_verdict_from_the_import_as_from_django(email):
    assert not email_is_plain(email) or django_accepts(email)


TRICKY_PHONES = [
    "+32 470 12 34 56",
    "+32470123456",
    "+32 2 555 12 34",
    "+32 0470 12 34 56",  # a national prefix after the country code, which phonenumbers drops
    "+39 06 1234 5678",  # Italy keeps its leading zero
    "+39 312 345 6789",
    "+1 650 253 0000",
    "+1 800 253 0000",
    "+44 20 7946 0958",
    "+44 7700 900123",
    "+33 6 12 34 56 78",
    "+31 6 12345678",
    "+49 30 123456",
    "+49 1512 3456789",
    "+54 9 11 1234 5678",  # Argentina rewrites national prefixes
    "+52 1 55 1234 5678",
    "+55 11 91234 5678",
    "+800 1234 5678",  # a country code of no country
    "+7 912 345 67 89",
    "+352 621 123 456",
    "+32 470",
    "+32 12",
    "+999 123 456 789",
    "+0 470 12 34 56",
    "+32  470 12 34 56",
    "+32 470 12 34 567",
    "+3247012345678901234",
    "+1 800 FLOWERS",
    "+32.470.12.34.56",
    "+32-470-12-34-56",
    "+32 (0)470 12 34 56",
    "0470 12 34 56",
]


def test_the_international_phone_path_gives_phone_normalises_answer():
    for raw in TRICKY_PHONES:
        fast = international_phone_e164(raw)
        assert fast is None or fast == normalised(raw) == normalised(raw, region="US"), raw
    assert international_phone_e164("+32 470 12 34 56") == "+32470123456"  # taken, not passed on
    assert international_phone_e164("+1 650 253 0000") == "+16502530000"


def test_every_regions_example_numbers_get_the_same_e164_from_the_shortcut_as_from_phone_normalise():
    examples = [
        phonenumbers.example_number_for_type(region, kind)
        for region in sorted(phonenumbers.SUPPORTED_REGIONS)
        for kind in range(12)  # every PhoneNumberType
    ]
    examples += [
        phonenumbers.example_number_for_non_geo_entity(code) for code in phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS
    ]
    taken = 0
    for example in filter(None, examples):
        for number_format in (phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL):
            raw = phonenumbers.format_number(example, number_format)
            fast = international_phone_e164(raw)
            assert fast is None or fast == normalised(raw), raw
            taken += fast is not None
    assert taken > 1000  # most of the world's numbers take the shortcut


@settings(max_examples=500, deadline=None)
@given(raw=st.from_regex(r"\+[1-9](?: ?[0-9]){1,18}", fullmatch=True))
def test_any_international_phone_the_shortcut_takes_phone_normalise_takes_the_same_way(raw):
    fast = international_phone_e164(raw)
    assert fast is None or fast == normalised(raw)


def test_a_value_on_many_rows_is_answered_the_same_on_each_and_errors_name_each_row(legacy, program, monkeypatch):
    monkeypatch.setattr(legacy_rows, "CACHE_LIMIT", 2)  # remembered answers are dropped and found again
    report = legacy(
        "member_no,last_name,phone,balance,enrolled_on\n"
        'V-1,A,0470 11 11 11,"1.200,00",01/02/2020\n'
        "V-2,B,+32 470 22 22 22,12.5,01/02/2020\n"
        'V-3,C,0470 33 33 33,"1.200,00",31/02/2020\n'
        "V-4,D,+32 470 44 44 44,12.5,01/02/2020\n"
        'V-5,E,0470 55 55 55,"1.200,00",31/02/2020\n'
    )

    assert [(error.row, error.column) for error in report.first_errors] == [
        (3, "balance"),
        (4, "enrolled_on"),
        (5, "balance"),
        (6, "enrolled_on"),
    ]
    fixed = legacy(
        "member_no,last_name,phone,balance,enrolled_on\n"
        'V-1,A,0470 11 11 11,"1.200,00",01/02/2020\n'
        "V-2,B,+32 470 22 22 22,1200,01/02/2020\n"
        'V-3,C,0470 33 33 33,"1.200,00",2020-02-01\n'
    )
    assert fixed.ok, fixed.first_errors
    members = Member.objects.filter(member_no__startswith="V-").order_by("member_no")
    assert [member.phone for member in members] == ["+32470111111", "+32470222222", "+32470333333"]
    assert set(Account.objects.filter(member__in=members).values_list("balance", flat=True)) == {1200}


def test_new_members_and_accounts_get_their_ids_in_the_files_order(legacy, program):
    report = legacy(csv_text(*(f"O-{n},Name{n},X,,,,,,,,,,,,{n},,,," for n in (5, 3, 9, 1, 7))))

    assert report.ok, report.first_errors
    members = list(Member.objects.filter(member_no__startswith="O-").order_by("pk").values_list("member_no", "pk"))
    assert [number for number, _pk in members] == ["O-5", "O-3", "O-9", "O-1", "O-7"]
    accounts = Account.objects.filter(member__member_no__startswith="O-").order_by("pk")
    assert [account.member.member_no for account in accounts] == ["O-5", "O-3", "O-9", "O-1", "O-7"]


@pytest.mark.postgres
def test_a_dry_run_and_a_file_with_errors_draw_no_member_ids(legacy, program):
    def next_member_id() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT nextval(pg_get_serial_sequence('members_member', 'id'))")
            return cursor.fetchone()[0]

    before = next_member_id()
    legacy(csv_text("Q-1,Ann,A,,,,,,,,,,,,,,,,", "Q-2,Bob,B,,,,,,,,,,,,,,,,"), dry_run=True)
    legacy(csv_text("Q-1,Ann,A,,,,,,,,,,,,,,,,", "Q-2,Bob,B,,,,,,,,,,,,-5,,,,"))

    assert next_member_id() == before + 1


def test_the_number_of_queries_does_not_grow_with_the_number_of_rows(legacy, program):
    def queries_for(prefix: str, count: int) -> int:
        rows = [
            f"{prefix}{n},Ann,A,,{prefix.lower()}{n}@example.com,,,,,,fr,,,2020-01-01,10,Silver,,,yes"
            for n in range(count)
        ]
        with CaptureQueriesContext(connection) as captured:
            report = legacy(csv_text(*rows))
        assert report.ok and report.members_created == count, report.first_errors
        return len(captured)

    assert queries_for("F", 2) == queries_for("G", 40)


def test_phones_whose_digits_start_with_a_national_prefix_are_left_to_phonenumbers():
    # Belarus dials a national 8 that phonenumbers strips after +375 too, leaving an invalid number here,
    # while the digits as written would pass for a valid one
    assert normalised("+375 810 114 94 51") is None
    assert phonenumbers.is_valid_number(phonenumbers.PhoneNumber(country_code=375, national_number=8101149451))

    assert international_phone_e164("+375 810 114 94 51") is None
    assert international_phone_e164("+1 1650 253 0000") is None  # the same for +1 1…, which phonenumbers reads
    assert normalised("+1 1650 253 0000") == "+16502530000"  # as +1 650…


@pytest.mark.postgres
def test_an_import_on_a_connection_that_used_temporary_tables_before_still_imports(legacy, program, monkeypatch):
    # PostgreSQL refuses a new temp_buffers once the session has used temporary tables (a worker's later job)
    monkeypatch.setattr(legacy_loading, "TEMP_BUFFERS", "257MB")
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE an_earlier_job (n integer)")
        cursor.execute("INSERT INTO an_earlier_job VALUES (1)")

    report = legacy(csv_text("T-1,Ann,A,,,,,,,,,,,,10,,,,"))

    assert report.ok and report.members_created == 1, report.first_errors
    assert Account.objects.get(member__member_no="T-1").balance == 10
    with connection.cursor() as cursor:
        cursor.execute("SHOW temp_buffers")
        assert cursor.fetchone()[0] != "257MB"
