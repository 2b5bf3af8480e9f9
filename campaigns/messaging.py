"""Messages to members: personal facts, rendering, the audience, batch sending, unsubscribing.

Texts carry placeholders in braces ({first_name}, {balance}, ...); an unknown one is refused when the
message is saved, so a send never meets one. Facts are read for a whole batch of members at once (a
fixed number of queries per batch, whatever its size), and written into each email in the language of
the text the member gets, which is their own language whenever the message has a text in it.

Sending: `message_send_start` writes the audience in one INSERT … SELECT (a queued row per member to
email; a skipped row, with the reason, per member who may not be emailed, held-out control members
included, so the log accounts for every targeted member and a held-out member can never be queued
later: a member has one row per message). Batches then claim queued rows with FOR UPDATE SKIP LOCKED.
A claimed row is marked "interrupted" and committed *before* its email goes out, then marked sent or
failed: a worker killed mid-batch leaves its rows interrupted, never queued again, so nobody is emailed
twice (at most once; the log says which emails may not have arrived).

Reads for the staff pages (counts, the send log, the member to preview for) live at the end of this
module beside the services they belong to.
"""

import datetime
import logging
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Count, Min, Q, QuerySet, Sum
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop

from campaigns.models import Campaign, CampaignMember, Message, MessageSend, MessageText
from loyalty import engine
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, LedgerEntry, Program, Purchase
from members.models import Member
from members.services import member_consent_set
from rewards import codes
from rewards.models import Voucher

PLACEHOLDERS = (
    "first_name",
    "balance",
    "tier",
    "next_tier",
    "points_to_next_tier",
    "points_expiring",
    "expiring_on",
    "voucher_code",
)
EXPIRING_DAYS = 90  # {points_expiring}: what lapses in the next 90 days, as the member dashboard shows
BATCH_SIZE = 500
UNSUBSCRIBE_SALT = "campaigns.unsubscribe"

logger = logging.getLogger(__name__)

_BRACED = re.compile(r"\{([^{}]*)\}")
_PLACEHOLDER = re.compile(r"\{(\w+)\}")

# Notes of the send log, stored in English and translated when shown (the log outlives any one reader).
NOTE_CONTROL_GROUP = gettext_noop("Control group: held out of the campaign")
NOTE_NOT_ACTIVE = gettext_noop("The member is not active")
NOTE_NO_EMAIL = gettext_noop("No email address")
NOTE_NO_CONSENT = gettext_noop("No marketing consent")
NOTE_INTERRUPTED = gettext_noop("Sending was interrupted: the email may not have arrived; it is not sent again")
NOTE_NO_ACCOUNT = gettext_noop("The member has no account in the program")


# --- personal facts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Facts:
    """One member's facts as values; `localised` writes them for one language."""

    first_name: str
    balance: int
    tier: str
    next_tier: str
    points_to_next_tier: int | Decimal
    points_expiring: int
    expiring_on: datetime.date | None
    voucher_code: str

    def localised(self, language: str) -> dict[str, str]:
        with translation.override(language):
            return {
                "first_name": self.first_name,
                "balance": _number(self.balance),
                "tier": self.tier,
                "next_tier": self.next_tier,
                "points_to_next_tier": _number(self.points_to_next_tier),
                "points_expiring": _number(self.points_expiring),
                "expiring_on": date_format(self.expiring_on, "DATE_FORMAT") if self.expiring_on else "",
                "voucher_code": codes.display(self.voucher_code) if self.voucher_code else "",
            }


def _number(value: int | Decimal) -> str:
    """Grouped the local way; a spend (tiers on qualifying spend) keeps its cents when it has some."""
    places = 2 if isinstance(value, Decimal) and value != value.to_integral_value() else 0
    return number_format(value, decimal_pos=places, use_l10n=True, force_grouping=True)


def facts_for_accounts(
    *, accounts: list[Account], program: Program, campaign: Campaign | None = None, as_of=None
) -> dict[int, Facts]:
    """The facts of many accounts of one program, by account id, in five queries whatever their number:
    tiers, qualifying totals, expiring points and vouchers each in one query for the whole list. The
    accounts must come with their member (select_related). {voucher_code} is the newest usable voucher
    the campaign issued the member (any usable voucher of theirs, for a message without a campaign)."""
    as_of = as_of or timezone.now()
    ids = [account.pk for account in accounts]
    tiers = sorted(program.tiers.all(), key=lambda tier: tier.rank)
    # As loyalty.selectors.tier_progress, for the whole list at once.
    start, end = engine.qualification_window(program, as_of)
    if program.qualifying_basis == Program.QualifyingBasis.SPEND:
        totals = (
            Purchase.objects.filter(account_id__in=ids, occurred_at__gte=start, occurred_at__lt=end)
            .values("account_id")
            .annotate(total=Sum("amount") - Sum("returned_amount"))
            .order_by()
        )
    else:
        totals = (
            LedgerEntry.objects.filter(account_id__in=ids, occurred_at__gte=start, occurred_at__lt=end)
            .values("account_id")
            .annotate(total=Sum("qualifying_points"))
            .order_by()
        )
    qualifying = {row["account_id"]: row["total"] or 0 for row in totals}
    expiring = {
        row["account_id"]: row
        for row in LedgerEntry.objects.filter(
            account_id__in=ids,
            remaining__gt=0,
            is_available=True,
            expires_at__gt=as_of,
            expires_at__lte=as_of + datetime.timedelta(days=EXPIRING_DAYS),
        )
        .values("account_id")
        .annotate(points=Sum("remaining"), first=Min("expires_at"))
        .order_by()
    }
    vouchers = Voucher.objects.filter(
        account_id__in=ids, status=Voucher.Status.ACTIVE, valid_until__gte=timezone.localdate(as_of)
    )
    if campaign is not None:
        # Named through the content type's natural key: a join, not a lookup query of its own.
        vouchers = vouchers.filter(
            source_type__app_label="campaigns", source_type__model="campaign", source_id=campaign.pk
        )
    voucher_code: dict[int, str] = {}
    for account_id, code in vouchers.order_by("account_id", "-created_at", "-pk").values_list("account_id", "code"):
        voucher_code.setdefault(account_id, code)

    facts = {}
    for account in accounts:
        current = next((tier for tier in tiers if tier.pk == account.tier_id), None)
        higher = [tier for tier in tiers if current is None or tier.rank > current.rank]
        next_tier = higher[0] if higher else None
        total = qualifying.get(account.pk, 0)
        lapsing = expiring.get(account.pk)
        member = account.member
        facts[account.pk] = Facts(
            first_name=member.first_name or member.company,
            balance=account.balance,
            tier=current.name if current else "",
            next_tier=next_tier.name if next_tier else "",
            points_to_next_tier=max(next_tier.threshold - total, 0) if next_tier else 0,
            points_expiring=int(lapsing["points"]) if lapsing else 0,
            expiring_on=timezone.localtime(lapsing["first"]).date() if lapsing else None,
            voucher_code=voucher_code.get(account.pk, ""),
        )
    return facts


def message_facts(*, account: Account, campaign: Campaign | None = None, as_of=None) -> dict[str, str]:
    """The placeholders' values for one member, written in the member's language (a fixed number of queries)."""
    account = Account.objects.select_related("member", "program").get(pk=account.pk)
    facts = facts_for_accounts(accounts=[account], program=account.program, campaign=campaign, as_of=as_of)
    return facts[account.pk].localised(account.member.language)


def message_facts_many(
    *, accounts: QuerySet[Account] | list[Account], campaign: Campaign | None = None, as_of=None
) -> dict[int, dict[str, str]]:
    """`message_facts` for many accounts of one program, by account id, in a fixed number of queries."""
    accounts = list(Account.objects.filter(pk__in=[a.pk for a in accounts]).select_related("member", "program"))
    if not accounts:
        return {}
    facts = facts_for_accounts(accounts=accounts, program=accounts[0].program, campaign=campaign, as_of=as_of)
    return {account.pk: facts[account.pk].localised(account.member.language) for account in accounts}


# --- texts and rendering ---------------------------------------------------------------------------


def placeholder_errors(text: str) -> list[str]:
    """What is wrong with the braces of a subject or body, as messages that say what to write instead."""
    known = ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
    errors = [
        _("Unknown placeholder {%(name)s}: use one of %(known)s.") % {"name": name, "known": known}
        for name in dict.fromkeys(_BRACED.findall(text))
        if name not in PLACEHOLDERS
    ]
    if not errors and ("{" in _BRACED.sub("", text) or "}" in _BRACED.sub("", text)):
        errors.append(_("A brace is not closed: write placeholders as {balance}, with both braces."))
    return errors


def _fill(text: str, values: dict[str, str]) -> str:
    return _PLACEHOLDER.sub(lambda match: values.get(match.group(1), match.group(0)), text)


def unsubscribe_token(member: Member) -> str:
    """A signed token naming the member; it never expires (an old email's link keeps working)."""
    return signing.Signer(salt=UNSUBSCRIBE_SALT).sign(str(member.pk))


def unsubscribe_url(member: Member) -> str:
    return settings.SITE_URL + reverse("unsubscribe", args=[unsubscribe_token(member)])


class Rendered(NamedTuple):
    subject: str
    body: str
    language: str


def _text_for(texts: dict[str, MessageText], language: str) -> MessageText:
    """The member's language, else the site's default language, else the first text."""
    return texts.get(language) or texts.get(settings.LANGUAGE_CODE) or texts[sorted(texts)[0]]


def _render(*, message: Message, texts: dict[str, MessageText], member: Member, facts: Facts) -> Rendered:
    text = _text_for(texts, member.language)
    values = facts.localised(text.language)
    with translation.override(text.language):
        body = render_to_string(
            "email/campaign_message.txt",
            {
                "body": _fill(text.body, values).strip(),
                "program": message.program.name,
                "unsubscribe_url": unsubscribe_url(member) if message.kind == Message.Kind.MARKETING else "",
            },
        )
    subject = " ".join(_fill(text.subject, values).split())  # a header holds no line breaks
    return Rendered(subject, body, text.language)


def _texts(message: Message) -> dict[str, MessageText]:
    texts = {text.language: text for text in MessageText.objects.filter(message_id=message.pk)}
    if not texts:
        raise ApplicationError(_("The message has no text yet: write a subject and a body first."), code="no_text")
    return texts


def message_render(*, message: Message, account: Account, as_of=None) -> Rendered:
    """The subject and body one member would get, and the language they are in."""
    message = Message.objects.select_related("program", "campaign").get(pk=message.pk)
    account = Account.objects.select_related("member").get(pk=account.pk)
    if account.program_id != message.program_id:
        raise ApplicationError(_("This member has no account in the message's program."), code="invalid")
    facts = facts_for_accounts(accounts=[account], program=message.program, campaign=message.campaign, as_of=as_of)
    return _render(message=message, texts=_texts(message), member=account.member, facts=facts[account.pk])


# --- services ------------------------------------------------------------------------------------


def _languages() -> list[str]:
    return [code for code, _name in settings.LANGUAGES]


def _clean_texts(texts: dict[str, tuple[str, str]]) -> dict[str, tuple[str, str]]:
    """The texts to keep ({language: (subject, body)}); a language left empty is dropped. Raises an
    ApplicationError whose extra["fields"] names every field at fault (subject_<lang>, body_<lang>)."""
    errors: dict[str, list[str]] = {}
    cleaned = {}
    for language, (subject, body) in texts.items():
        if language not in _languages():
            raise ApplicationError(
                _("Write texts in the offered languages only."), code="invalid", extra={"field": "texts"}
            )
        subject, body = (subject or "").strip(), (body or "").strip()
        if not subject and not body:
            continue
        if not subject:
            errors[f"subject_{language}"] = [_("Give a subject, or leave this language's body empty too.")]
        if not body:
            errors[f"body_{language}"] = [_("Write the body, or leave this language's subject empty too.")]
        for field, value in ((f"subject_{language}", subject), (f"body_{language}", body)):
            if problems := placeholder_errors(value):
                errors.setdefault(field, []).extend(problems)
        cleaned[language] = (subject, body)
    if not cleaned and not errors:
        errors[f"subject_{settings.LANGUAGE_CODE}"] = [_("Write the message in at least one language.")]
    if errors:
        field = next(iter(errors))
        raise ApplicationError(" ".join(errors[field]), code="invalid", extra={"field": field, "fields": errors})
    return cleaned


def _invalid(error: ValidationError) -> ApplicationError:
    fields = getattr(error, "message_dict", {})
    field = next((name for name in fields if name != "__all__"), None)
    return ApplicationError(" ".join(error.messages), code="invalid", extra={"field": field, "fields": fields})


@transaction.atomic
def message_save(
    *,
    program: Program,
    campaign: Campaign | None = None,
    message: Message | None = None,
    kind: str,
    name: str,
    texts: dict[str, tuple[str, str]],
    created_by=None,
) -> Message:
    """Create a message (message=None) or change a draft, with one subject and body per language.
    A change of its texts, kind or campaign clears `previewed_at`: what was previewed is no longer what
    would be sent."""
    if message is None:
        message = Message(program=program, created_by=created_by)
        old = None
    else:
        message = Message.objects.select_for_update().get(pk=message.pk)
        if message.program_id != program.pk:
            raise ApplicationError(_("This message belongs to another program."), code="invalid")
        if message.status != Message.Status.DRAFT:
            raise ApplicationError(
                _("This message is being sent or was sent: it can no longer change. Write a new one."),
                code="message_not_draft",
            )
        old = (message.kind, message.campaign_id, {t.language: (t.subject, t.body) for t in message.texts.all()})
    if campaign is not None and campaign.program_id != program.pk:
        raise ApplicationError(_("Choose a campaign of this program."), code="invalid", extra={"field": "campaign"})
    if kind == Message.Kind.MARKETING and campaign is None:
        raise ApplicationError(
            _("A marketing message goes to a campaign's members: choose the campaign, or make it a service message."),
            code="invalid",
            extra={"field": "campaign"},
        )
    cleaned = _clean_texts(texts)
    message.kind, message.name, message.campaign = kind, (name or "").strip(), campaign
    if old != (kind, campaign.pk if campaign else None, cleaned):
        message.previewed_at = None
    try:
        message.full_clean()
    except ValidationError as error:
        raise _invalid(error) from None
    message.save()
    message.texts.exclude(language__in=list(cleaned)).delete()
    existing = {text.language: text for text in message.texts.all()}
    for language, (subject, body) in cleaned.items():
        text = existing.get(language) or MessageText(message=message, language=language)
        text.subject, text.body = subject, body
        try:
            text.full_clean()
        except ValidationError as error:
            fields = {f"{field}_{language}": problems for field, problems in error.message_dict.items()}
            raise _invalid(ValidationError(fields)) from None
        text.save()
    return message


@transaction.atomic
def message_preview(*, message: Message, account: Account, as_of=None) -> Rendered:
    """What one member would get; records that the message was previewed (the launch checklist asks for it)."""
    rendered = message_render(message=message, account=account, as_of=as_of)
    Message.objects.filter(pk=message.pk).update(previewed_at=timezone.now())
    return rendered


def _write_audience(message: Message) -> None:
    """One row per member the message concerns, in one statement: queued to email, or skipped with why."""
    send, member = MessageSend._meta.db_table, Member._meta.db_table
    account, campaign_member = Account._meta.db_table, CampaignMember._meta.db_table
    if message.kind == Message.Kind.MARKETING:
        note = (
            "CASE WHEN cm.held_out THEN %s WHEN m.status <> %s THEN %s WHEN m.email = '' THEN %s"
            " WHEN NOT m.marketing_consent THEN %s ELSE '' END"
        )
        note_params = [NOTE_CONTROL_GROUP, Member.Status.ACTIVE, NOTE_NOT_ACTIVE, NOTE_NO_EMAIL, NOTE_NO_CONSENT]
        audience = (
            f"FROM {campaign_member} cm JOIN {account} a ON a.id = cm.account_id JOIN {member} m ON m.id = a.member_id"
            " WHERE cm.campaign_id = %s AND a.program_id = %s"
        )
        audience_params = [message.campaign_id, message.program_id]
    else:
        note = "CASE WHEN m.email = '' THEN %s ELSE '' END"
        note_params = [NOTE_NO_EMAIL]
        audience = f"FROM {account} a JOIN {member} m ON m.id = a.member_id WHERE a.program_id = %s AND m.status = %s"
        audience_params = [message.program_id, Member.Status.ACTIVE]
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {send} (message_id, member_id, status, note, email, language, sent_at)"
            f" SELECT %s, audience.member_id, CASE WHEN audience.note = '' THEN %s ELSE %s END, audience.note, '', '', NULL"
            f" FROM (SELECT a.member_id, {note} AS note {audience}) audience WHERE audience.member_id IS NOT NULL"
            " ON CONFLICT (message_id, member_id) DO NOTHING",
            [message.pk, MessageSend.Status.QUEUED, MessageSend.Status.SKIPPED, *note_params, *audience_params],
        )


@transaction.atomic
def message_send_start(*, message: Message, started_by=None) -> Message:
    """Start sending a previewed draft: mark it sending, write its audience, queue the sending task.
    `started_by` is the person who pressed send (Message has no field for it: it goes to the log)."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.status != Message.Status.DRAFT:
        raise ApplicationError(_("This message is already being sent or was sent."), code="message_not_draft")
    if message.previewed_at is None:
        raise ApplicationError(
            _("Preview the message for a member first: check what they will read before it goes out."),
            code="message_not_previewed",
        )
    _texts(message)  # refuses a message without text
    if message.kind == Message.Kind.MARKETING and message.campaign_id is None:
        raise ApplicationError(_("A marketing message needs its campaign."), code="invalid")
    message.status, message.send_started_at = Message.Status.SENDING, timezone.now()
    message.save(update_fields=["status", "send_started_at"])
    _write_audience(message)
    _queue_sending(message)
    logger.info("Message %s (%s): sending started by %s", message.pk, message.name, started_by)
    return message


def _queue_sending(message: Message) -> None:
    from campaigns import tasks  # the tasks module imports this one

    tasks.send_message.delay_on_commit(message.pk)


@transaction.atomic
def message_send_resume(*, message: Message) -> Message:
    """Queue the sending again for a message still marked sending (after a worker was lost): the rows it
    sent stay sent, the queued ones go out."""
    message = Message.objects.select_for_update().get(pk=message.pk)
    if message.status != Message.Status.SENDING:
        raise ApplicationError(_("Only a message being sent can be resumed."), code="message_not_sending")
    _queue_sending(message)
    return message


def claim_to_send(queued, *, limit: int, order_by: str) -> list:
    """Up to `limit` rows of a send log (`queued`: a queryset of queued rows with `status` and `note`)
    that nobody else holds, marked interrupted and committed before anything is sent: a worker killed
    mid-batch may leave a few unsent, but never emails anyone twice."""
    with transaction.atomic():
        claimed = list(queued.order_by(order_by).select_for_update(skip_locked=True)[:limit])
        if claimed:
            queued.model.objects.filter(pk__in=[row.pk for row in claimed]).update(
                status=queued.model.Status.FAILED, note=NOTE_INTERRUPTED
            )
    return claimed


def message_send_batch(*, message: Message, limit: int = BATCH_SIZE, as_of=None) -> int:
    """Send up to `limit` queued emails of a message being sent, over one mail connection; returns how
    many rows it handled (0: none left to take). A fixed number of queries per batch. A member who
    withdrew consent, lost their email or left since the audience was written is skipped, not emailed."""
    message = Message.objects.select_related("program", "campaign").get(pk=message.pk)
    if message.status != Message.Status.SENDING:
        return 0
    texts = _texts(message)
    # In member order: the walk of the (message, member) unique index stops after `limit` queued rows.
    rows = claim_to_send(
        MessageSend.objects.filter(message_id=message.pk, status=MessageSend.Status.QUEUED),
        limit=limit,
        order_by="member_id",
    )
    if not rows:
        return 0
    accounts = {
        account.member_id: account
        for account in Account.objects.filter(
            program_id=message.program_id, member_id__in=[row.member_id for row in rows]
        ).select_related("member")
    }
    facts = facts_for_accounts(
        accounts=list(accounts.values()), program=message.program, campaign=message.campaign, as_of=as_of
    )
    outgoing = []
    for row in rows:
        account = accounts.get(row.member_id)
        refusal = _refusal(message, account)
        if refusal:
            row.status, row.note = MessageSend.Status.SKIPPED, refusal
            continue
        member = account.member
        rendered = _render(message=message, texts=texts, member=member, facts=facts[account.pk])
        headers = {"List-Unsubscribe": f"<{unsubscribe_url(member)}>"} if message.kind == Message.Kind.MARKETING else {}
        email = EmailMessage(
            rendered.subject, rendered.body, settings.DEFAULT_FROM_EMAIL, [member.email], headers=headers
        )
        row.email, row.language = member.email, rendered.language
        outgoing.append((row, email))
    _send(outgoing)
    MessageSend.objects.bulk_update(rows, ["status", "note", "email", "language", "sent_at"])
    return len(rows)


def _refusal(message: Message, account: Account | None) -> str:
    if account is None:
        return NOTE_NO_ACCOUNT
    member = account.member
    if member.status != Member.Status.ACTIVE:
        return NOTE_NOT_ACTIVE
    if not member.email:
        return NOTE_NO_EMAIL
    if message.kind == Message.Kind.MARKETING and not member.marketing_consent:
        return NOTE_NO_CONSENT
    return ""


def _send(outgoing: list[tuple[MessageSend, EmailMessage]]) -> None:
    """Each email on its own over one connection, so a refused address fails alone and says why."""
    if not outgoing:
        return
    mail = get_connection(fail_silently=False)
    try:
        mail.open()
    except Exception as error:
        for row, _email in outgoing:
            row.status, row.note = MessageSend.Status.FAILED, _error_note(error)
        return
    try:
        for row, email in outgoing:
            try:
                mail.send_messages([email])
            except Exception as error:
                row.status, row.note = MessageSend.Status.FAILED, _error_note(error)
            else:
                row.status, row.note, row.sent_at = MessageSend.Status.SENT, "", timezone.now()
    finally:
        mail.close()


def _error_note(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:200]


def message_sent_mark(*, message: Message) -> bool:
    """Mark the message sent once no row is queued any more (one statement: only one worker does it)."""
    queued = MessageSend.objects.filter(message_id=message.pk, status=MessageSend.Status.QUEUED)
    return bool(
        Message.objects.filter(pk=message.pk, status=Message.Status.SENDING)
        .exclude(pk__in=queued.values("message_id"))
        .update(status=Message.Status.SENT, sent_at=timezone.now())
    )


def member_for_unsubscribe(token: str) -> Member | None:
    """The member an unsubscribe link was made for, or None when the link is forged or mistyped."""
    try:
        member_id = signing.Signer(salt=UNSUBSCRIBE_SALT).unsign(token)
    except signing.BadSignature:
        return None
    return Member.objects.filter(pk=int(member_id)).first() if member_id.isdigit() else None


@transaction.atomic
def unsubscribe(*, token: str) -> Member:
    """Withdraw the member's marketing consent (recorded in their consent history); service messages go on."""
    member = member_for_unsubscribe(token)
    if member is None:
        raise ApplicationError(
            _(
                "This unsubscribe link is not valid. Copy the whole link from the email, or change your choice in your profile."
            ),
            code="bad_token",
        )
    return member_consent_set(member=member, granted=False, channel=Member.Channel.ONLINE)


# --- reads for the staff pages ---------------------------------------------------------------------


def program_messages(*, program: Program) -> QuerySet[Message]:
    """The program's messages, newest first, each with its send log counted per status (one query)."""
    counts = {f"{status}_count": Count("sends", filter=Q(sends__status=status)) for status in MessageSend.Status.values}
    return Message.objects.filter(program=program).select_related("campaign").annotate(**counts)


def message_send_counts(*, message: Message) -> dict[str, int]:
    """{status: rows} of the message's send log, every status present."""
    counts = dict.fromkeys(MessageSend.Status.values, 0)
    rows = MessageSend.objects.filter(message_id=message.pk).values("status").annotate(n=Count("pk")).order_by()
    counts.update({row["status"]: row["n"] for row in rows})
    return counts


def message_send_log(*, message: Message, status: str = "") -> QuerySet[MessageSend]:
    """The send log, one row per member, in the order the audience was written; paginate it."""
    sends = MessageSend.objects.filter(message_id=message.pk).select_related("member").order_by("pk")
    return sends.filter(status=status) if status else sends


def preview_account(*, message: Message, member_no: str = "") -> Account | None:
    """The member to preview for: the one with this card number in the program, else the campaign's first
    member (treatment before control), else the program's first active member."""
    accounts = Account.objects.filter(program_id=message.program_id).select_related("member")
    if member_no.strip():
        return accounts.filter(member__member_no=member_no.strip()).first()
    if message.campaign_id:
        first = (
            CampaignMember.objects.filter(campaign_id=message.campaign_id)
            .order_by("held_out", "account_id")
            .values_list("account_id", flat=True)
            .first()
        )
        if first is not None:
            return accounts.filter(pk=first).first()
    return accounts.filter(member__status=Member.Status.ACTIVE).order_by("pk").first()
