"""The staff import pages in a real browser: upload, the mapping with the file's first rows, the
check's figures, the errors beside their rows on a phone, and a progress bar that moves on its own."""

import pytest

from loyalty.legacy.runs import legacy_import_run
from loyalty.models import LegacyImport
from members.models import Member

PHONE = {"width": 390, "height": 844}
LEGACY = (
    "Kaart;Voornaam;Naam;Mail;Punten;Niveau;Sinds\n"
    "K-1;Anna;Peeters;anna@example.com;1200;Gold;03/02/2021\n"
    "K-2;Bram;Maës;;80;;\n"
    "K-3;Chloé;Dubois;chloe@example.com;450;Silver;14/07/2022\n"
)

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _upload(page, program, tmp_path, text):
    path = tmp_path / "export-old-system.csv"
    path.write_bytes(text.encode("cp1252"))
    page.goto(f"/staff/programs/{program.slug}/imports/")
    page.set_input_files("input[type=file]", str(path))
    page.get_by_role("button", name="Upload and preview").click()
    page.locator("table.mapping").wait_for()


def _map(page):
    for index, column in enumerate(["member_no", "first_name", "last_name", "email", "balance", "tier", "tier_since"]):
        page.select_option(f"#column-{index}", column)


def test_a_manager_maps_checks_and_imports_a_legacy_file(page, screenshot, sign_in, manager_user, program, tmp_path):
    sign_in(manager_user)
    _upload(page, program, tmp_path, LEGACY)

    mapping = page.locator("table.mapping").inner_text()
    assert "Kaart" in mapping and "K-1 · K-2 · K-3" in mapping and "Chloé" in mapping  # read as Windows-1252
    _map(page)
    screenshot("mapping")
    page.get_by_role("button", name="Save and check the file").click()

    status = page.locator("#import-status")
    assert "Checked: ready to import" in status.inner_text()
    assert "1,730" in status.inner_text()  # the points the import will post
    assert not Member.objects.filter(member_no="K-1").exists()
    screenshot("checked")
    page.get_by_role("button", name="Import now").click()

    assert "Imported" in page.locator("#import-status").inner_text()
    assert Member.objects.get(member_no="K-3").accounts.get().tier.name == "Silver"
    screenshot("imported")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_errors_show_beside_their_rows_on_a_phone(page, screenshot, sign_in, manager_user, program, tmp_path):
    sign_in(manager_user)
    _upload(page, program, tmp_path, LEGACY + "K-4;Dirk;Maes;dirk@;12,5;Diamond;31/02/2022\nK-1;Emma;Claes;;;;\n")
    _map(page)
    page.get_by_role("button", name="Save and check the file").click()

    errors = page.locator("table.errors tbody tr")
    assert errors.count() == 5
    text = page.locator("table.errors").inner_text()
    assert "Diamond" in text and "Row 2 has the same member number" in text
    assert page.get_by_role("link", name="Download every error (CSV)").is_visible()
    assert page.get_by_role("button", name="Import now").count() == 0
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert not Member.objects.filter(member_no__startswith="K-").exists()
    screenshot("errors")


def test_the_progress_bar_moves_while_a_worker_checks_the_file(
    page, screenshot, sign_in, manager_user, program, tmp_path
):
    sign_in(manager_user)
    _upload(page, program, tmp_path, LEGACY)
    item = LegacyImport.objects.get()
    item.mapping = {"Kaart": "member_no", "Naam": "last_name", "Punten": "balance"}
    item.status, item.phase, item.bytes_done = LegacyImport.Status.CHECKING, "reading", item.size // 2
    item.save()  # as a worker leaves it halfway through the file

    page.reload()
    bar = page.locator("#import-status [role=progressbar]")
    assert bar.get_attribute("aria-valuenow") == str(int(item.bytes_done / item.size * 80))  # reading: 80% of a check
    screenshot("reading")

    legacy_import_run(import_id=item.pk)  # the worker finishes

    page.locator("#import-status .badge:has-text('Checked')").wait_for(timeout=10_000)
    assert page.locator("#import-status [role=progressbar]").count() == 0
    screenshot("done")
