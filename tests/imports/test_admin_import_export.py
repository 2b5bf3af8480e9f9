"""Admin import/export of members, stores and rewards (django-import-export), through the real admin
URLs: a preview that shows every row, new, updated or invalid, with each error beside its row and
column; a confirm step that writes the whole file or nothing; exports a spreadsheet will not run as
formulas; and who may do any of it."""

import csv
import io

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from import_export.tmp_storages import TempFolderStorage

from members import services as member_services
from members.models import ConsentRecord, Member, Store
from members.roles import Role
from rewards.models import Reward
from tests.conftest import _with_totp
from tests.factories import MemberFactory, RewardFactory, StoreFactory

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/members/member/"
STORES = "/admin/members/store/"
REWARDS = "/admin/rewards/reward/"
MEMBER_COLUMNS = ["member_no", "first_name", "last_name", "company", "email", "phone", "street", "postal_code", "city",
                  "country", "region", "language", "member_type", "store", "marketing_consent", "status", "enrolled_at"]  # fmt: skip
EVERY_MEMBER_COLUMN = {f"memberresource_{column}": "on" for column in MEMBER_COLUMNS}
HEADER = "member_no,first_name,last_name,email,phone,store,language,marketing_consent"


def csv_file(*rows: str, header: str = HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def preview(client, admin_url: str, text: str, name: str = "upload.csv"):
    upload = SimpleUploadedFile(name, text.encode("utf-8"), content_type="text/csv")
    return client.post(f"{admin_url}import/", {"import_file": upload, "format": "0", "resource": "0"})


def confirm(client, admin_url: str, previewed):
    """Press "Confirm import" on a preview page (the form's hidden fields, as the browser sends them)."""
    fields = previewed.context["confirm_form"].initial
    return client.post(f"{admin_url}process_import/", {**fields, "confirm": "Confirm import"}, follow=True)


def confirm_unchecked(client, admin_url: str, text: str):
    """Post a file straight to the confirm step, as a forged or replayed request would: the file is put
    where the preview puts it, under the name the confirm form carries."""
    stored = TempFolderStorage(encoding="utf-8-sig", read_mode="r")
    stored.save(text.encode("utf-8"))
    fields = {"import_file_name": stored.name, "original_file_name": "members.csv", "format": "0", "resource": "0"}
    return client.post(f"{admin_url}process_import/", {**fields, "confirm": "Confirm import"}, follow=True)


def cell(response, row_number: int, column: str):
    """The preview's cell of a row (numbered as in a spreadsheet) and column."""
    found = response.context["preview"]
    row = next(row for row in found.rows if row.number == row_number)
    return row, row.cells[found.columns.index(column)]


@pytest.fixture
def bru(db):
    return StoreFactory(code="BRU-01", name="Brussels Centre")


@pytest.fixture
def manager(client, manager_user):
    client.force_login(manager_user)
    return manager_user


# --- members: preview, confirm, all or nothing ----------------------------------------------------------


def test_a_valid_file_is_previewed_without_writing_then_confirmed_and_creates_the_members(client, manager, bru):
    text = csv_file(
        ",Anna,Peeters,anna@example.com,0470 12 34 56,bru-01,FR,yes",
        "LG-000123,Bram,Maes,,,,,",
    )

    previewed = preview(client, MEMBERS, text)

    assert previewed.status_code == 200
    page = previewed.content.decode()
    assert "Confirm import" in page and "Nothing was written" not in page
    assert [(row.number, row.kind) for row in previewed.context["preview"].rows] == [(2, "new"), (3, "new")]
    assert not Member.objects.exists()  # a preview writes nothing

    done = confirm(client, MEMBERS, previewed)

    assert done.redirect_chain[-1][0] == MEMBERS
    assert "Import finished: 2 new" in done.content.decode()
    anna = Member.objects.get(email="anna@example.com")
    assert (str(anna.phone), anna.home_store, anna.language) == ("+32470123456", bru, "fr")
    assert anna.member_no.startswith("8") and len(anna.member_no) == 10  # issued, with its check digit
    assert (anna.enrolment_channel, anna.enrolled_by, anna.marketing_consent) == ("import", manager, True)
    assert ConsentRecord.objects.get(member=anna).channel == "import"
    assert Member.objects.get(member_no="LG-000123").last_name == "Maes"  # a legacy number kept as it is
    assert LogEntry.objects.filter(user=manager).count() == 2


@pytest.mark.parametrize(
    ("bad_row", "column", "message"),
    [
        ("LG-2,Bram,Maes,bram@example,,,,", "email", "“bram@example” is not an email address."),
        ("LG-2,Bram,Maes,,12345,,,", "phone", "is not a valid phone number"),
        ("LG-2,Bram,Maes,,,GNT-09,,", "store", "No store has the code “GNT-09”."),
        ("LG-2,Bram,Maes,,,,,perhaps", "marketing_consent", "Write yes or no (or 1 or 0)."),
        ("LG-2,Bram,Maes,,,,xx,", "language", "Unknown language “xx”."),
    ],
)
def test_one_invalid_row_shows_its_error_beside_its_row_and_column_and_offers_no_confirm(
    client, manager, bru, bad_row, column, message
):
    text = csv_file("LG-1,Anna,Peeters,anna@example.com,,BRU-01,,", bad_row, "LG-3,Chloé,Dubois,,,,,")

    previewed = preview(client, MEMBERS, text)

    page = previewed.content.decode()
    assert "Nothing was written: 1 row has an error" in page
    assert previewed.context.get("confirm_form") is None and 'name="confirm"' not in page
    row, at_fault = cell(previewed, 3, column)  # the header is row 1
    assert row.kind == "invalid" and any(message in error for error in at_fault.errors)
    assert [r.kind for r in previewed.context["preview"].rows] == ["new", "invalid", "new"]
    assert not Member.objects.exists()


def test_a_file_with_an_invalid_row_writes_nothing_even_when_posted_to_the_confirm_step(client, manager, bru):
    text = csv_file("LG-1,Anna,Peeters,anna@example.com,,BRU-01,,", "LG-2,Bram,Maes,,0470,,,")

    refused = confirm_unchecked(client, MEMBERS, text)

    page = refused.content.decode()
    assert "Nothing was written: 1 row has an error" in page and "Import finished" not in page
    row, phone = cell(refused, 3, "phone")
    assert row.kind == "invalid" and "is not a valid phone number" in phone.errors[0]
    assert not Member.objects.exists()  # not even the valid first row
    assert not LogEntry.objects.exists()


def test_confirm_writes_nothing_when_a_row_became_invalid_after_the_preview(client, manager):
    text = csv_file("LG-1,Anna,Peeters,anna@example.com,,,,", "LG-2,Bram,Maes,bram@example.com,,,,")
    previewed = preview(client, MEMBERS, text)
    assert previewed.context["confirm_form"] is not None
    member_services.member_create(last_name="Other", email="bram@example.com")  # meanwhile, at a desk

    refused = confirm(client, MEMBERS, previewed)

    assert "Nothing was written" in refused.content.decode()
    assert cell(refused, 3, "email")[1].errors == ["A member with this email already exists."]
    assert not Member.objects.filter(member_no__in=["LG-1", "LG-2"]).exists()


def test_a_known_member_number_updates_that_member_and_an_empty_cell_keeps_what_they_have(client, manager, bru):
    member = member_services.member_create(
        member_no="LG-7", first_name="Anna", last_name="Peeters", email="anna@example.com", phone="0470 11 22 33"
    )
    text = csv_file("LG-7,Anna,Peeters-Claes,,,BRU-01,nl,1")

    previewed = preview(client, MEMBERS, text)
    row, last_name = cell(previewed, 2, "last_name")
    assert row.kind == "update" and "Claes" in last_name.value
    confirm(client, MEMBERS, previewed)

    member.refresh_from_db()
    assert (member.last_name, member.home_store, member.language) == ("Peeters-Claes", bru, "nl")
    assert (member.email, str(member.phone)) == ("anna@example.com", "+32470112233")  # empty cells kept them
    assert member.marketing_consent is True
    assert member.consent_records.first().channel == "import"
    assert Member.objects.count() == 1


def test_an_update_is_checked_like_an_enrolment(client, manager):
    member_services.member_create(member_no="LG-7", last_name="Peeters", email="anna@example.com")
    member_services.member_create(member_no="LG-8", last_name="Maes", email="bram@example.com")

    previewed = preview(client, MEMBERS, csv_file("LG-8,,,anna@example.com,,,,"))

    assert cell(previewed, 2, "email")[1].errors == ["A member with this email already exists."]
    assert Member.objects.get(member_no="LG-8").email == "bram@example.com"


def test_a_member_number_twice_in_the_file_is_refused_on_its_second_row(client, manager):
    previewed = preview(client, MEMBERS, csv_file("LG-1,Anna,Peeters,,,,,", "LG-1,Anna,Claes,,,,,"))

    row, number = cell(previewed, 3, "member_no")
    assert row.kind == "invalid"
    assert number.errors == ["Row 2 of this file is for the same member: keep one row for it."]


def test_a_number_shaped_like_an_issued_one_needs_its_check_digit(client, manager):
    previewed = preview(client, MEMBERS, csv_file("8123456789,Anna,Peeters,,,,,"))

    assert "check digit is wrong" in cell(previewed, 2, "member_no")[1].errors[0]


def test_a_file_without_the_member_number_column_is_refused_with_what_to_add(client, manager):
    previewed = preview(client, MEMBERS, csv_file("Anna,Peeters", header="first_name,last_name"))

    page = previewed.content.decode()
    assert "The file has no “member_no” column" in page and "Traceback" not in page
    assert previewed.context.get("confirm_form") is None


def test_an_anonymised_member_is_not_filled_in_again(client, manager):
    member = member_services.member_create(member_no="LG-9", last_name="Gone", email="gone@example.com")
    member_services.member_anonymise(member=member)

    previewed = preview(client, MEMBERS, csv_file("LG-9,Back,Again,back@example.com,,,,"))

    row = cell(previewed, 2, "email")[0]
    assert row.kind == "invalid" and "anonymised" in row.errors[0]


# --- export -----------------------------------------------------------------------------------------


def _export(client, admin_url: str, resource: str, columns: list[str]) -> list[dict]:
    data = {"format": "0", "resource": "0", **{f"{resource}_{column}": "on" for column in columns}}
    response = client.post(f"{admin_url}export/", data)
    assert response.status_code == 200, response.content.decode()[:2000]
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def test_the_export_escapes_every_cell_a_spreadsheet_would_run_as_a_formula(client, manager):
    MemberFactory(
        member_no="LG-1",
        first_name="=HYPERLINK(1)",
        last_name="+SUM(A1)",
        company="-2+3",
        city="@cmd",
        street="\tTabbed",
        postal_code="\r1000",
        region="Brussels",
        phone="+32470123456",
    )
    columns = ["member_no", "first_name", "last_name", "company", "city", "street", "postal_code", "region", "phone"]

    (row,) = _export(client, MEMBERS, "memberresource", columns)

    assert row["first_name"] == "'=HYPERLINK(1)"
    assert row["last_name"] == "'+SUM(A1)"
    assert row["company"] == "'-2+3"
    assert row["city"] == "'@cmd"
    assert row["street"] == "'\tTabbed"
    assert row["postal_code"] == "'\r1000"
    assert row["phone"] == "'+32470123456"
    assert (row["member_no"], row["region"]) == ("LG-1", "Brussels")  # harmless cells as they are


def test_an_exported_file_imports_again_without_a_change(client, manager, bru):
    member_services.member_create(
        member_no="LG-1", first_name="Anna", last_name="Peeters", phone="0470 12 34 56", home_store=bru
    )
    exported = client.post(f"{MEMBERS}export/", {"format": "0", "resource": "0", **EVERY_MEMBER_COLUMN})
    exported = exported.content.decode("utf-8-sig")
    assert "'+32470123456" in exported

    previewed = preview(client, MEMBERS, exported)
    confirm(client, MEMBERS, previewed)

    member = Member.objects.get()
    assert (str(member.phone), member.home_store, member.last_name) == ("+32470123456", bru, "Peeters")


# --- stores and rewards -------------------------------------------------------------------------------


def test_stores_are_opened_and_corrected_by_their_code(client, manager):
    StoreFactory(code="BRU-01", name="Brussels", city="Brussels")
    text = "code,name,region,city\nBRU-01,Brussels Centre,Brussels,Bruxelles\nGNT-01,Ghent,Flanders,Gent\n"

    previewed = preview(client, STORES, text)
    assert [row.kind for row in previewed.context["preview"].rows] == ["update", "new"]
    confirm(client, STORES, previewed)

    assert Store.objects.get(code="BRU-01").name == "Brussels Centre"
    assert Store.objects.get(code="GNT-01").region == "Flanders"


def test_a_store_row_with_a_bad_code_writes_no_store(client, manager):
    text = "code,name\nGNT-01,Ghent\nANT 01,Antwerp\n"

    previewed = preview(client, STORES, text)

    row, code = cell(previewed, 3, "code")
    assert row.kind == "invalid" and code.errors  # a code is letters, digits and dashes (printed on receipts)
    assert not Store.objects.filter(code="GNT-01").exists()


def test_rewards_are_added_by_program_and_name_and_changed_by_id(client, manager, program):
    voucher = RewardFactory(program=program, name="EUR 5 voucher", points_cost=100)
    text = (
        "id,program,name,kind,points_cost,value,fulfilment,min_tier,regions,is_active\n"
        f"{voucher.pk},blue,EUR 5 voucher,voucher_amount,120,5,voucher,,,yes\n"
        ',blue,Workshop,workshop,1500,,manual,Gold,"Brussels, Flanders",yes\n'
    )

    previewed = preview(client, REWARDS, text)
    assert [row.kind for row in previewed.context["preview"].rows] == ["update", "new"]
    confirm(client, REWARDS, previewed)

    voucher.refresh_from_db()
    assert voucher.points_cost == 120
    workshop = Reward.objects.get(name="Workshop")
    assert (workshop.min_tier.name, workshop.fulfilment) == ("Gold", "manual")
    assert workshop.regions == ["Brussels", "Flanders"]
    assert voucher.history.first().history_user == manager  # the audit trail still records who changed it


def test_a_reward_row_refused_by_the_catalogue_rules_names_the_column_to_fix(client, manager, program):
    text = (
        "program,name,kind,points_cost,value,fulfilment\n"
        "blue,Tote bag,merchandise,300,,manual\n"
        "blue,EUR 10 voucher,voucher_amount,200,,voucher\n"
        "nowhere,Cap,merchandise,abc,,manual\n"
    )

    previewed = preview(client, REWARDS, text)

    assert cell(previewed, 3, "value")[1].errors == ["Give the voucher's value."]
    assert cell(previewed, 4, "program")[1].errors == ["No program has the slug “nowhere”."]
    assert "is not a whole number" in cell(previewed, 4, "points_cost")[1].errors[0]
    assert not Reward.objects.exists()


# --- who may import and export --------------------------------------------------------------------------


@pytest.mark.parametrize("admin_url", [MEMBERS, STORES, REWARDS])
def test_an_analyst_may_export_but_never_import(client, analyst_user, admin_url):
    client.force_login(analyst_user)

    changelist = client.get(admin_url).content.decode()

    assert f"{admin_url}import/" not in changelist and f"{admin_url}export/" in changelist  # the buttons
    assert client.get(f"{admin_url}import/").status_code == 403
    assert client.post(f"{admin_url}process_import/", {"import_file_name": "x"}).status_code == 403
    assert client.get(f"{admin_url}export/").status_code == 200


def test_an_analyst_posting_a_member_file_writes_nothing(client, analyst_user):
    client.force_login(analyst_user)

    response = preview(client, MEMBERS, csv_file("LG-1,Anna,Peeters,,,,,"))

    assert response.status_code == 403
    assert not Member.objects.exists()


def test_a_clerk_reaches_neither_import_nor_export(client, clerk_user):
    client.force_login(clerk_user)

    # Not staff: the admin sends them to its sign-in, which refuses a signed-in user without access.
    assert client.get(f"{MEMBERS}import/", follow=True).status_code == 403
    assert client.get(f"{MEMBERS}export/", follow=True).status_code == 403
    assert client.post(f"{MEMBERS}process_import/", follow=True).status_code == 403


def test_importing_members_also_needs_the_legacy_import_permission(client, db):
    # Can correct members and run the store import, but was not given the member import.
    user = _with_totp(
        member_services.staff_user_create(email="sam.staff@example.com", password="x-Secret-123", role=Role.ANALYST)
    )
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["change_member", "change_store"], content_type__app_label="members")
    )
    client.force_login(user)

    assert client.get(f"{MEMBERS}import/").status_code == 403
    assert client.get(f"{STORES}import/").status_code == 200


def test_a_staff_user_without_the_view_permission_cannot_export(client, db):
    user = _with_totp(
        member_services.staff_user_create(email="sam.staff@example.com", password="x-Secret-123", role=Role.ANALYST)
    )
    user.groups.clear()
    user.user_permissions.add(Permission.objects.get(codename="view_store"))
    client.force_login(user)

    assert client.post(f"{MEMBERS}export/", {"format": "0", "resource": "0"}).status_code == 403
    assert client.post(f"{STORES}export/", {"format": "0", "resource": "0"}).status_code == 200
