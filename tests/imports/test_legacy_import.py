import datetime

from django.utils import timezone

from loyalty.models import LedgerEntry
from members.models import Member
from tests.imports.conftest import csv_text


def test_a_canonical_file_imports_members_accounts_balances_and_tiers(legacy, program):
    report = legacy(
        csv_text(
            "L-001,Anna,Peeters,,anna@example.com,0470 12 34 56,Rue Neuve 1,1000,Brussels,Brussels,fr,consumer,,"
            "2019-03-04,1200,Gold,2023-05-06,,yes",
            "L-002,Bram,Janssens,,,,,,,,nl,,,04/03/2020,0,,,,no",
        )
    )

    assert report.ok, report.first_errors
    assert (report.members_created, report.accounts_opened, report.balances_posted, report.points_posted) == (
        2,
        2,
        1,
        1200,
    )
    anna = Member.objects.get(member_no="L-001")
    assert anna.phone == "+32470123456" and anna.language == "fr" and anna.marketing_consent
    account = anna.accounts.get(program=program)
    assert account.balance == 1200 and account.tier.name == "Gold"
    assert timezone.localtime(account.tier_since).date() == datetime.date(2023, 5, 6)
    entry = account.entries.get()
    assert entry.kind == LedgerEntry.Kind.OPENING_BALANCE and entry.remaining == 1200
    bram = Member.objects.get(member_no="L-002")
    assert bram.accounts.get().tier.name == "Bronze"
    assert timezone.localtime(bram.enrolled_at).date() == datetime.date(2020, 3, 4)


# --- reading files as they come ---------------------------------------------------------------------

NAMES_HEADER = "member_no;first_name;last_name;city;balance"
NAMES_ROW = "L-7;Françoise;Dupré-Zoë;Liège;15"


def _names(legacy, content, **options):
    report = legacy(content, **options)
    assert report.ok, report.first_errors
    member = Member.objects.get(member_no="L-7")
    return report, (member.first_name, member.last_name, member.city)


def test_utf8_with_and_without_bom_utf16_and_windows_1252_read_the_same_names(legacy):
    text = f"{NAMES_HEADER}\r\n{NAMES_ROW}\r\n"
    expected = ("Françoise", "Dupré-Zoë", "Liège")
    for data, encoding in (
        (text.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig"),
        (text.encode("utf-16"), "utf-16"),  # with its BOM
        (text.encode("utf-16-le"), "utf-16-le"),  # without
        (text.encode("cp1252"), "cp1252"),
    ):
        report, names = _names(legacy, data)
        assert names == expected, encoding
        assert report.format.encoding == encoding
        Member.objects.filter(member_no="L-7").update(first_name="x")  # the next file updates it back


def test_a_latin1_file_with_a_byte_windows_1252_leaves_undefined_still_reads(legacy):
    data = f"{NAMES_HEADER}\n{NAMES_ROW}\n".encode("latin-1").replace(b"15", b"15\x81")
    report = legacy(data)
    assert report.format.encoding == "latin-1"
    assert [error.column for error in report.first_errors] == ["balance"]  # "15\x81" is no number: told, not lost


def test_comma_semicolon_and_tab_delimiters_are_found_from_the_header(legacy):
    for delimiter, name in ((",", "comma"), (";", "semicolon"), ("\t", "tab")):
        text = "\n".join([NAMES_HEADER.replace(";", delimiter), NAMES_ROW.replace(";", delimiter)])
        report, names = _names(legacy, text)
        assert report.format.delimiter == delimiter and report.format.delimiter_name == name
        assert names == ("Françoise", "Dupré-Zoë", "Liège")


def test_quoted_fields_keep_delimiters_quotes_and_newlines(legacy):
    text = 'member_no,last_name,company,street\nL-9,"Smith, Jr.","The ""Best"" Co","Rue Haute 5\nBoîte 3"\nL-10,Doe,,\n'
    report = legacy(text)
    assert report.ok and report.rows == 2
    member = Member.objects.get(member_no="L-9")
    assert (member.last_name, member.company, member.street) == ("Smith, Jr.", 'The "Best" Co', "Rue Haute 5\nBoîte 3")
    # the record after the multi-line one is row 3, as a spreadsheet counts it
    bad = legacy('member_no,last_name,email\nL-9,"Smith\nJr.",x\nL-11,Doe,not-an-email\n')
    assert [(error.row, error.column) for error in bad.first_errors] == [(2, "email"), (3, "email")]


def test_dates_iso_day_first_with_slashes_or_dashes_and_a_format_of_the_mapping(legacy):
    rows = ["A1,Ann,2021-02-03", "A2,Bob,03/02/2021", "A3,Cy,03-02-2021", "A4,Di,3.2.2021"]
    report = legacy("member_no,last_name,enrolled_on\n" + "\n".join(rows))
    assert report.ok, report.first_errors
    days = {timezone.localtime(m.enrolled_at).date() for m in Member.objects.filter(member_no__startswith="A")}
    assert days == {datetime.date(2021, 2, 3)}

    american = legacy(
        "member_no,last_name,enrolled_on\nB1,Eve,02/03/2021\nB2,Fay,2021-02-03\n",
        mapping={"date_format": "%m/%d/%Y"},
    )
    assert american.ok
    days = {timezone.localtime(m.enrolled_at).date() for m in Member.objects.filter(member_no__startswith="B")}
    assert days == {datetime.date(2021, 2, 3)}


def test_balances_with_thousands_separators_and_a_decimal_comma_are_whole_points(legacy, program):
    rows = ["C1,Ann,1200", 'C2,Bob,"1 200"', 'C3,Cy,"1.200"', 'C4,Di,"1200,00"', "C5,Ed,1200.0", 'C6,Fi,"1.200,00"']
    report = legacy("member_no,last_name,balance\n" + "\n".join(rows))
    assert report.ok, report.first_errors
    balances = set(program.accounts.values_list("balance", flat=True))
    assert balances == {1200}


# --- every row checked; any error and nothing is written --------------------------------------------


def _snapshot():
    from loyalty.models import Account, TierChange
    from members.models import ConsentRecord

    return (
        list(Member.objects.order_by("pk").values_list("pk", "member_no", "first_name", "city", "email", "phone")),
        list(Account.objects.order_by("pk").values_list("pk", "balance", "tier_id", "tier_since")),
        LedgerEntry.objects.count(),
        TierChange.objects.count(),
        ConsentRecord.objects.count(),
    )


def test_every_kind_of_bad_cell_is_reported_with_row_column_and_value_and_nothing_is_written(legacy, store):
    good = f"G-1,Good,Row,,good@example.com,,,,,,,,{store.code},,10,,,,"
    rows = [
        good,
        "E-1,,,,,,,,,,,,,,,,,,",  # no name at all
        "E-2,Ann,X,,not-an-email,,,,,,,,,,,,,,",
        "E-3,Ann,X,,,12,,,,,,,,,,,,,",
        f"{'N' * 33},Ann,X,,,,,,,,,,,,,,,,",
        "E-5,Ann,X,,,,,,,,,,,,,Diamond,,,",
        "E-6,Ann,X,,,,,,,,,,,,-5,,,,",
        "E-7,Ann,X,,,,,,,,,,,,12.5,,,,",
        "E-8,Ann,X,,,,,,,,,,,31/02/2020,,,,,",
        "E-9,Ann,X,,,,,,,,,,,,,,2999-01-01,,",
        "E-10,Ann,X,,,,,,,,,,NOPE,,,,,,",
        "E-11,Ann,X,,,,,,,,,plumber,,,,,,,",
        "E-12,Ann,X,,,,,,,,de,,,,,,,,",
        "E-13,Ann,X,,,,,,,,,,,,,,,,maybe",
        "E-14,Ann,X,,,,,,,,,,,,5,,,2001-01-01,",
        ",Ann,X,,,,,,,,,,,,,,,,",  # neither member number nor email
    ]
    before = _snapshot()

    report = legacy(csv_text(*rows))

    assert not report.ok and report.members_created == 0
    found = {(error.row, error.column) for error in report.first_errors}
    assert found == {
        (3, "last_name"),
        (4, "email"),
        (5, "phone"),
        (6, "member_no"),
        (7, "tier"),
        (8, "balance"),
        (9, "balance"),
        (10, "enrolled_on"),
        (11, "tier_since"),
        (12, "store"),
        (13, "member_type"),
        (14, "language"),
        (15, "marketing_consent"),
        (16, "points_expire_on"),
        (17, "member_no"),
    }
    messages = {error.row: error.message for error in report.first_errors}
    assert "Bronze, Silver, Gold, Platinum" in messages[7]  # says what the tiers are
    assert "31/12/2024" in messages[10] and "consumer" in messages[13] and "en, fr, nl" in messages[14]
    assert _snapshot() == before  # the good row was not written either


def test_duplicates_inside_the_file_name_the_first_row(legacy):
    report = legacy(
        csv_text(
            "D-1,Ann,A,,ann@example.com,+32470000001,,,,,,,,,,,,,",
            "D-2,Bob,B,,ANN@example.com,,,,,,,,,,,,,,",
            "D-1,Cy,C,,,,,,,,,,,,,,,,",
            "D-4,Di,D,,,+32 470 00 00 01,,,,,,,,,,,,,",
        )
    )
    assert not report.ok
    assert [(e.row, e.column, e.message) for e in report.first_errors] == [
        (4, "member_no", "Row 2 has the same member number: a member appears once in a file."),
        (3, "email", "Row 2 has the same email: a member appears once in a file."),
        (5, "phone", "Row 2 has the same phone: a member appears once in a file."),
    ]
    assert not Member.objects.filter(member_no__startswith="D-").exists()


def test_emails_and_phones_of_other_members_and_closed_members_are_refused(legacy, enrol, program):
    enrol(program, member_no="P-1", email="taken@example.com", phone="+32470999999")
    closed = enrol(program, member_no="P-2").member
    Member.objects.filter(pk=closed.pk).update(status=Member.Status.CLOSED)

    report = legacy(
        csv_text(
            "N-1,Ann,A,,Taken@Example.com,,,,,,,,,,,,,,",
            "N-2,Bob,B,,,0470 99 99 99,,,,,,,,,,,,,",
            "P-2,Cy,C,,,,,,,,,,,,,,,,",
        )
    )

    assert [(e.row, e.column) for e in report.first_errors] == [(4, "member_no"), (2, "email"), (3, "phone")]
    assert "P-1" in report.first_errors[1].message and "closed" in report.first_errors[0].message


def test_a_mapping_file_brings_legacy_headers_to_columns(legacy, program):
    text = "N° carte;Prénom;Nom;Courriel;Solde;Niveau;Depuis;Inutile\n00042;Zoé;Martin;zoe@example.com;350;silver;01/06/2022;x\n"
    report = legacy(
        text,
        encoding="cp1252",
        mapping={
            "N° carte": "member_no",
            "Prénom": "first_name",
            "Nom": "last_name",
            "Courriel": "email",
            "Solde": "balance",
            "Niveau": "tier",
            "Depuis": "tier_since",
        },
    )
    assert report.ok, report.first_errors
    assert report.ignored_headers == ["Inutile"]
    account = Member.objects.get(member_no="00042").accounts.get(program=program)  # legacy number kept as is
    assert (account.balance, account.tier.name) == (350, "Silver")


def test_a_file_without_member_number_or_email_column_is_refused_before_reading(legacy):
    import pytest

    from loyalty.core.exceptions import ApplicationError

    with pytest.raises(ApplicationError, match="member number or an email column"):
        legacy("first_name,last_name\nAnn,A\n")
    with pytest.raises(ApplicationError, match="not a column"):
        legacy("card,last_name\n1,A\n", mapping={"card": "member_number"})


# --- idempotent, updates, existing accounts ----------------------------------------------------------


def test_importing_the_same_file_again_changes_nothing(legacy, program):
    text = csv_text(
        "R-1,Ann,A,,ann@example.com,0470 11 22 33,,,,,,,,2020-01-01,500,Gold,2021-01-01,,yes",
        ",Bob,B,,bob@example.com,,,,,,,,,,80,,,,",  # no number: the portal issues one, found again by email
    )
    first = legacy(text)
    assert first.ok and first.members_created == 2
    issued = Member.objects.get(email="bob@example.com").member_no
    from members.numbers import check_digit_ok, looks_issued

    assert looks_issued(issued) and check_digit_ok(issued)
    before = _snapshot()

    again = legacy(text)

    assert again.ok
    assert (again.members_created, again.members_updated, again.accounts_opened, again.balances_posted) == (0, 0, 0, 0)
    assert again.members_unchanged == 2
    assert _snapshot() == before


def test_a_later_file_updates_given_cells_and_keeps_blank_ones(legacy):
    legacy(csv_text("U-1,Ann,A,,ann@example.com,,Rue 1,1000,Brussels,,,,,,,,,,no"))
    report = legacy("member_no,city,street,marketing_consent\nU-1,Ghent,,yes\n")
    assert report.ok and report.members_updated == 1
    member = Member.objects.get(member_no="U-1")
    assert (member.city, member.street, member.marketing_consent) == ("Ghent", "Rue 1", True)
    assert list(member.consent_records.values_list("granted", flat=True)) == [True, False]


def test_a_different_balance_for_an_imported_member_is_an_error_not_a_second_opening_balance(legacy, program):
    legacy(csv_text("B-1,Ann,A,,,,,,,,,,,,100,,,,"))
    before = _snapshot()
    report = legacy(csv_text("B-1,Ann,A,,,,,,,,,,,,150,,,,"))
    assert [(e.row, e.column, e.value) for e in report.first_errors] == [(2, "balance", "150")]
    assert "100 points" in report.first_errors[0].message
    assert _snapshot() == before


def test_a_member_enrolled_in_the_portal_gets_the_opening_balance_and_a_higher_legacy_tier(legacy, enrol, program):
    account = enrol(program, member_no="X-1", email="x@example.com")
    report = legacy(csv_text("X-1,,,,,,,,,,,,,,700,Gold,2022-02-02,,"))
    assert report.ok and (report.accounts_opened, report.tiers_raised, report.balances_posted) == (0, 1, 1)
    account.refresh_from_db()
    assert account.balance == 700 and account.tier.name == "Gold"
    change = account.tier_changes.latest("pk")
    assert (change.from_tier.name, change.to_tier.name, change.reason) == ("Bronze", "Gold", "import")
    # a lower legacy tier leaves the portal's tier alone
    legacy(csv_text("X-1,,,,,,,,,,,,,,700,Silver,,,"))
    account.refresh_from_db()
    assert account.tier.name == "Gold"


def test_opening_balances_expire_by_the_column_or_by_the_programs_policy(legacy, program):
    program.expiry_policy, program.expiry_months = "months_after_earn", 24
    program.save()
    legacy(csv_text("Y-1,Ann,A,,,,,,,,,,,,100,,,2027-06-30,", "Y-2,Bob,B,,,,,,,,,,,,100,,,,"))
    by_column = LedgerEntry.objects.get(account__member__member_no="Y-1")
    by_policy = LedgerEntry.objects.get(account__member__member_no="Y-2")
    assert timezone.localtime(by_column.expires_at) == timezone.make_aware(datetime.datetime(2027, 7, 1))
    expected = timezone.now() + datetime.timedelta(days=730)
    assert abs(by_policy.expires_at - expected) < datetime.timedelta(days=2)


def test_the_opening_balance_is_explained_in_the_members_language(legacy):
    legacy(csv_text("Z-1,Ann,A,,,,,,,,fr,,,,10,,,,", "Z-2,Bob,B,,,,,,,,nl,,,,10,,,,", "Z-3,Cy,C,,,,,,,,,,,,10,,,,"))
    reasons = dict(LedgerEntry.objects.values_list("account__member__member_no", "reason"))
    assert len(set(reasons.values())) == 3
    assert reasons["Z-3"] == "Opening balance brought over from the previous program"


def test_a_dry_run_reports_what_would_happen_and_writes_nothing(legacy):
    before = _snapshot()
    report = legacy(csv_text("W-1,Ann,A,,,,,,,,,,,,10,,,,", "W-2,Bob,B,,,,,,,,,,,,0,,,,"), dry_run=True)
    assert report.ok and report.dry_run
    assert (report.members_created, report.accounts_opened, report.balances_posted, report.points_posted) == (
        2,
        2,
        1,
        10,
    )
    assert _snapshot() == before


def test_imported_tiers_are_kept_for_a_full_window_after_the_import(legacy, program):
    legacy(csv_text("T-1,Ann,A,,,,,,,,,,,,,Platinum,2015-01-01,,"))
    account = Member.objects.get(member_no="T-1").accounts.get()
    assert account.tier_review_at > timezone.now() + datetime.timedelta(days=360)
