"""Messages to members: personal facts in the member's language, who gets a marketing or a service
message (never the control group), batches that never email anyone twice, the unsubscribe link, the
staff pages and who may use them."""

import datetime
import re
from decimal import Decimal
from smtplib import SMTPRecipientsRefused

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from campaigns import messaging
from campaigns.models import Campaign, CampaignMember, Message, MessageSend
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Program
from members.models import ConsentRecord, Member
from rewards import codes
from rewards import services as reward_services

pytestmark = pytest.mark.django_db

ALL_FACTS = (
    "Hoi {first_name}: {balance} punten, niveau {tier}, nog {points_to_next_tier} tot {next_tier}. "
    "{points_expiring} punten vervallen op {expiring_on}. Code: {voucher_code}"
)


@pytest.fixture
def expiring_program(program):
    """Points lapse a month after they are earned, so a purchase leaves points expiring soon."""
    Program.objects.filter(pk=program.pk).update(expiry_policy=Program.ExpiryPolicy.MONTHS_AFTER_EARN, expiry_months=1)
    program.refresh_from_db()
    return program


@pytest.fixture
def campaign(program):
    today = timezone.localdate()
    return Campaign.objects.create(
        program=program,
        name="Spring news",
        starts_on=today,
        ends_on=today + datetime.timedelta(days=30),
        mechanic=Campaign.Mechanic.ANNOUNCEMENT,
    )


def _target(campaign, account, *, held_out=False):
    CampaignMember.objects.create(campaign=campaign, account=account, held_out=held_out, added_at=timezone.now())
    return account


def _leaves(account, status):
    """The member was closed or suspended after they enrolled (only active members enrol)."""
    Member.objects.filter(pk=account.member_id).update(status=status)
    return account


def _message(program, *, campaign=None, kind=Message.Kind.MARKETING, texts=None, **fields):
    texts = texts or {"en": ("News for {first_name}", "Hello {first_name}, you have {balance} points.")}
    return messaging.message_save(
        program=program, campaign=campaign, kind=kind, name="Spring mailing", texts=texts, created_by=None, **fields
    )


def _previewed(message, account):
    messaging.message_preview(message=message, account=account)
    message.refresh_from_db()
    return message


def _send_all(message, django_capture_on_commit_callbacks):
    """Start sending and run the queued task in-process, as a worker would after the commit."""
    with django_capture_on_commit_callbacks(execute=True):
        messaging.message_send_start(message=message, started_by=None)
    message.refresh_from_db()
    return message


def _log(message) -> dict[str, tuple[str, str]]:
    return {send.member.email or send.member.member_no: (send.status, send.note) for send in message.sends.all()}


# --- facts and rendering ---------------------------------------------------------------------------


@time_machine.travel(datetime.datetime(2026, 3, 10, 12, 0, tzinfo=datetime.UTC), tick=False)
def test_a_member_reads_the_message_in_their_language_with_their_own_facts(expiring_program, enrol, buy):
    program = expiring_program
    account = enrol(program, first_name="Noor", language="nl", email="noor@example.com")
    buy(account, "1250.00")  # 1,250 points, qualifying: Silver at once (1,000), Gold at 5,000; lapse on 10 April
    voucher = reward_services.voucher_issue(
        account=account,
        description="EUR 5 off",
        issue_key="spring-noor",
        valid_from=timezone.localdate(),
        valid_until=timezone.localdate() + datetime.timedelta(days=30),
        amount=Decimal("5"),
    )
    message = _message(
        program,
        kind=Message.Kind.SERVICE,
        texts={"en": ("Hi {first_name}", "Hello"), "nl": ("Hoi {first_name}, {balance} punten", ALL_FACTS)},
    )

    subject, body, language = messaging.message_render(message=message, account=account)

    assert language == "nl"
    assert subject == "Hoi Noor, 1.250 punten"  # grouped the Dutch way
    assert body.startswith(
        "Hoi Noor: 1.250 punten, niveau Silver, nog 3.750 tot Gold. "
        f"1.250 punten vervallen op 10 april 2026. Code: {codes.display(voucher.code)}\n"
    )
    assert "\n--\nBlue Rewards\n" in body  # the program's name at the foot
    assert "/unsubscribe/" not in body  # a service message has no unsubscribe link


def test_the_facts_of_one_member_come_in_their_language_in_a_fixed_number_of_queries(expiring_program, enrol, buy):
    account = enrol(expiring_program, first_name="Zoé", language="fr")
    buy(account, "1500.00")

    with CaptureQueriesContext(connection) as queries:
        facts = messaging.message_facts(account=account)

    assert facts["balance"] == "1\xa0500"  # French thousands: a non-breaking space
    assert (facts["first_name"], facts["tier"], facts["next_tier"], facts["points_to_next_tier"]) == (
        "Zoé",
        "Silver",
        "Gold",
        "3\xa0500",
    )
    assert facts["points_expiring"] == "1\xa0500" and facts["voucher_code"] == ""
    assert len(queries) <= 6


def test_a_member_whose_language_has_no_text_gets_the_english_one(program, enrol):
    account = enrol(program, first_name="Zoé", language="fr")
    message = _message(program, kind=Message.Kind.SERVICE, texts={"nl": ("Hoi", "Tekst"), "en": ("Hi", "Text")})

    rendered = messaging.message_render(message=message, account=account)

    assert (rendered.subject, rendered.language) == ("Hi", "en")


def test_a_campaign_message_names_the_voucher_that_campaign_issued(program, enrol, campaign):
    account = _target(campaign, enrol(program, marketing_consent=True))
    today = timezone.localdate()
    other = reward_services.voucher_issue(
        account=account, description="Other", issue_key="other", valid_from=today, valid_until=today, amount=Decimal(1)
    )
    ours = reward_services.voucher_issue(
        account=account,
        description="Spring",
        issue_key="spring",
        valid_from=today,
        valid_until=today,
        amount=Decimal(5),
        source=campaign,
    )
    message = _message(program, campaign=campaign, texts={"en": ("Your code", "Code {voucher_code}.")})

    body = messaging.message_render(message=message, account=account).body

    assert f"Code {codes.display(ours.code)}." in body and codes.display(other.code) not in body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("You have {points} points", "Unknown placeholder {points}: use one of {first_name}, {balance}"),
        ("You have {balance points", "A brace is not closed"),
        ("Hi {first name}", "Unknown placeholder {first name}"),
    ],
)
def test_an_unknown_placeholder_is_refused_when_the_message_is_saved(program, body, error):
    with pytest.raises(ApplicationError) as refused:
        _message(program, kind=Message.Kind.SERVICE, texts={"en": ("Hello", "Fine"), "fr": ("Bonjour", body)})

    assert error in refused.value.message
    assert refused.value.extra["field"] == "body_fr"
    assert not Message.objects.exists()


def test_a_marketing_message_needs_its_campaign(program):
    with pytest.raises(ApplicationError, match="choose the campaign"):
        _message(program, kind=Message.Kind.MARKETING)


def test_changing_the_text_asks_for_a_new_preview(program, enrol):
    account = enrol(program)
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), account)
    assert message.previewed_at is not None

    unchanged = _message(program, kind=Message.Kind.SERVICE, message=message)
    assert unchanged.previewed_at is not None
    changed = _message(program, kind=Message.Kind.SERVICE, message=message, texts={"en": ("New", "New body")})
    assert changed.previewed_at is None


# --- who gets it -----------------------------------------------------------------------------------


def test_a_marketing_message_reaches_only_consenting_treated_members_never_the_control_group(
    program, enrol, campaign, django_capture_on_commit_callbacks
):
    yes = _target(campaign, enrol(program, email="yes@example.com", marketing_consent=True))
    _target(campaign, enrol(program, email="no-consent@example.com", marketing_consent=False))
    _target(campaign, enrol(program, email="", member_no="LEGACY-NOMAIL", marketing_consent=True))
    _target(campaign, enrol(program, email="control@example.com", marketing_consent=True), held_out=True)
    _target(campaign, _leaves(enrol(program, email="closed@example.com", marketing_consent=True), "closed"))
    enrol(program, email="not-targeted@example.com", marketing_consent=True)
    message = _previewed(_message(program, campaign=campaign), yes)

    message = _send_all(message, django_capture_on_commit_callbacks)

    assert [email.to for email in mail.outbox] == [["yes@example.com"]]
    assert "/unsubscribe/" in mail.outbox[0].body and mail.outbox[0].extra_headers["List-Unsubscribe"]
    assert _log(message) == {
        "yes@example.com": ("sent", ""),
        "no-consent@example.com": ("skipped", messaging.NOTE_NO_CONSENT),
        "LEGACY-NOMAIL": ("skipped", messaging.NOTE_NO_EMAIL),
        "control@example.com": ("skipped", messaging.NOTE_CONTROL_GROUP),
        "closed@example.com": ("skipped", messaging.NOTE_NOT_ACTIVE),
    }
    assert message.status == Message.Status.SENT and message.sent_at is not None


def test_a_service_message_reaches_every_active_member_with_an_email_whatever_their_consent(
    program, enrol, django_capture_on_commit_callbacks
):
    first = enrol(program, email="consented@example.com", marketing_consent=True)
    enrol(program, email="no-consent@example.com", marketing_consent=False)
    enrol(program, email="", member_no="LEGACY-NOMAIL")
    _leaves(enrol(program, email="suspended@example.com"), "suspended")
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), first)

    message = _send_all(message, django_capture_on_commit_callbacks)

    assert sorted(email.to[0] for email in mail.outbox) == ["consented@example.com", "no-consent@example.com"]
    assert all("/unsubscribe/" not in email.body for email in mail.outbox)
    assert _log(message) == {
        "consented@example.com": ("sent", ""),
        "no-consent@example.com": ("sent", ""),
        "LEGACY-NOMAIL": ("skipped", messaging.NOTE_NO_EMAIL),
    }


def test_a_message_not_previewed_is_not_sent(program, enrol):
    enrol(program)
    message = _message(program, kind=Message.Kind.SERVICE)

    with pytest.raises(ApplicationError, match="Preview the message"):
        messaging.message_send_start(message=message, started_by=None)

    message.refresh_from_db()
    assert message.status == Message.Status.DRAFT and not message.sends.exists() and not mail.outbox


def test_a_member_who_unsubscribes_after_the_audience_was_written_is_not_emailed(program, enrol, campaign):
    stays = _target(campaign, enrol(program, email="stays@example.com", marketing_consent=True))
    leaves = _target(campaign, enrol(program, email="leaves@example.com", marketing_consent=True))
    message = _previewed(_message(program, campaign=campaign), stays)
    messaging.message_send_start(message=message, started_by=None)  # the task is not run: rows stay queued

    messaging.unsubscribe(token=messaging.unsubscribe_token(leaves.member))
    messaging.message_send_batch(message=message)

    assert [email.to for email in mail.outbox] == [["stays@example.com"]]
    assert _log(message)["leaves@example.com"] == ("skipped", messaging.NOTE_NO_CONSENT)


# --- batches -------------------------------------------------------------------------------------


def test_batches_run_again_never_email_anyone_twice(program, enrol):
    accounts = [enrol(program, email=f"m{n}@example.com") for n in range(5)]
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), accounts[0])
    messaging.message_send_start(message=message, started_by=None)

    handled = [messaging.message_send_batch(message=message, limit=2) for _run in range(5)]

    assert handled == [2, 2, 1, 0, 0]
    recipients = [email.to[0] for email in mail.outbox]
    assert sorted(recipients) == sorted(f"m{n}@example.com" for n in range(5))
    assert messaging.message_sent_mark(message=message)
    assert not messaging.message_sent_mark(message=message)  # once


class DyingBackend(EmailBackend):
    """A worker killed while sending: the second email of a connection never leaves."""

    def send_messages(self, messages):
        if len(mail.outbox) >= 1:
            raise SystemExit("worker killed")
        return super().send_messages(messages)


class RefusingBackend(EmailBackend):
    def send_messages(self, messages):
        if messages[0].to == ["bounce@example.com"]:
            raise SMTPRecipientsRefused({"bounce@example.com": (550, b"No such user")})
        return super().send_messages(messages)


def test_a_batch_killed_while_sending_is_not_sent_again_when_run_again(program, enrol):
    accounts = [enrol(program, email=f"k{n}@example.com") for n in range(3)]
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), accounts[0])
    messaging.message_send_start(message=message, started_by=None)

    with override_settings(EMAIL_BACKEND="tests.campaigns.test_messages.DyingBackend"), pytest.raises(SystemExit):
        messaging.message_send_batch(message=message)
    again = messaging.message_send_batch(message=message)

    assert again == 0
    assert [email.to for email in mail.outbox] == [["k0@example.com"]]
    # The rows the dead batch held say the email may not have arrived; none is queued again.
    assert set(_log(message).values()) == {("failed", messaging.NOTE_INTERRUPTED)}
    assert messaging.message_sent_mark(message=message)


@override_settings(EMAIL_BACKEND="tests.campaigns.test_messages.RefusingBackend")
def test_a_refused_address_fails_alone_and_says_why(program, enrol):
    first = enrol(program, email="ok@example.com")
    enrol(program, email="bounce@example.com")
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), first)
    messaging.message_send_start(message=message, started_by=None)

    messaging.message_send_batch(message=message)

    log = _log(message)
    assert log["ok@example.com"] == ("sent", "")
    assert log["bounce@example.com"][0] == "failed" and "SMTPRecipientsRefused" in log["bounce@example.com"][1]
    assert MessageSend.objects.get(member__email="ok@example.com").sent_at is not None


MAX_BATCH_QUERIES = 12  # the message, its texts, the claim (4), accounts, tiers, totals, expiring, vouchers, the log


def _batch_queries(program, enrol, buy, assert_max_queries, name: str, members: int) -> int:
    today = timezone.localdate()
    campaign = Campaign.objects.create(
        program=program, name=name, starts_on=today, ends_on=today, mechanic=Campaign.Mechanic.ANNOUNCEMENT
    )
    accounts = []
    for n in range(members):
        account = _target(campaign, enrol(program, email=f"{name}{n}@example.com", marketing_consent=True))
        buy(account, "20.00")
        reward_services.voucher_issue(
            account=account,
            description="EUR 5",
            issue_key=f"{name}-{n}",
            valid_from=today,
            valid_until=today,
            amount=Decimal(5),
            source=campaign,
        )
        accounts.append(account)
    texts = {"en": ("{first_name}", ALL_FACTS), "fr": ("{first_name}", ALL_FACTS)}
    message = _previewed(_message(program, campaign=campaign, texts=texts), accounts[0])
    messaging.message_send_start(message=message, started_by=None)
    with assert_max_queries(MAX_BATCH_QUERIES) as queries:
        assert messaging.message_send_batch(message=message) == members
    return len(queries)


def test_a_batch_issues_the_same_queries_for_3_or_30_members(
    expiring_program, enrol, buy, django_assert_max_num_queries
):
    few = _batch_queries(expiring_program, enrol, buy, django_assert_max_num_queries, "few", 3)
    many = _batch_queries(expiring_program, enrol, buy, django_assert_max_num_queries, "many", 30)

    assert many == few
    assert len(mail.outbox) == 33


# --- unsubscribe -----------------------------------------------------------------------------------


def test_the_unsubscribe_link_works_without_signing_in_and_withdraws_consent(
    client, program, enrol, campaign, django_capture_on_commit_callbacks
):
    account = _target(campaign, enrol(program, email="ann@example.com", marketing_consent=True))
    message = _previewed(_message(program, campaign=campaign), account)
    _send_all(message, django_capture_on_commit_callbacks)
    url = re.search(r"http://\S+/unsubscribe/\S+/", mail.outbox[0].body).group(0)
    path = url.split("8000", 1)[1]

    asked = client.get(path)
    done = client.post(path)

    assert asked.status_code == 200 and "Unsubscribe" in asked.content.decode()
    assert done.status_code == 200 and "You are unsubscribed" in done.content.decode()
    member = Member.objects.get(pk=account.member_id)
    assert member.marketing_consent is False
    record = ConsentRecord.objects.filter(member=member).first()
    assert (record.granted, record.channel) == (False, Member.Channel.ONLINE)
    assert client.post(path).status_code == 200  # a second click changes nothing
    assert ConsentRecord.objects.filter(member=member, granted=False).count() == 1


@pytest.mark.parametrize("token", ["12:not-a-signature", "garbage", "1"])
def test_a_forged_unsubscribe_link_is_refused(client, program, enrol, token):
    account = enrol(program, marketing_consent=True)

    assert client.get(f"/unsubscribe/{account.member_id}:{token}/").status_code == 400
    response = client.post(f"/unsubscribe/{token}/")

    assert response.status_code == 400 and "This link does not work" in response.content.decode()
    assert Member.objects.get(pk=account.member_id).marketing_consent is True


def test_a_token_for_one_member_cannot_unsubscribe_another(program, enrol):
    one, other = enrol(program, marketing_consent=True), enrol(program, marketing_consent=True)
    signature = messaging.unsubscribe_token(one.member).split(":", 1)[1]

    with pytest.raises(ApplicationError):
        messaging.unsubscribe(token=f"{other.member_id}:{signature}")

    assert Member.objects.get(pk=other.member_id).marketing_consent is True


# --- staff pages -----------------------------------------------------------------------------------


def _url(program, page=""):
    return f"/staff/programs/{program.slug}/messages/{page}"


MESSAGE_FORM = {
    "name": "Spring mailing",
    "kind": "service",
    "campaign": "",
    "subject_en": "Hello {first_name}",
    "body_en": "You have {balance} points.",
    "subject_fr": "Bonjour {first_name}",
    "body_fr": "Vous avez {balance} points.",
    "subject_nl": "",
    "body_nl": "",
}


def test_a_manager_writes_previews_and_sends_a_message_and_reads_the_log(
    client, manager_user, program, enrol, django_capture_on_commit_callbacks
):
    enrol(program, first_name="Ann", email="ann@example.com", member_no="900000010", language="fr")
    enrol(program, first_name="Bob", email="", member_no="900000011")
    client.force_login(manager_user)

    saved = client.post(_url(program, "new/"), MESSAGE_FORM)
    message = Message.objects.get()
    preview = client.get(
        _url(program, f"{message.pk}/preview/"), {"member": "900000010"}, headers={"HX-Request": "true"}
    )
    with django_capture_on_commit_callbacks(execute=True):
        sent = client.post(_url(program, f"{message.pk}/send/"))
    log = client.get(_url(program, f"{message.pk}/log/"), {"status": "skipped"})
    listing = client.get(_url(program))

    assert saved.status_code == 302 and saved.url == _url(program, f"{message.pk}/")
    assert "Preview for a member" in client.get(saved.url).content.decode()
    assert message.texts.count() == 2  # the empty Dutch text is not kept
    assert preview.status_code == 200 and "Bonjour Ann" in preview.content.decode()
    assert "<html" not in preview.content.decode()  # an htmx fragment
    assert sent.status_code == 302 and sent.url == _url(program, f"{message.pk}/log/")
    assert [email.subject for email in mail.outbox] == ["Bonjour Ann"]
    page = log.content.decode()
    assert 'data-testid="send-900000011"' in page and 'data-testid="send-900000010"' not in page
    assert "No email address" in page
    assert 'data-testid="count-sent">1<' in page
    assert "Spring mailing" in listing.content.decode()


def test_the_preview_defaults_to_the_campaigns_first_treated_member(client, manager_user, program, enrol, campaign):
    _target(campaign, enrol(program, first_name="Control", marketing_consent=True), held_out=True)
    _target(campaign, enrol(program, first_name="Treated", marketing_consent=True))
    message = _message(program, campaign=campaign)
    client.force_login(manager_user)

    response = client.get(_url(program, f"{message.pk}/preview/"))

    assert response.status_code == 200 and "News for Treated" in response.content.decode()
    message.refresh_from_db()
    assert message.previewed_at is not None


def test_the_preview_says_when_the_member_number_is_unknown(client, manager_user, program, enrol):
    enrol(program)
    message = _message(program, kind=Message.Kind.SERVICE)
    client.force_login(manager_user)

    response = client.get(_url(program, f"{message.pk}/preview/"), {"member": "123"}, headers={"HX-Request": "true"})

    assert response.status_code == 400 and "No member 123 in this program" in response.content.decode()
    message.refresh_from_db()
    assert message.previewed_at is None


def test_the_page_refuses_an_unknown_placeholder_and_says_which(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(_url(program, "new/"), {**MESSAGE_FORM, "body_fr": "Vous avez {solde} points."})

    assert response.status_code == 400
    assert "Unknown placeholder {solde}" in response.content.decode()
    assert not Message.objects.exists()


def test_sending_an_unpreviewed_message_from_the_page_says_to_preview_first(client, manager_user, program, enrol):
    enrol(program)
    message = _message(program, kind=Message.Kind.SERVICE)
    client.force_login(manager_user)

    response = client.post(_url(program, f"{message.pk}/send/"), follow=True)

    assert "Preview the message for a member first" in response.content.decode()
    message.refresh_from_db()
    assert message.status == Message.Status.DRAFT and not mail.outbox


def test_a_sending_stopped_halfway_is_resumed_from_the_page_without_emailing_anyone_twice(
    client, manager_user, program, enrol, django_capture_on_commit_callbacks
):
    accounts = [enrol(program, email=f"r{n}@example.com") for n in range(3)]
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), accounts[0])
    messaging.message_send_start(message=message, started_by=None)  # its task was lost
    messaging.message_send_batch(message=message, limit=1)
    client.force_login(manager_user)

    page = client.get(_url(program, f"{message.pk}/"))
    with django_capture_on_commit_callbacks(execute=True):
        resumed = client.post(_url(program, f"{message.pk}/send/"))

    assert "Resume sending" in page.content.decode()
    assert resumed.status_code == 302
    assert sorted(email.to[0] for email in mail.outbox) == ["r0@example.com", "r1@example.com", "r2@example.com"]
    message.refresh_from_db()
    assert message.status == Message.Status.SENT


@pytest.mark.parametrize(
    ("who", "page", "status"),
    [
        ("manager_user", "", 200),
        ("manager_user", "new/", 200),
        ("analyst_user", "", 200),
        ("analyst_user", "{pk}/log/", 200),
        ("analyst_user", "{pk}/preview/", 200),
        ("analyst_user", "new/", 403),
        ("analyst_user", "{pk}/", 403),
        ("clerk_user", "", 403),
        ("clerk_user", "{pk}/log/", 403),
        ("member_user", "", 403),
        ("member_user", "{pk}/preview/", 403),
    ],
)
def test_who_may_open_each_message_page(client, request, program, enrol, who, page, status):
    enrol(program)
    message = _message(program, kind=Message.Kind.SERVICE)
    client.force_login(request.getfixturevalue(who))

    assert client.get(_url(program, page.format(pk=message.pk))).status_code == status


@pytest.mark.parametrize("who", ["analyst_user", "clerk_user", "member_user"])
def test_only_who_may_launch_campaigns_sends_a_message(client, request, program, enrol, who):
    account = enrol(program, email="someone@example.com")
    message = _previewed(_message(program, kind=Message.Kind.SERVICE), account)
    client.force_login(request.getfixturevalue(who))

    assert client.post(_url(program, f"{message.pk}/send/")).status_code == 403
    assert client.post(_url(program, "new/"), MESSAGE_FORM).status_code == 403

    message.refresh_from_db()
    assert message.status == Message.Status.DRAFT and not message.sends.exists() and not mail.outbox
    assert Message.objects.count() == 1


def test_a_visitor_is_sent_to_sign_in(client, program):
    response = client.get(_url(program))

    assert response.status_code == 302 and "/accounts/login/" in response.url
