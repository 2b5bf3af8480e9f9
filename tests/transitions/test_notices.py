"""Every member is told by name: an email in their language, or a printed letter when they have no email."""

import re
import shutil
import subprocess

import pytest
from django.core import mail

from campaigns import letters, transitions
from campaigns.models import Transition, TransitionNotice
from tests.conftest import SCREENSHOT_DIR, _require

pytestmark = pytest.mark.django_db


@pytest.fixture
def poppler():
    """pdftoppm, pdftotext and pdfinfo (Debian's poppler-utils; .ci/run installs it)."""
    _require(bool(shutil.which("pdftoppm")), "poppler-utils is not installed (apt-get install poppler-utils)")


def _announce(scenario, django_capture_on_commit_callbacks):
    Transition.objects.filter(pk=scenario.transition.pk).update(status=Transition.Status.DRAFT)
    with django_capture_on_commit_callbacks(execute=True):
        transitions.transition_announce(transition=scenario.transition)
    scenario.reload()


def test_announcing_emails_each_member_once_in_their_language_and_queues_letters(
    scenario, django_capture_on_commit_callbacks
):
    _announce(scenario, django_capture_on_commit_callbacks)

    notices = {n.account_id: n for n in TransitionNotice.objects.filter(transition=scenario.transition)}
    closed = scenario.accounts["closed_member"]
    no_email = scenario.accounts["no_email"]
    assert closed.pk not in notices  # a closed membership is not written to
    assert len(notices) == 8
    assert notices[no_email.pk].channel == "letter" and notices[no_email.pk].status == "queued"
    emailed = [n for n in notices.values() if n.channel == "email"]
    assert all(n.status == "sent" and n.sent_at for n in emailed)
    assert len(mail.outbox) == 7
    nora = next(m for m in mail.outbox if m.to == [scenario.accounts["never"].member.email])
    assert "Hello Nora," in nora.body
    assert "Your balance today: 800 pts" in nora.body
    assert "become a voucher worth 8.80 EUR" in nora.body
    assert f"/me/transitions/{scenario.transition.pk}/" in nora.body
    assert notices[scenario.accounts["online"].pk].language == "fr"

    # the task again, or a second worker: nobody is emailed twice
    assert transitions.notice_emails_send_batch(transition=scenario.transition) == 0
    assert len(mail.outbox) == 7


def test_a_reminder_goes_only_to_members_who_have_not_accepted(scenario, django_capture_on_commit_callbacks):
    _announce(scenario, django_capture_on_commit_callbacks)
    mail.outbox.clear()

    with django_capture_on_commit_callbacks(execute=True):
        written = transitions.transition_remind(transition=scenario.transition)

    accepted = {scenario.accounts[role].member.email for role in ("online", "desk", "zero_accepted", "voucher_holder")}
    assert written == 4  # never, no_email (a letter), zero_never, pending_never
    assert len(mail.outbox) == 3
    assert not accepted & {m.to[0] for m in mail.outbox}
    assert all(m.subject.startswith("Reminder: accept the new terms of Blue Rewards") for m in mail.outbox)


def test_a_letter_is_a_pdf_with_the_members_own_name_address_and_figures(scenario, tmp_path, poppler):
    account = scenario.accounts["no_email"]

    pdf = letters.letters_pdf(transition=scenario.transition, accounts=[account])

    assert pdf.startswith(b"%PDF")
    path = tmp_path / "letter.pdf"
    path.write_bytes(pdf)
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-singlefile", str(path), str(tmp_path / "page")], check=True)
    png = (tmp_path / "page.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    SCREENSHOT_DIR.mkdir(exist_ok=True)
    (SCREENSHOT_DIR / "transition-letter.png").write_bytes(png)  # to look at (git-ignored)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    member = account.member
    assert member.display_name in text
    assert "Rue Haute 12" in text and "1000 Bruxelles" in text
    assert member.member_no in text
    assert "balance 300 pts" in text
    assert "your 300 pts become a voucher worth 3.30 EUR" in " ".join(text.split())
    assert "your 300 pts become 200 pts in Green Club" in " ".join(text.split())


def test_the_mail_house_file_has_one_page_per_letter(scenario, tmp_path, poppler):
    accounts = [scenario.accounts[role] for role in ("no_email", "never", "desk")]

    path = tmp_path / "letters.pdf"
    path.write_bytes(letters.letters_pdf(transition=scenario.transition, accounts=accounts))

    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+3$", info, re.MULTILINE)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    pages = text.split("\f")
    for page, account in zip(pages, accounts, strict=False):
        assert account.member.display_name in page
