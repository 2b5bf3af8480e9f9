import gettext
import re
from pathlib import Path

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
    po = (Path(__file__).parent.parent / "locale" / language / "LC_MESSAGES" / "django.po").read_text()
    entries = po.split("\n\n")[1:]
    untranslated = [e for e in entries if re.search(r'^msgstr(\[\d\])? ""$(?!\n")', e, re.M)]
    fuzzy = [e for e in entries if re.search(r"^#,.*\bfuzzy\b", e, re.M)]

    assert not untranslated, untranslated[:3]
    assert not fuzzy, fuzzy[:3]


@pytest.mark.parametrize("language", ["fr", "nl"])
def test_translations_keep_every_placeholder(language):
    """A translation that drops or renames %(name)s would crash the page that formats it."""
    mo = Path(__file__).parent.parent / "locale" / language / "LC_MESSAGES" / "django.mo"
    with mo.open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)._catalog
    placeholder = re.compile(r"%\((\w+)\)[sd]")
    po = mo.with_suffix(".po").read_text()
    plural_sources = {  # msgid -> msgid_plural
        "".join(re.findall(r'"(.*)"', m.group(1))): "".join(re.findall(r'"(.*)"', m.group(2)))
        for m in re.finditer(r'^msgid ((?:".*"\n)+)msgid_plural ((?:".*"\n)+)', po, re.M)
    }
    wrong = []
    for key, translated in catalog.items():
        source = key[0] if isinstance(key, tuple) else key
        if not source:
            continue  # the header
        found = set(placeholder.findall(translated))
        if isinstance(key, tuple):
            # Any form may use the placeholders of the singular or plural source, and nothing else.
            ok = found <= set(placeholder.findall(source + plural_sources[source]))
        else:
            ok = found == set(placeholder.findall(source))
        if not ok:
            wrong.append((source, translated))

    assert not wrong, wrong[:3]


@pytest.mark.parametrize(
    ("language", "expected"), [("en", "14 March 2026"), ("fr", "14 mars 2026"), ("nl", "14 maart 2026")]
)
def test_dates_on_our_pages_are_written_the_local_way(client, member_user, language, expected):
    import datetime

    from django.utils import timezone

    from members.models import Member
    from tests.factories import MemberFactory

    member = MemberFactory(user=member_user)
    Member.objects.filter(pk=member.pk).update(enrolled_at=timezone.make_aware(datetime.datetime(2026, 3, 14, 12, 0)))
    client.force_login(member_user)
    client.post(reverse("set_language"), {"language": language, "next": "/me/"})

    assert expected in client.get("/me/").content.decode()
