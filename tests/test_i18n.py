import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("language", "expected"),
    [("en", "Join the program"), ("fr", "Rejoindre le programme"), ("nl", "Word lid van het programma")],
)
def test_the_language_switcher_changes_the_page_text(client, language, expected):
    response = client.post(reverse("set_language"), {"language": language, "next": "/"}, follow=True)

    assert response.redirect_chain[-1][0] == "/"
    assert expected in response.content.decode()
    assert f'<html lang="{language}">' in response.content.decode()


def test_the_browser_language_is_used_when_nothing_was_chosen(client):
    response = client.get("/", headers={"accept-language": "nl-BE,nl;q=0.9"})

    assert "Word lid van het programma" in response.content.decode()


@pytest.mark.parametrize("language", ["fr", "nl"])
def test_every_string_of_ours_is_translated(language):
    """Our catalogues have no untranslated or fuzzy entries (allauth and Django ship their own)."""
    from pathlib import Path

    po = (Path(__file__).parent.parent / "locale" / language / "LC_MESSAGES" / "django.po").read_text()
    entries = po.split("\n\n")[1:]
    untranslated = [e for e in entries if 'msgstr ""' in e and e.rstrip().endswith('msgstr ""')]
    fuzzy = [e for e in entries if "#, fuzzy" in e]

    assert not untranslated, untranslated[:3]
    assert not fuzzy, fuzzy[:3]


@pytest.mark.parametrize(
    ("language", "expected"), [("en", "March 14, 2026"), ("fr", "14 mars 2026"), ("nl", "14 maart 2026")]
)
def test_dates_on_our_pages_are_written_the_local_way(client, member_user, language, expected):
    import datetime

    from django.utils import timezone

    member_user.date_joined = timezone.make_aware(datetime.datetime(2026, 3, 14, 12, 0))
    member_user.save()
    client.force_login(member_user)
    client.post(reverse("set_language"), {"language": language, "next": "/me/"})

    assert expected in client.get("/me/").content.decode()
