"""Program transitions: new terms that members accept again, notices by name, and the migration of every
account to a new program (services and selectors).

- A transition is opened for a `TermsVersion` that requires re-acceptance, with an announcement day, a
  deadline to accept and a cut-over day. Announcing it writes one notice per active member (email when
  they have an address, a printed letter otherwise: campaigns.letters); reminders go to those who have
  not accepted. `TransitionNotice` is the log: one row per member and notice, so none is sent twice.
- Members accept online, or at the desk (loyalty.services.terms_accept records version, time, channel,
  who and where).
- The migration plan decides one outcome per account (`decide`, a pure function the dry run and the
  job share): accepted -> migrated to the target program at the conversion rate with the mapped tier;
  never accepted -> a voucher worth the balance's value plus an uplift, or closed. Pending points are
  released at the cut-over and move with the rest. The job `campaigns.migrate_transition` runs it in
  chunks of account ids (one transaction each, `MigrationOutcome` written with the ledger entries), so a
  crash loses at most the chunk it was on and a re-run skips the accounts already done.
"""

import datetime
import logging
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.mail import EmailMessage, get_connection
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format, number_format
from django.utils.translation import gettext as _

from campaigns import messaging
from campaigns.models import MigrationOutcome, MigrationPlan, Transition, TransitionNotice
from loyalty import engine
from loyalty import services as engine_services
from loyalty.core import jobs
from loyalty.core.exceptions import ApplicationError
from loyalty.models import Account, Program, TermsAcceptance, TermsVersion, Tier
from loyalty.selectors import qualifying_total
from members.models import Member, Store
from rewards.models import Reward, Voucher
from rewards.selectors import catalogue_for_account
from rewards.services import voucher_issue

logger = logging.getLogger(__name__)

MIGRATION_JOB = "campaigns.migrate_transition"
# Members who are told, and who get a voucher rather than lose their points: all but closed memberships.
TOLD = (Member.Status.ACTIVE, Member.Status.SUSPENDED)
NOTICE_BATCH_SIZE = 500


def _invalid(error: ValidationError) -> ApplicationError:
    fields = getattr(error, "message_dict", {})
    field_name = next((name for name in fields if name != "__all__"), None)
    return ApplicationError(" ".join(error.messages), code="invalid", extra={"field": field_name, "fields": fields})


def _full_clean(instance) -> None:
    try:
        instance.full_clean()
    except ValidationError as error:
        raise _invalid(error) from None


# --- the outcome of one account (shared by the dry run and the job) --------------------------------


@dataclass(frozen=True)
class Decision:
    state: str
    accepted: bool
    points_out: int  # the balance plus the pending points released at the cut-over
    pending: int
    points_in: int = 0
    to_tier: Tier | None = None
    voucher_amount: Decimal | None = None


def convert_points(plan: MigrationPlan, points: int) -> int:
    """Old points -> new points at the plan's rate and rounding."""
    return int((Decimal(points) * plan.conversion_rate).to_integral_value(rounding=engine.ROUNDING[plan.rounding]))


def voucher_value(plan: MigrationPlan, points: int, program: Program) -> Decimal:
    """The balance's value at the program's point value, plus the uplift, to the cent (half up)."""
    value = Decimal(points) * program.point_value * (Decimal(100) + plan.uplift_percent) / Decimal(100)
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


def decide(
    *, plan: MigrationPlan, account: Account, accepted: bool, new_tier: Tier | None, program: Program
) -> Decision:
    """What the migration does to one account. `new_tier` is the tier the mapping gives (see `mapped_tier`)."""
    points = account.balance + account.pending
    if accepted and account.member.status in TOLD:  # a membership closed since accepting is not carried over
        return Decision(
            state=MigrationOutcome.State.MIGRATED,
            accepted=True,
            points_out=points,
            pending=account.pending,
            points_in=convert_points(plan, points),
            to_tier=new_tier,
        )
    if plan.unaccepted == MigrationPlan.Unaccepted.VOUCHER and points > 0:
        amount = voucher_value(plan, points, program)
        if amount > 0 and account.member.status in TOLD:
            return Decision(
                state=MigrationOutcome.State.CONVERTED,
                accepted=False,
                points_out=points,
                pending=account.pending,
                voucher_amount=amount,
            )
    return Decision(state=MigrationOutcome.State.CLOSED, accepted=accepted, points_out=points, pending=account.pending)


def mapped_tier(*, plan: MigrationPlan, account: Account, new_tiers: list[Tier], as_of: datetime.datetime) -> Tier:
    """The new tier: the mapping's, or (re-evaluate, the default) the highest new tier whose threshold the
    member's qualifying total in their current window reaches."""
    target = plan.tier_mapping.get(str(account.tier_id), MigrationPlan.RE_EVALUATE)
    by_id = {tier.pk: tier for tier in new_tiers}
    if target != MigrationPlan.RE_EVALUATE and int(target) in by_id:
        return by_id[int(target)]
    start, end = engine.qualification_window(account.program, as_of)
    earned = engine.tier_for(new_tiers, qualifying_total(account=account, start=start, end=end))
    return earned or min(new_tiers, key=lambda tier: tier.rank)


# --- selectors ---------------------------------------------------------------------------------------


def program_transitions(*, program: Program) -> QuerySet[Transition]:
    return Transition.objects.filter(program=program).select_related("terms", "plan__target_program")


def transition_get(*, program: Program, pk: int) -> Transition:
    return program_transitions(program=program).get(pk=pk)


def _accepted(transition: Transition):
    return Exists(TermsAcceptance.objects.filter(account=OuterRef("pk"), terms_id=transition.terms_id))


def transition_accounts(*, transition: Transition) -> QuerySet[Account]:
    """The program's accounts, each with `accepted` (the new terms)."""
    return (
        Account.objects.filter(program_id=transition.program_id)
        .annotate(accepted=_accepted(transition))
        .select_related("member", "tier", "program")
        .order_by("pk")
    )


@dataclass
class MemberTransition:
    transition: Transition
    account: Account
    accepted: bool
    decision_if_accepted: Decision | None
    decision_if_not: Decision | None
    acceptance: TermsAcceptance | None = None
    burn_offers: list = field(default_factory=list)  # the burn window's rewards, as this member sees them


def _member_figures(transition: Transition, account: Account, as_of=None):
    plan = getattr(transition, "plan", None)
    if plan is None:
        return None, None
    new_tiers = list(plan.target_program.tiers.order_by("rank"))
    tier = (
        mapped_tier(plan=plan, account=account, new_tiers=new_tiers, as_of=as_of or timezone.now())
        if new_tiers
        else None
    )
    program = transition.program
    return (
        decide(plan=plan, account=account, accepted=True, new_tier=tier, program=program),
        decide(plan=plan, account=account, accepted=False, new_tier=None, program=program),
    )


def member_transitions(
    *, member: Member, programs: list[int] | None = None, on: datetime.date | None = None, with_rewards: bool = True
) -> list[MemberTransition]:
    """Announced transitions of the member's programs (or of `programs` only: a clerk's), still open to
    acceptance (the dashboard banner, the acceptance page, the desk): each with the account, whether they
    accepted, and what happens either way."""
    on = on or timezone.localdate()
    transitions = Transition.objects.all() if programs is None else Transition.objects.filter(program__in=programs)
    transitions = (
        transitions.filter(
            status=Transition.Status.ANNOUNCED,
            announce_on__lte=on,
            accept_by__gte=on,
            program__accounts__member=member,
        )
        .select_related("program", "terms", "plan__target_program")
        .order_by("accept_by", "pk")
    )
    accounts = {
        account.program_id: account
        for account in Account.objects.filter(member=member).select_related("member", "tier", "program")
    }
    acceptances = {
        a.terms_id: a
        for a in TermsAcceptance.objects.filter(account__member=member, terms__in=[t.terms_id for t in transitions])
    }
    found = []
    for transition in transitions:
        account = accounts[transition.program_id]
        if_accepted, if_not = _member_figures(transition, account)
        acceptance = acceptances.get(transition.terms_id)
        burn = set(transition.burn_rewards.values_list("pk", flat=True)) if with_rewards else set()
        offers = [o for o in catalogue_for_account(account=account) if o.reward.pk in burn][:4] if burn else []
        found.append(
            MemberTransition(transition, account, acceptance is not None, if_accepted, if_not, acceptance, offers)
        )
    return found


def member_transition(*, member: Member, pk: int) -> MemberTransition | None:
    return next((found for found in member_transitions(member=member) if found.transition.pk == pk), None)


@dataclass
class DryRun:
    rows: list[dict]  # the first `limit` accounts' outcomes, for the page
    totals: dict = field(default_factory=dict)


def transition_dry_run(*, transition: Transition, limit: int | None = 100, as_of=None) -> DryRun:
    """The outcome for every account and the totals, before anything is written. Rows carry the tier
    only for the first `limit` accounts (a tier re-evaluation reads each member's history); the totals
    cover every account, read in id order in batches."""
    plan = transition.plan
    as_of = as_of or timezone.now()
    program = transition.program
    new_tiers = list(plan.target_program.tiers.order_by("rank"))
    states = dict.fromkeys(MigrationOutcome.State.values, 0)
    totals = {
        "accounts": 0,
        "accepted": 0,
        "points_out": 0,
        "pending_released": 0,
        "points_in": 0,
        "vouchers": 0,
        "voucher_value": Decimal("0"),
        "points_closed": 0,
        "points_converted": 0,
    }
    rows = []
    done = set(MigrationOutcome.objects.filter(transition=transition).values_list("account_id", flat=True))
    for account in transition_accounts(transition=transition).iterator(chunk_size=2000):
        tier = None
        if account.accepted and new_tiers and (limit is None or len(rows) < limit):
            tier = mapped_tier(plan=plan, account=account, new_tiers=new_tiers, as_of=as_of)
        decision = decide(plan=plan, account=account, accepted=account.accepted, new_tier=tier, program=program)
        states[decision.state] += 1
        totals["accounts"] += 1
        totals["accepted"] += decision.accepted
        totals["points_out"] += decision.points_out
        totals["pending_released"] += decision.pending
        totals["points_in"] += decision.points_in
        if decision.state == MigrationOutcome.State.CONVERTED:
            totals["vouchers"] += 1
            totals["voucher_value"] += decision.voucher_amount
            totals["points_converted"] += decision.points_out
        elif decision.state == MigrationOutcome.State.CLOSED:
            totals["points_closed"] += decision.points_out
        if limit is None or len(rows) < limit:
            rows.append({"account": account, "decision": decision, "done": account.pk in done})
    totals["states"] = states
    totals["liability_before"] = totals["points_out"] * program.point_value
    totals["liability_migrated"] = totals["points_in"] * plan.target_program.point_value
    totals["liability_after"] = totals["liability_migrated"] + totals["voucher_value"]
    totals["liability_released"] = totals["liability_before"] - totals["liability_after"]
    totals["liability_added"] = max(-totals["liability_released"], 0)  # new points may be worth more
    totals["vouchers_outstanding"] = Voucher.objects.filter(
        program=program, status=Voucher.Status.ACTIVE, valid_until__gte=timezone.localdate()
    ).count()
    totals["already_done"] = len(done)
    return DryRun(rows=rows, totals=totals)


def transition_report(*, transition: Transition) -> dict:
    """Acceptance over time, members told per channel, members lost, balances converted, liability before
    and after (from the outcomes once migrated)."""
    program = transition.program
    accounts = Account.objects.filter(program_id=transition.program_id)
    members = accounts.count()
    by_day = list(
        TermsAcceptance.objects.filter(terms_id=transition.terms_id, account__program_id=transition.program_id)
        .annotate(day=TruncDate("accepted_at"))
        .values("day", "channel")
        .annotate(n=Count("pk"))
        .order_by("day", "channel")
    )
    days: dict = {}
    for row in by_day:
        days.setdefault(row["day"], {"online": 0, "desk": 0, "other": 0})
        key = row["channel"] if row["channel"] in {"online", "desk"} else "other"
        days[row["day"]][key] += row["n"]
    running, timeline = 0, []
    for day in sorted(days):
        running += sum(days[day].values())
        timeline.append(
            {"day": day, **days[day], "accepted": running, "rate": (100 * running / members) if members else 0}
        )
    sent = TransitionNotice.objects.filter(transition=transition, status=TransitionNotice.Status.SENT)
    reminded = sent.filter(reminder__gt=0).values("account_id").distinct().count()
    told_by_channel = dict(
        sent.values("channel").annotate(n=Count("account", distinct=True)).values_list("channel", "n")
    )
    outcomes = MigrationOutcome.objects.filter(transition=transition)
    by_state = {
        row["state"]: row
        for row in outcomes.values("state").annotate(
            n=Count("pk"),
            points_out=Sum("points_out", default=0),
            points_in=Sum("points_in", default=0),
            vouchers=Sum("voucher_amount", default=Decimal("0")),
        )
    }

    def of(state: str, key: str, default=0):
        return by_state.get(state, {}).get(key, default)

    plan = getattr(transition, "plan", None)
    points_out = sum(row["points_out"] for row in by_state.values())
    before = points_out * program.point_value
    migrated_value = of("migrated", "points_in") * (plan.target_program.point_value if plan else Decimal("0"))
    voucher_total = of("converted", "vouchers", Decimal("0"))
    accepted = timeline[-1]["accepted"] if timeline else 0
    return {
        "members": members,
        "accepted": accepted,
        "acceptance_rate": (100 * accepted / members) if members else 0,
        "timeline": timeline,
        "told_email": told_by_channel.get(TransitionNotice.Channel.EMAIL, 0),
        "told_letter": told_by_channel.get(TransitionNotice.Channel.LETTER, 0),
        "reminded": reminded,
        "migrated": of("migrated", "n"),
        "converted": of("converted", "n"),
        "lost": of("converted", "n") + of("closed", "n"),
        "closed": of("closed", "n"),
        "points_out": points_out,
        "points_in": of("migrated", "points_in"),
        "points_converted": of("converted", "points_out"),
        "points_closed": of("closed", "points_out"),
        "voucher_value": voucher_total,
        "liability_before": before,
        "liability_after": migrated_value + voucher_total,
        "liability_released": before - migrated_value - voucher_total,
        "liability_added": max(migrated_value + voucher_total - before, 0),
        "outstanding_now": accounts.aggregate(points=Sum("balance", default=0))["points"] * program.point_value,
        "currency": program.currency,
    }


# --- services: the transition and its plan --------------------------------------------------------


@transaction.atomic
def transition_create(
    *,
    program: Program,
    terms: TermsVersion,
    name: str,
    announce_on: datetime.date,
    accept_by: datetime.date,
    cutover_on: datetime.date,
    created_by=None,
) -> Transition:
    if terms.program_id != program.pk:
        raise ApplicationError(_("Choose terms of this program."), code="invalid", extra={"field": "terms"})
    if not terms.requires_reacceptance:
        raise ApplicationError(
            _("These terms do not ask members to accept again; choose a version that does."),
            code="invalid",
            extra={"field": "terms"},
        )
    if accept_by < announce_on or cutover_on <= accept_by:
        raise ApplicationError(
            _("Announce first, then the deadline to accept, then the cut-over on a later day."),
            code="invalid",
            extra={"field": "accept_by"},
        )
    transition = Transition(
        program=program,
        terms=terms,
        name=(name or "").strip() or str(terms),
        announce_on=announce_on,
        accept_by=accept_by,
        cutover_on=cutover_on,
        created_by=created_by,
    )
    _full_clean(transition)
    transition.save()
    return transition


@transaction.atomic
def migration_plan_save(
    *,
    transition: Transition,
    target_program: Program,
    conversion_rate: Decimal,
    rounding: str,
    tier_mapping: dict,
    unaccepted: str,
    uplift_percent: Decimal = Decimal("0"),
    voucher_valid_days: int = 365,
    updated_by=None,
) -> MigrationPlan:
    """Create or change the plan while nothing has moved yet."""
    transition = Transition.objects.select_for_update().get(pk=transition.pk)
    if transition.status in {Transition.Status.MIGRATING, Transition.Status.COMPLETED}:
        raise ApplicationError(_("The migration has started: its plan can no longer change."), code="invalid")
    if target_program.pk == transition.program_id:
        raise ApplicationError(
            _("Choose the new program the accounts move to."), code="invalid", extra={"field": "target_program"}
        )
    new_tiers = set(target_program.tiers.values_list("pk", flat=True))
    old_tiers = set(transition.program.tiers.values_list("pk", flat=True))
    mapping = {}
    for old, new in (tier_mapping or {}).items():
        if int(old) not in old_tiers:
            raise ApplicationError(_("Map the tiers of this program only."), code="invalid")
        if new == MigrationPlan.RE_EVALUATE or new in ("", None):
            mapping[str(old)] = MigrationPlan.RE_EVALUATE
        elif int(new) in new_tiers:
            mapping[str(old)] = int(new)
        else:
            raise ApplicationError(
                _("Map each tier to a tier of the new program, or re-evaluate it."),
                code="invalid",
                extra={"field": f"tier_{old}"},
            )
    plan = MigrationPlan.objects.filter(transition=transition).first() or MigrationPlan(transition=transition)
    plan.target_program = target_program
    plan.conversion_rate = conversion_rate
    plan.rounding = rounding
    plan.tier_mapping = mapping
    plan.unaccepted = unaccepted
    plan.uplift_percent = uplift_percent
    plan.voucher_valid_days = voucher_valid_days
    plan.updated_by = updated_by
    _full_clean(plan)
    plan.save()
    return plan


@transaction.atomic
def transition_burn_rewards_set(*, transition: Transition, rewards: list[Reward]) -> Transition:
    """The rewards the member pages put forward until the cut-over (the burn window)."""
    transition = Transition.objects.select_for_update().get(pk=transition.pk)
    if transition.status in {Transition.Status.MIGRATING, Transition.Status.COMPLETED}:
        raise ApplicationError(_("The cut-over has passed: there is no window left to use points in."), code="invalid")
    if any(reward.program_id != transition.program_id for reward in rewards):
        raise ApplicationError(_("Choose rewards of this program."), code="invalid", extra={"field": "burn_rewards"})
    transition.burn_rewards.set(rewards)
    return transition


# --- acceptance --------------------------------------------------------------------------------------


@transaction.atomic
def transition_accept(
    *, transition: Transition, account: Account, channel: str, recorded_by=None, store: Store | None = None
) -> TermsAcceptance:
    """Record the member's acceptance of the new terms (online or at the desk), until the deadline."""
    if account.program_id != transition.program_id:
        raise ApplicationError(_("This member has no account in the program."), code="not_found")
    if transition.status != Transition.Status.ANNOUNCED or not (
        transition.announce_on <= timezone.localdate() <= transition.accept_by
    ):
        raise ApplicationError(
            _("The new terms can no longer be accepted: the deadline was %(date)s.")
            % {"date": date_format(transition.accept_by, "DATE_FORMAT")}
            if timezone.localdate() > transition.accept_by
            else _("The new terms are not open for acceptance yet."),
            code="transition_closed",
        )
    if account.member.status != Member.Status.ACTIVE:
        raise ApplicationError(_("Only an active member can accept the new terms."), code="member_not_active")
    return engine_services.terms_accept(
        account=account, terms=transition.terms, channel=channel, recorded_by=recorded_by, store=store
    )


# --- notices -----------------------------------------------------------------------------------------


def _write_notices(transition: Transition, reminder: int) -> int:
    """One notice per active member (email when they have an address, else a letter), in one statement;
    reminders only to those who have not accepted. Existing rows stay as they are."""
    notice, account = TransitionNotice._meta.db_table, Account._meta.db_table
    member, acceptance = Member._meta.db_table, TermsAcceptance._meta.db_table
    not_accepted = (
        f" AND NOT EXISTS (SELECT 1 FROM {acceptance} t WHERE t.account_id = a.id AND t.terms_id = %s)"
        if reminder
        else ""
    )
    params = [
        transition.pk,
        reminder,
        TransitionNotice.Channel.LETTER,
        TransitionNotice.Channel.EMAIL,
        TransitionNotice.Status.QUEUED,
        timezone.now(),
        transition.program_id,
        *TOLD,
    ] + ([transition.terms_id] if reminder else [])
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {notice} (transition_id, account_id, reminder, channel, status, email, language, note,"
            " sent_at, created_at)"
            " SELECT %s, a.id, %s, CASE WHEN m.email = '' THEN %s ELSE %s END, %s, '', '', '', NULL, %s"
            f" FROM {account} a JOIN {member} m ON m.id = a.member_id WHERE a.program_id = %s AND m.status IN (%s, %s)"
            f"{not_accepted} ON CONFLICT (transition_id, account_id, reminder) DO NOTHING",
            params,
        )
        return cursor.rowcount


def _queue_notices(transition: Transition) -> None:
    from campaigns import tasks  # the tasks module imports this one

    tasks.send_transition_notices.delay_on_commit(transition.pk)


@transaction.atomic
def transition_announce(*, transition: Transition, announced_by=None) -> Transition:
    """Open the transition to acceptance and tell every member by name (reminder 0)."""
    transition = Transition.objects.select_for_update().get(pk=transition.pk)
    if transition.status != Transition.Status.DRAFT:
        raise ApplicationError(_("This transition was already announced."), code="invalid")
    if timezone.localdate() < transition.announce_on:
        raise ApplicationError(
            _("The announcement goes out from %(date)s, the day set for it.")
            % {"date": date_format(transition.announce_on, "DATE_FORMAT")},
            code="before_announcement",
        )
    if not hasattr(transition, "plan"):
        raise ApplicationError(
            _("Save the migration plan first: the notice tells each member what happens to their points."),
            code="no_plan",
        )
    transition.status, transition.announced_at = Transition.Status.ANNOUNCED, timezone.now()
    transition.save(update_fields=["status", "announced_at"])
    _write_notices(transition, 0)
    _queue_notices(transition)
    logger.info("Transition %s announced by %s", transition.pk, announced_by)
    return transition


@transaction.atomic
def transition_remind(*, transition: Transition) -> int:
    """A reminder to every member who has not accepted yet; returns how many it concerns."""
    transition = Transition.objects.select_for_update().get(pk=transition.pk)
    if transition.status != Transition.Status.ANNOUNCED or timezone.localdate() > transition.accept_by:
        raise ApplicationError(_("Reminders go out only while members can still accept."), code="invalid")
    last = transition.notices.order_by("-reminder").values_list("reminder", flat=True).first() or 0
    written = _write_notices(transition, last + 1)
    _queue_notices(transition)
    return written


def notice_context(*, transition: Transition, account: Account) -> dict:
    """What a notice (email or letter) says to one member, in the active language."""
    if_accepted, if_not = _member_figures(transition, account)
    program = transition.program
    plan = transition.plan
    return {
        "member": account.member,
        "account": account,
        "program": program,
        "transition": transition,
        "plan": plan,
        "balance": account.balance + account.pending,
        "tier": account.tier,
        "if_accepted": if_accepted,
        "if_not": if_not,
        "accept_by": transition.accept_by,
        "cutover_on": transition.cutover_on,
        "accept_url": settings.SITE_URL + reverse("me:transition", args=[transition.pk]),
    }


def _notice_subject(transition: Transition, reminder: int) -> str:
    if reminder:
        return _("Reminder: accept the new terms of %(program)s by %(date)s") % {
            "program": transition.program.name,
            "date": date_format(transition.accept_by, "DATE_FORMAT"),
        }
    return _("%(program)s is changing: what happens to your points") % {"program": transition.program.name}


def notice_email(*, transition: Transition, account: Account, reminder: int) -> tuple[str, str, str]:
    """(subject, body, language) of one member's notice, in their language."""
    language = account.member.language or settings.LANGUAGE_CODE
    with translation.override(language):
        body = render_to_string(
            "email/transition_notice.txt",
            {**notice_context(transition=transition, account=account), "reminder": reminder},
        )
        return " ".join(_notice_subject(transition, reminder).split()), body, translation.get_language()


def notice_emails_send_batch(*, transition: Transition, limit: int = NOTICE_BATCH_SIZE) -> int:
    """Send up to `limit` queued email notices over one connection; returns how many rows it handled."""
    transition = Transition.objects.select_related("program", "terms", "plan__target_program").get(pk=transition.pk)
    rows = messaging.claim_to_send(
        TransitionNotice.objects.filter(
            transition=transition, channel=TransitionNotice.Channel.EMAIL, status=TransitionNotice.Status.QUEUED
        ),
        limit=limit,
        order_by="account_id",
    )
    if not rows:
        return 0
    accounts = {
        account.pk: account
        for account in Account.objects.filter(pk__in=[row.account_id for row in rows]).select_related(
            "member", "tier", "program"
        )
    }
    outgoing = []
    for row in rows:
        account = accounts[row.account_id]
        member = account.member
        if member.status not in TOLD or not member.email:
            row.status, row.note = TransitionNotice.Status.FAILED, "The member is not active or has no email"
            continue
        subject, body, language = notice_email(transition=transition, account=account, reminder=row.reminder)
        row.email, row.language = member.email, language
        outgoing.append((row, EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email])))
    if outgoing:
        mail = get_connection(fail_silently=False)
        try:
            mail.open()
            for row, email in outgoing:
                try:
                    mail.send_messages([email])
                except Exception as error:  # one refused address fails alone and says why
                    row.status, row.note = TransitionNotice.Status.FAILED, f"{type(error).__name__}: {error}"[:200]
                else:
                    row.status, row.note, row.sent_at = TransitionNotice.Status.SENT, "", timezone.now()
        except Exception as error:
            for row, _email in outgoing:
                if row.status != TransitionNotice.Status.SENT:
                    row.status, row.note = TransitionNotice.Status.FAILED, f"{type(error).__name__}: {error}"[:200]
        finally:
            mail.close()
    TransitionNotice.objects.bulk_update(rows, ["status", "note", "email", "language", "sent_at"])
    return len(rows)


def queued_letters(*, transition: Transition) -> QuerySet[TransitionNotice]:
    return (
        TransitionNotice.objects.filter(
            transition=transition, channel=TransitionNotice.Channel.LETTER, status=TransitionNotice.Status.QUEUED
        )
        .select_related("account__member", "account__tier", "account__program")
        .order_by("account__member__postal_code", "account_id", "reminder")
    )


@transaction.atomic
def letters_mark_printed(*, notices: list[TransitionNotice]) -> int:
    """Letters handed to the mail house: logged as sent now, in the member's language."""
    now = timezone.now()
    for notice in notices:
        notice.status, notice.sent_at = TransitionNotice.Status.SENT, now
        notice.language = notice.account.member.language or settings.LANGUAGE_CODE
    TransitionNotice.objects.bulk_update(notices, ["status", "sent_at", "language"])
    return len(notices)


def transition_notice_log(*, transition: Transition) -> QuerySet[TransitionNotice]:
    return (
        TransitionNotice.objects.filter(transition=transition)
        .select_related("account__member")
        .order_by("-reminder", "account_id")
    )


# --- the migration -----------------------------------------------------------------------------------


@transaction.atomic
def transition_migration_start(*, transition: Transition, started_by=None):
    """From the cut-over day: mark the transition migrating and start its job (once; pressing again
    returns the same run)."""
    transition = Transition.objects.select_for_update().get(pk=transition.pk)
    if transition.status in {Transition.Status.MIGRATING, Transition.Status.COMPLETED} and transition.job_run_id:
        return transition.job_run
    if transition.status != Transition.Status.ANNOUNCED:
        raise ApplicationError(_("Announce the transition before migrating its accounts."), code="invalid")
    if not hasattr(transition, "plan"):
        raise ApplicationError(_("Save the migration plan first."), code="no_plan")
    if timezone.localdate() < transition.cutover_on:
        raise ApplicationError(
            _("The accounts move on the cut-over day, %(date)s: members can still accept until then.")
            % {"date": date_format(transition.cutover_on, "DATE_FORMAT")},
            code="before_cutover",
        )
    transition.status, transition.migration_started_at = Transition.Status.MIGRATING, timezone.now()
    transition.save(update_fields=["status", "migration_started_at"])
    run, _created = jobs.job_run_start(job=MIGRATION_JOB, period=f"transition {transition.pk}", requested_by=started_by)
    transition.job_run = run
    transition.save(update_fields=["job_run"])
    return run


def migration_plan_chunks(as_of: datetime.datetime, chunk_size: int):
    """The job's plan: account-id ranges of every transition being migrated."""
    for transition in Transition.objects.filter(status=Transition.Status.MIGRATING).order_by("pk"):
        for low, high in engine_services.account_chunks(program=transition.program, chunk_size=chunk_size):
            yield str(transition.pk), low, high


def _reasons(transition: Transition, account: Account, decision: Decision) -> tuple[str, str]:
    plan = transition.plan
    with translation.override(account.member.language or settings.LANGUAGE_CODE):
        facts = {
            "out": number_format(decision.points_out, force_grouping=True),
            "in": number_format(decision.points_in, force_grouping=True),
            "program": plan.target_program.name,
            "old": transition.program.name,
        }
        if decision.state == MigrationOutcome.State.MIGRATED:
            return (
                _("%(out)s pts moved to %(program)s (new terms accepted)") % facts,
                _("%(in)s pts: %(out)s pts brought over from %(old)s") % facts,
            )
        if decision.state == MigrationOutcome.State.CONVERTED:
            amount = number_format(decision.voucher_amount, decimal_pos=2, force_grouping=True)
            return _("%(out)s pts converted into a voucher of %(amount)s %(currency)s") % {
                **facts,
                "amount": amount,
                "currency": transition.program.currency,
            }, ""
        return _("%(out)s pts lapsed: the new terms were not accepted") % facts, ""


def _voucher_description(transition: Transition, account: Account, decision: Decision) -> str:
    with translation.override(account.member.language or settings.LANGUAGE_CODE):
        return _("Your %(points)s pts of %(program)s") % {
            "points": number_format(decision.points_out, force_grouping=True),
            "program": transition.program.name,
        }


def transition_migrate_chunk(*, transition: Transition, low: int, high: int, as_of: datetime.datetime):
    """Migrate the accounts with ids in [low, high) that have no outcome yet, in one transaction: accounts
    locked in id order, each account's ledger entries, voucher and outcome written together. Returns
    (accounts done, points taken out)."""
    transition = Transition.objects.select_related("program", "terms", "plan__target_program").get(pk=transition.pk)
    plan = transition.plan
    new_tiers = list(plan.target_program.tiers.order_by("rank"))
    done_rows, done_points = 0, 0
    with transaction.atomic():
        accounts = list(
            Account.objects.filter(program_id=transition.program_id, pk__gte=low, pk__lt=high)
            .exclude(pk__in=MigrationOutcome.objects.filter(transition=transition).values("account_id"))
            .select_for_update(of=("self",))
            .select_related("member", "tier", "program")
            .order_by("pk")
        )
        accepted = set(
            TermsAcceptance.objects.filter(terms_id=transition.terms_id, account__in=accounts).values_list(
                "account_id", flat=True
            )
        )
        for account in accounts:
            is_accepted = account.pk in accepted
            tier = mapped_tier(plan=plan, account=account, new_tiers=new_tiers, as_of=as_of) if is_accepted else None
            decision = decide(
                plan=plan, account=account, accepted=is_accepted, new_tier=tier, program=transition.program
            )
            reason_out, reason_in = _reasons(transition, account, decision)
            key = f"~transition:{transition.pk}:{account.pk}"
            result = engine_services.migrate_points(
                from_account=account,
                points_out=decision.points_out,
                reason_out=reason_out,
                idempotency_key=key,
                to_program=plan.target_program if decision.state == MigrationOutcome.State.MIGRATED else None,
                to_tier=decision.to_tier,
                points_in=decision.points_in,
                reason_in=reason_in,
            )
            voucher = None
            if decision.state == MigrationOutcome.State.CONVERTED:
                today = timezone.localdate()
                voucher = voucher_issue(
                    account=account,
                    description=_voucher_description(transition, account, decision),
                    issue_key=key,
                    valid_from=today,
                    valid_until=today + datetime.timedelta(days=plan.voucher_valid_days),
                    amount=decision.voucher_amount,
                    source=transition,
                )
            MigrationOutcome.objects.create(
                transition=transition,
                account=account,
                state=decision.state,
                accepted=is_accepted,
                points_out=decision.points_out,
                pending_released=result.pending_released,
                points_in=decision.points_in,
                to_account=result.to_account,
                to_tier=decision.to_tier,
                voucher=voucher,
                voucher_amount=decision.voucher_amount,
                done_at=timezone.now(),
            )
            done_rows += 1
            done_points += decision.points_out
        transition_complete_if_done(transition=transition)
    return done_rows, done_points


def transition_complete_if_done(*, transition: Transition) -> None:
    """Mark a migrating transition completed once every account has its outcome."""
    left = Account.objects.filter(program_id=transition.program_id).exclude(
        pk__in=MigrationOutcome.objects.filter(transition=transition).values("account_id")
    )
    if not left.exists():
        Transition.objects.filter(pk=transition.pk, status=Transition.Status.MIGRATING).update(
            status=Transition.Status.COMPLETED, completed_at=timezone.now()
        )


def migration_outcomes(*, transition: Transition) -> QuerySet[MigrationOutcome]:
    return (
        MigrationOutcome.objects.filter(transition=transition)
        .select_related("account__member", "to_tier", "voucher")
        .order_by("account_id")
    )


def notice_counts(*, transition: Transition) -> list[dict]:
    """Notices per channel and status (the send log's summary)."""
    return list(
        TransitionNotice.objects.filter(transition=transition)
        .values("channel", "status")
        .annotate(n=Count("pk"))
        .order_by("channel", "status")
    )
