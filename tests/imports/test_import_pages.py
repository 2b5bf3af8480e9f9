"""The staff import pages: upload, map with a preview, check, see every error or import, tell the
members who came over; and who may do any of it."""

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from loyalty.models import LegacyImport
from members.models import Member

pytestmark = pytest.mark.django_db

LEGACY = "Kaart;Voornaam;Naam;Mail;Punten;Niveau;Optin\nK-1;Anna;Peeters;anna@example.com;1200;Gold;ja\nK-2;Bram;Maës;;80;;nee\n"
MAPPING = {"Kaart": "member_no", "Voornaam": "first_name", "Naam": "last_name", "Mail": "email", "Punten": "balance",
           "Niveau": "tier", "Optin": "marketing_consent"}  # fmt: skip


@pytest.fixture(autouse=True)
def _tasks_run_after_commit(django_capture_on_commit_callbacks, monkeypatch):
    """Tasks are queued on commit; here the test's transaction never commits, so every request's
    callbacks run as that request ends, as they would in production (eager Celery)."""
    from django.test import Client

    original = Client.post

    def post(self, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return original(self, *args, **kwargs)

    monkeypatch.setattr(Client, "post", post)


def _upload(client, program, text=LEGACY, name="export.csv"):
    file = SimpleUploadedFile(name, text.encode("cp1252"), content_type="text/csv")
    response = client.post(reverse("staff:imports", args=[program.slug]), {"file": file})
    assert response.status_code == 302, response.content.decode()[:2000]
    return LegacyImport.objects.latest("pk")


def _map_and_check(client, program, item, mapping=MAPPING, date_format=""):
    data = {f"column-{i}": mapping.get(header, "") for i, header in enumerate(item.headers)}
    data["date_format"] = date_format
    response = client.post(reverse("staff:import", args=[program.slug, item.pk]), data)
    assert response.status_code == 302
    item.refresh_from_db()
    return item


def test_a_manager_uploads_maps_checks_and_imports_a_legacy_file(client, manager_user, program):
    client.force_login(manager_user)
    item = _upload(client, program)
    assert (item.encoding, item.delimiter, item.headers[0]) == ("cp1252", ";", "Kaart")

    page = client.get(reverse("staff:import", args=[program.slug, item.pk])).content.decode()
    assert "K-1" in page and "anna@example.com" in page  # the first rows, beside each column

    item = _map_and_check(client, program, item)  # the check runs (eagerly here) at once
    assert item.status == LegacyImport.Status.CHECKED
    assert (item.rows, item.members_created, item.balances_posted, item.points_posted) == (2, 2, 2, 1280)
    assert not Member.objects.filter(member_no="K-1").exists()  # a check writes nothing

    client.post(reverse("staff:import_start", args=[program.slug, item.pk]))
    item.refresh_from_db()
    assert item.status == LegacyImport.Status.IMPORTED and item.created_by == manager_user
    account = Member.objects.get(member_no="K-1").accounts.get(program=program)
    assert (account.balance, account.tier.name) == (1200, "Gold")
    assert client.post(reverse("staff:import_start", args=[program.slug, item.pk])).status_code == 302
    assert Member.objects.filter(member_no__startswith="K-").count() == 2  # not twice


def test_an_import_needs_a_clean_check_first(client, manager_user, program):
    client.force_login(manager_user)
    item = _upload(client, program)
    response = client.post(reverse("staff:import_start", args=[program.slug, item.pk]), follow=True)
    assert "Check the file first" in response.content.decode()
    assert not Member.objects.filter(member_no="K-1").exists()


def test_errors_are_listed_beside_their_row_and_downloadable_and_nothing_is_written(client, manager_user, program):
    client.force_login(manager_user)
    item = _upload(client, program, LEGACY + "K-3;Cy;Claes;not-an-email;12,5;Diamond;\n")
    item = _map_and_check(client, program, item)

    assert item.status == LegacyImport.Status.INVALID and item.errors == 3
    page = client.get(reverse("staff:import", args=[program.slug, item.pk])).content.decode()
    assert "not-an-email" in page and "Diamond" in page and "Bronze, Silver, Gold, Platinum" in page
    report = client.get(reverse("staff:import_errors", args=[program.slug, item.pk]))
    text = b"".join(report.streaming_content).decode()
    assert text.splitlines()[0] == "row,column,value,message"
    assert {line.split(",")[1] for line in text.splitlines()[1:]} == {"Mail", "Punten", "Niveau"}
    assert not Member.objects.filter(member_no__startswith="K-").exists()
    # the page says what the import cannot do: no "Import now" after a check with errors
    assert reverse("staff:import_start", args=[program.slug, item.pk]) not in page


def test_the_next_file_of_a_program_starts_from_its_last_mapping(client, manager_user, program):
    client.force_login(manager_user)
    first = _upload(client, program)
    _map_and_check(client, program, first, date_format="%m/%d/%Y")
    second = _upload(client, program, name="export-2.csv")
    assert second.mapping == MAPPING and second.date_format == "%m/%d/%Y"


def test_a_mapping_without_member_number_or_email_is_refused_with_a_message(client, manager_user, program):
    client.force_login(manager_user)
    item = _upload(client, program)
    response = client.post(
        reverse("staff:import", args=[program.slug, item.pk]), {"column-1": "first_name"}, follow=True
    )
    assert "member number or an email column" in response.content.decode()
    item.refresh_from_db()
    assert item.status == LegacyImport.Status.UPLOADED


def test_imported_members_with_consent_are_told_by_name_once(client, manager_user, program, enrol, settings):
    settings.SITE_URL = "https://loyalty.example.com"
    client.force_login(manager_user)
    item = _map_and_check(client, program, _upload(client, program))
    client.post(reverse("staff:import_start", args=[program.slug, item.pk]))
    enrol(program, marketing_consent=True)  # enrolled at the counter: not told about a move
    mail.outbox.clear()

    client.post(reverse("staff:imports_tell", args=[program.slug]))

    assert [message.to for message in mail.outbox] == [["anna@example.com"]]  # Bram: no email, no consent
    body = mail.outbox[0].body
    assert "Anna" in body and "K-1" in body and "1,200" in body and "Gold" in body
    assert "https://loyalty.example.com/accounts/activate/" in body
    client.post(reverse("staff:imports_tell", args=[program.slug]))
    assert len(mail.outbox) == 1


@pytest.mark.parametrize("who", ["clerk_user", "analyst_user", "member_user"])
def test_clerks_analysts_and_members_are_refused_every_import_page(client, request, who, manager_user, program):
    client.force_login(manager_user)
    item = _upload(client, program)
    client.force_login(request.getfixturevalue(who))
    file = SimpleUploadedFile("x.csv", LEGACY.encode(), content_type="text/csv")
    for method, url, data in (
        ("get", reverse("staff:imports", args=[program.slug]), {}),
        ("post", reverse("staff:imports", args=[program.slug]), {"file": file}),
        ("get", reverse("staff:import", args=[program.slug, item.pk]), {}),
        ("post", reverse("staff:import", args=[program.slug, item.pk]), {"column-0": "member_no"}),
        ("post", reverse("staff:import_start", args=[program.slug, item.pk]), {}),
        ("get", reverse("staff:import_errors", args=[program.slug, item.pk]), {}),
        ("post", reverse("staff:imports_tell", args=[program.slug]), {}),
    ):
        assert getattr(client, method)(url, data).status_code == 403, url
    assert LegacyImport.objects.count() == 1


def test_a_file_is_reached_only_through_its_own_program(client, manager_user, program):
    from tests.factories import ProgramFactory

    client.force_login(manager_user)
    item = _upload(client, program)
    other = ProgramFactory(slug="other")
    assert client.get(reverse("staff:import", args=[other.slug, item.pk])).status_code == 404


def test_visitors_are_sent_to_sign_in(client, program):
    assert client.get(reverse("staff:imports", args=[program.slug])).url.startswith(reverse("account_login"))
