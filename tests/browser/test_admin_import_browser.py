"""The admin's member import in a real browser: a file with an invalid row is previewed with each
error under its cell and no confirm button; the corrected file is previewed and confirmed."""

import pytest

from members import services as member_services
from members.models import Member
from tests.factories import StoreFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HEADER = "member_no,first_name,last_name,email,phone,store,marketing_consent\n"
GOOD = "LG-101,Anna,Peeters,anna@example.com,0470 12 34 56,BRU-01,yes\n"
UPDATE = "LG-102,Bram,Maes-Claes,,,BRU-01,no\n"
BAD = "LG-103,Chloé,Dubois,chloe@example,0470,GNT-09,perhaps\n"
FIXED = "LG-103,Chloé,Dubois,chloe@example.com,0470 98 76 54,BRU-01,no\n"


def _upload(page, tmp_path, text):
    path = tmp_path / "members.csv"
    path.write_text(text, encoding="utf-8")
    page.goto("/admin/members/member/")
    page.get_by_role("link", name="Import", exact=True).click()
    page.set_input_files("input[type=file]", str(path))
    page.get_by_role("button", name="Submit").click()
    page.locator("#import-preview").wait_for()


def test_an_invalid_row_is_shown_with_its_errors_and_the_corrected_file_is_imported(
    page, screenshot, sign_in, manager_user, tmp_path
):
    StoreFactory(code="BRU-01", name="Brussels Centre")
    member_services.member_create(member_no="LG-102", first_name="Bram", last_name="Maes", email="bram@example.com")
    sign_in(manager_user)

    _upload(page, tmp_path, HEADER + GOOD + UPDATE + BAD)

    assert "Nothing was written: 1 row has an error" in page.get_by_role("alert").inner_text()
    assert page.get_by_role("button", name="Confirm import").count() == 0
    invalid = page.locator("tr#row-4")
    assert invalid.locator("td.has-error").count() == 4  # email, phone, store and consent, each under its cell
    text = invalid.inner_text()
    assert "“chloe@example” is not an email address." in text and "No store has the code “GNT-09”." in text
    assert "is not a valid phone number" in text and "Write yes or no (or 1 or 0)." in text
    assert page.locator("tr#row-2 .row-kind").inner_text() == "New"
    assert page.locator("tr#row-3 .row-kind").inner_text() == "Update"
    screenshot("preview")
    assert not Member.objects.filter(member_no__in=["LG-101", "LG-103"]).exists()
    assert Member.objects.get(member_no="LG-102").last_name == "Maes"

    _upload(page, tmp_path, HEADER + GOOD + UPDATE + FIXED)
    page.get_by_role("button", name="Confirm import").click()

    page.wait_for_url("**/admin/members/member/")
    assert "Import finished: 2 new, 1 updated" in page.content()
    assert Member.objects.get(member_no="LG-103").email == "chloe@example.com"
    assert Member.objects.get(member_no="LG-102").last_name == "Maes-Claes"
