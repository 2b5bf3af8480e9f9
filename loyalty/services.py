"""The points engine's writes. Nothing else changes an Account or adds a LedgerEntry.

Every function is keyword-only and one transaction. Money paths lock the account row first
(`select_for_update`), so all writers of one account take turns; batch jobs lock the accounts of a
chunk in id order. A retry with the same idempotency key returns the first result; the same key
with different content is refused.
"""

import dataclasses
import datetime
import functools
import itertools
import secrets
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Max, Min, Q
from django.db.models.expressions import RawSQL
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty import engine
from loyalty.core import rows
from loyalty.core.exceptions import ApplicationError
from loyalty.core.idempotency import fingerprint as _fingerprint
from loyalty.core.idempotency import key_reused_error as _key_reused
from loyalty.models import (
    EVIDENCE_ACTIVITY_TYPES,
    Account,
    AccountValue,
    Activity,
    ActivityType,
    EarnBudget,
    EarnRuleAudience,
    Invitation,
    LedgerAllocation,
    LedgerEntry,
    Program,
    Purchase,
    PurchaseReturn,
    TermsAcceptance,
    TermsVersion,
    Tier,
    TierBenefit,
    TierChange,
)
from loyalty.selectors import (
    earn_rule_set,
    earned_in_cap_periods,
    locked,
    program_tiers,
    qualifying_total,
    store_account,
)
from members.models import Member, Store
from members.services import member_by_referral_code, member_create, phone_normalise

# Rows per statement of a bulk write over an unbounded list: PostgreSQL takes at most 65,535 parameters in
# one statement once they are sent apart from the SQL (DATABASE_PREPARED_STATEMENTS).
BULK_BATCH = 5_000
MAX_PURCHASE_AMOUNT = Decimal(getattr(settings, "LOYALTY_MAX_PURCHASE_AMOUNT", "1000000"))
MAX_ADJUSTMENT_POINTS = 10_000_000
MAX_QUANTITY = Decimal("1000")
# How far back a till may post (offline tills catch up); how far ahead its clock may run.
MAX_BACKDATING = datetime.timedelta(days=366)
CLOCK_SKEW = datetime.timedelta(minutes=10)


@dataclass(frozen=True)
class EarnResult:
    account: Account
    entries: list[LedgerEntry]
    purchase: Purchase | None = None
    activity: Activity | None = None
    upgraded_to: Tier | None = None
    replayed: bool = False

    @property
    def points(self) -> int:
        return sum(entry.points for entry in self.entries)

    @property
    def explanations(self) -> list[str]:
        return [entry.reason for entry in self.entries]

    @property
    def awaiting_approval(self) -> bool:
        return self.activity is not None and self.activity.status == Activity.Status.PENDING_REVIEW


@dataclass(frozen=True)
class ReturnResult:
    purchase_return: PurchaseReturn
    entries: list[LedgerEntry] = field(default_factory=list)
    replayed: bool = False


# --- helpers ------------------------------------------------------------------------------------


def _require_key(idempotency_key: str | None) -> str:
    """A caller's idempotency key: 1 to 128 characters, not starting with "~" (the engine's own keys do)."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 128 or key.startswith("~"):
        raise ApplicationError(
            _(
                "An idempotency key of 1 to 128 characters, not starting with “~”, is required, so that a retry "
                "never posts twice."
            ),
            code="idempotency_key_required",
        )
    return key


def _require_reason(reason: str | None) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            _("Give a reason: the member reads it on their statement."),
            code="reason_required",
            extra={"field": "reason"},
        )
    return reason[:300]


def _previous(queryset, key: str, fingerprint: str):
    """The operation already recorded under this idempotency key, if any; the same key with different
    content is refused."""
    return _same_content(queryset.filter(idempotency_key=key).first(), fingerprint)


def _same_content(existing, fingerprint: str):
    """`existing` (a row recorded under the request's key, or None), unless it recorded other content."""
    if existing is not None and existing.fingerprint != fingerprint:
        raise _key_reused()
    return existing


def _create_keyed(model, **fields):
    """Create the row that records an idempotency key. Two requests with one key on two different
    accounts do not wait for each other's lock: the database's unique key decides, and the loser
    gets the same clear refusal as a sequential reuse."""
    try:
        with transaction.atomic():
            return model.objects.create(**fields)
    except IntegrityError:
        if model.objects.filter(program=fields["program"], idempotency_key=fields["idempotency_key"]).exists():
            raise _key_reused() from None
        raise


def account_lock(account: Account) -> Account:
    """The account row, locked for this transaction: every money path takes it first (see selectors.locked)."""
    return rows.joined_after_lock(locked(Account.objects.filter(pk=account.pk)).get(), "tier")


def _check_can_earn(account: Account) -> None:
    if account.program.status not in {Program.Status.LIVE, Program.Status.PILOT}:
        raise ApplicationError(
            _("The program “%(program)s” is not running, so it cannot award points.") % {"program": account.program},
            code="program_not_running",
        )
    if account.member.status != Member.Status.ACTIVE:
        raise ApplicationError(
            _("Member %(member)s is %(status)s and cannot earn or spend points.")
            % {"member": account.member.member_no, "status": account.member.get_status_display().lower()},
            code="member_not_active",
        )


def _check_occurred_at(occurred_at: datetime.datetime) -> None:
    if timezone.is_naive(occurred_at):
        raise ApplicationError(_("Give the time with its time zone."), code="invalid", extra={"field": "occurred_at"})
    now = timezone.now()
    if occurred_at > now + CLOCK_SKEW:
        raise ApplicationError(
            _("The activity is dated in the future (%(when)s). Check the till's clock.") % {"when": occurred_at},
            code="occurred_in_future",
            extra={"field": "occurred_at"},
        )
    if occurred_at < now - MAX_BACKDATING:
        raise ApplicationError(
            _("The activity is more than a year old; ask program staff for a manual adjustment instead."),
            code="occurred_too_long_ago",
            extra={"field": "occurred_at"},
        )


def _money(value, *, field_name: str, label: str) -> Decimal:
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ApplicationError(
            _("%(label)s must be a number, e.g. 49.90.") % {"label": label}, code="invalid", extra={"field": field_name}
        ) from None
    if not amount.is_finite() or amount <= 0:
        raise ApplicationError(
            _("%(label)s must be more than zero.") % {"label": label}, code="invalid", extra={"field": field_name}
        )
    if amount > MAX_PURCHASE_AMOUNT:
        raise ApplicationError(
            _("%(label)s of %(amount)s is more than the %(max)s a single receipt may carry; check the amount.")
            % {"label": label, "amount": amount, "max": MAX_PURCHASE_AMOUNT},
            code="amount_too_large",
            extra={"field": field_name},
        )
    if amount != amount.quantize(Decimal("0.01")):
        raise ApplicationError(
            _("%(label)s can have at most two decimals.") % {"label": label},
            code="invalid",
            extra={"field": field_name},
        )
    return amount


def _context(account: Account, *, activity_type: str, occurred_at, store: Store | None, **facts) -> engine.EarnContext:
    member = account.member
    return engine.EarnContext(
        program=account.program,
        activity_type=activity_type,
        occurred_at=occurred_at,
        tier=account.tier,
        region=member.region,
        member_type=member.member_type,
        store_id=store.pk if store else None,
        account_id=account.pk,
        enrolled_at=account.enrolled_at,
        **facts,
    )


def _post_lot(account: Account, **lot) -> LedgerEntry:
    """Add points as a new lot (pending until the return window passes) and move the account's counters."""
    entry = _lot(account, **lot)
    entry.save(force_insert=True)
    return entry


def _lot(
    account: Account,
    *,
    kind: str,
    points: int,
    qualifying_points: int,
    reason: str,
    occurred_at: datetime.datetime,
    activity_type: str,
    idempotency_key: str | None,
    created_by=None,
    store: Store | None = None,
    **links,
) -> LedgerEntry:
    """A new lot, not saved yet, with the account's counters already moved (see _post_lot)."""
    program = account.program
    available_at = engine.available_from(program, occurred_at, activity_type)
    is_available = available_at <= timezone.now()
    entry = LedgerEntry(
        program=program,
        account=account,
        kind=kind,
        points=points,
        qualifying_points=qualifying_points,
        remaining=points,
        expires_at=engine.lot_expiry(program, occurred_at),
        available_at=available_at,
        is_available=is_available,
        occurred_at=occurred_at,
        reason=reason,
        idempotency_key=idempotency_key,
        created_by=created_by,
        store=store,
        **links,
    )
    if is_available:
        account.balance += points
    else:
        account.pending += points
    account.lifetime_earned += points
    return entry


def _consume_lots(account: Account, debit: LedgerEntry, points: int, *, exclude_lots: list[int] = ()) -> None:
    """Spend `points` from the account's available lots, soonest-expiring first, and record the allocations."""
    lots = (
        account.entries.filter(remaining__gt=0, is_available=True)
        .exclude(pk__in=exclude_lots)
        .order_by(F("expires_at").asc(nulls_last=True), "pk")
        .select_for_update()
    )
    left = points
    touched, allocations = [], []
    for lot in lots.iterator(chunk_size=100):
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        touched.append(lot)
        allocations.append(LedgerAllocation(debit=debit, lot=lot, points=take))
        if left == 0:
            break
    if left:
        # The balance check before us makes this unreachable unless the ledger is already broken.
        raise ApplicationError(
            _("The account's points lots do not cover its balance; run check_ledger."), code="ledger_broken"
        )
    LedgerEntry.objects.bulk_update(touched, ["remaining"], batch_size=BULK_BATCH)
    LedgerAllocation.objects.bulk_create(allocations, batch_size=BULK_BATCH)


def _post_debit(
    account: Account,
    *,
    kind: str,
    points: int,
    reason: str,
    idempotency_key: str | None,
    fingerprint: str,
    created_by=None,
    qualifying_points: int = 0,
    store: Store | None = None,
    source=None,
) -> LedgerEntry:
    """Take `points` (> 0, already checked against the balance) from the account's lots, now."""
    now = timezone.now()
    entry = _create_keyed(
        LedgerEntry,
        program=account.program,
        account=account,
        kind=kind,
        points=-points,
        qualifying_points=qualifying_points,
        remaining=0,
        available_at=now,
        is_available=True,
        occurred_at=now,
        reason=reason[:300],
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        created_by=created_by,
        store=store,
        source=source,
    )
    _consume_lots(account, entry, points)
    account.balance -= points
    return entry


def _touch(account: Account, occurred_at: datetime.datetime) -> None:
    if account.last_activity_at is None or occurred_at > account.last_activity_at:
        account.last_activity_at = occurred_at


def _set_tier(account: Account, tier: Tier, *, reason: str, at: datetime.datetime, entry_tier: Tier) -> None:
    TierChange.objects.create(account=account, from_tier=account.tier, to_tier=tier, reason=reason, changed_at=at)
    account.tier = tier
    account.tier_since = at
    if tier.pk == entry_tier.pk:
        account.tier_window_start = account.tier_review_at = None
    else:
        account.tier_window_start, account.tier_review_at = engine.tier_review_window(account.program, at)


def program_entry_tier(program: Program) -> Tier:
    """The tier every account starts at (the lowest rank, at threshold 0); refuses a program without one."""
    tier = program.tiers.order_by("rank").first()
    if tier is None or tier.threshold != 0:
        raise ApplicationError(
            _("The program “%(program)s” has no entry tier at threshold 0; add one before enrolling members.")
            % {"program": program},
            code="program_has_no_entry_tier",
        )
    return tier


def _upgrade_if_earned(account: Account, at: datetime.datetime) -> Tier | None:
    """Upgrades happen at once when a threshold is crossed (downgrades wait for evaluate_tiers)."""
    tiers = program_tiers(program=account.program, reuse=True)
    if not tiers or (account.tier is not None and account.tier.rank >= tiers[-1].rank):
        return None  # no tier above the account's to reach
    start, end = engine.qualification_window(account.program, at)
    earned = engine.tier_for(tiers, qualifying_total(account=account, start=start, end=end))
    if earned is None or (account.tier is not None and earned.rank <= account.tier.rank):
        return None
    _set_tier(account, earned, reason=TierChange.Reason.UPGRADE, at=at, entry_tier=min(tiers, key=lambda t: t.rank))
    return earned


ACCOUNT_BOOKKEEPING = (
    "balance",
    "pending",
    "tier",
    "tier_since",
    "tier_window_start",
    "tier_review_at",
    "lifetime_earned",
    "lifetime_redeemed",
    "lifetime_expired",
    "last_activity_at",
)


def _save_account(account: Account) -> None:
    rows.update(account, ACCOUNT_BOOKKEEPING)


def _within_budget(awards: list[engine.Award]) -> list[engine.Award]:
    """Trim awards to what their rules' budgets have left, drawing on the budgets as it goes.

    Budget rows are locked (after the account, in id order) until the earn commits, so concurrent
    earns queue on a campaign's budget and never take it past its ceiling."""
    budget_ids = sorted({award.rule.budget_id for award in awards if award.rule.budget_id})
    if not budget_ids:
        return awards
    budgets = {
        budget.pk: budget for budget in EarnBudget.objects.select_for_update().filter(pk__in=budget_ids).order_by("pk")
    }
    kept = []
    for award in awards:
        budget = budgets.get(award.rule.budget_id)
        if budget is None:
            kept.append(award)
            continue
        points = min(award.points, budget.left)
        if points <= 0:
            continue
        if points < award.points:
            award = dataclasses.replace(
                award,
                points=points,
                qualifying_points=min(award.qualifying_points, points),
                explanation=(
                    _("%(points)s pts: what was left of the budget (%(rule)s)")
                    % {"points": points, "rule": award.rule.name}
                )[:300],
                capped=True,
            )
        budget.awarded += points
        kept.append(award)
    for budget in budgets.values():
        EarnBudget.objects.filter(pk=budget.pk).update(awarded=budget.awarded)
    return kept


def _post_awards(
    account: Account, awards: list[engine.Award], *, key: str, occurred_at, activity_type, store, created_by, **links
):
    with translation.override(account.member.language or settings.LANGUAGE_CODE):
        awards = _within_budget(awards)
        # One INSERT for all the lots of an earn.
        return rows.insert(
            [
                _lot(
                    account,
                    kind=LedgerEntry.Kind.EARN,
                    points=award.points,
                    qualifying_points=award.qualifying_points,
                    reason=award.explanation,
                    occurred_at=occurred_at,
                    activity_type=activity_type,
                    idempotency_key=f"~{key}#rule-{award.rule.pk}",
                    created_by=created_by,
                    store=store,
                    rule=award.rule,
                    **links,
                )
                for award in awards
            ]
        )


def _awards(account: Account, ctx: engine.EarnContext, *, purchase: Purchase | None = None) -> list[engine.Award]:
    rule_set = earn_rule_set(program=account.program, activity_type=ctx.activity_type, reuse=True)
    # Facts only some rules look at are read only when such a rule is active.
    if any(rule.audience_only for rule in rule_set.rules):
        listed = EarnRuleAudience.objects.filter(
            account=account, rule__in=[rule for rule in rule_set.rules if rule.audience_only]
        ).values_list("rule_id", flat=True)
        ctx = dataclasses.replace(ctx, audience_rule_ids=frozenset(listed))
    if any(rule.first_purchase_only for rule in rule_set.rules):
        earlier = account.purchases.exclude(pk=purchase.pk) if purchase else account.purchases.all()
        ctx = dataclasses.replace(ctx, first_purchase=not earlier.exists())
    with translation.override(account.member.language or settings.LANGUAGE_CODE):
        return engine.compute_awards(
            ctx, rule_set, earned_in_cap_periods(account=account, rule_set=rule_set, occurred_at=ctx.occurred_at)
        )


# --- enrolment ------------------------------------------------------------------------------------


@transaction.atomic
def enrol(
    *,
    member: Member,
    program: Program,
    enrolled_by=None,
    store: Store | None = None,
    invited: bool = False,
    at: datetime.datetime | None = None,
) -> Account:
    """Open the member's account in the program at the entry tier, with the welcome bonus. Enrolling twice
    returns the existing account."""
    at = at or timezone.now()
    existing = Account.objects.filter(member=member, program=program).first()
    if existing:
        return existing
    # Serialises the pilot cap check; the rules version (not locked) comes in the same query, before the
    # earn below reads rules and tiers by it.
    program = Program.objects.select_for_update(of=("self",)).select_related("rules_version").get(pk=program.pk)
    if program.status not in {Program.Status.LIVE, Program.Status.PILOT}:
        raise ApplicationError(
            _("The program “%(program)s” is not open for enrolment.") % {"program": program}, code="program_not_open"
        )
    if program.enrolment_mode == Program.EnrolmentMode.INVITATION and not invited:
        raise ApplicationError(
            _("The program “%(program)s” enrols by invitation only.") % {"program": program}, code="invitation_required"
        )
    if program.enrolment_mode == Program.EnrolmentMode.PILOT and program.accounts.count() >= program.pilot_member_cap:
        raise ApplicationError(
            _("The pilot of “%(program)s” is full (%(cap)s members).")
            % {"program": program, "cap": program.pilot_member_cap},
            code="pilot_full",
        )
    if member.status != Member.Status.ACTIVE:
        raise ApplicationError(_("Only active members can be enrolled."), code="member_not_active")
    entry_tier = program_entry_tier(program)
    account = Account.objects.create(
        member=member,
        program=program,
        tier=entry_tier,
        tier_since=at,
        enrolled_at=at,
        last_activity_at=at,
        enrolled_by=enrolled_by,
        enrolled_at_store=store,
    )
    TierChange.objects.create(
        account=account, from_tier=None, to_tier=entry_tier, reason=TierChange.Reason.ENROLMENT, changed_at=at
    )
    account.program = program
    if program.welcome_bonus:
        with translation.override(member.language or settings.LANGUAGE_CODE):
            reason = _("%(points)s pts: welcome bonus") % {"points": program.welcome_bonus}
        _post_lot(
            account,
            kind=LedgerEntry.Kind.EARN,
            points=program.welcome_bonus,
            qualifying_points=0,
            reason=reason,
            occurred_at=at,
            activity_type=ActivityType.ENROLMENT,
            idempotency_key=f"~welcome:{account.pk}",
            created_by=enrolled_by,
            store=store,
        )
    awards = _awards(account, _context(account, activity_type=ActivityType.ENROLMENT, occurred_at=at, store=store))
    _post_awards(
        account,
        awards,
        key=f"enrolment:{account.pk}",
        occurred_at=at,
        activity_type=ActivityType.ENROLMENT,
        store=store,
        created_by=enrolled_by,
    )
    _upgrade_if_earned(account, at)
    _save_account(account)
    if member.referred_by_id:
        _referral_rewards(account, trigger="enrolment", at=at, store=store, created_by=enrolled_by)
        account.refresh_from_db()
    return account


INVITATION_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def terms_current(*, program: Program, on: datetime.date | None = None) -> TermsVersion | None:
    """The terms in force: the latest version whose effective date has come."""
    on = on or timezone.localdate()
    return program.terms_versions.filter(effective_on__lte=on).order_by("-effective_on", "-pk").first()


def terms_accept(
    *, account: Account, terms: TermsVersion, channel: str, recorded_by=None, store: Store | None = None
) -> TermsAcceptance:
    """Record that the member accepted this version (once; accepting again returns the first record)."""
    acceptance, _created = TermsAcceptance.objects.get_or_create(
        account=account,
        terms=terms,
        defaults={"accepted_at": timezone.now(), "channel": channel, "recorded_by": recorded_by, "store": store},
    )
    return acceptance


def invitation_code() -> str:
    """Ten characters without look-alikes (no 0/O, 1/I): 32^10, not guessable at any useful rate."""
    return "".join(secrets.choice(INVITATION_ALPHABET) for _ in range(10))


@transaction.atomic
def invitation_create(
    *, program: Program, email: str = "", max_uses: int = 1, valid_days: int = 30, created_by=None
) -> Invitation:
    return Invitation.objects.create(
        program=program,
        code=invitation_code(),
        email=email,
        max_uses=max_uses,
        expires_at=timezone.now() + datetime.timedelta(days=valid_days),
        created_by=created_by,
    )


def _invitation_use(program: Program, code: str) -> Invitation:
    code = (code or "").strip().upper().replace("-", "").replace(" ", "")
    invitation = Invitation.objects.select_for_update().filter(program=program, code=code).first() if code else None
    if invitation is None:
        raise ApplicationError(
            _("This invitation code is not valid for “%(program)s”. Check the code in your invitation.")
            % {"program": program},
            code="invalid_invitation",
            extra={"field": "invitation_code"},
        )
    if invitation.expires_at <= timezone.now():
        raise ApplicationError(
            _("This invitation expired on %(date)s. Ask the program for a new one.")
            % {"date": date_format(timezone.localtime(invitation.expires_at), "DATE_FORMAT")},
            code="invitation_expired",
            extra={"field": "invitation_code"},
        )
    if invitation.uses >= invitation.max_uses:
        raise ApplicationError(
            _("This invitation has already been used. Ask the program for a new one."),
            code="invitation_used",
            extra={"field": "invitation_code"},
        )
    Invitation.objects.filter(pk=invitation.pk).update(uses=F("uses") + 1)
    return invitation


def store_runs_program(*, store: Store, program: Program) -> bool:
    return program.stores.filter(pk=store.pk).exists()


@transaction.atomic
def member_enrol(
    *,
    program: Program,
    channel: str,
    accept_terms: bool,
    enrolled_by=None,
    store: Store | None = None,
    invitation_code: str = "",
    referral_code: str = "",
    user=None,
    at: datetime.datetime | None = None,
    **member_fields,
) -> Account:
    """Enrol a new customer: the member (checked for duplicates, card number issued), their account with
    the welcome bonus, their acceptance of the terms in force, a referral if they came with a code and the
    invitation they used. One transaction: a refusal anywhere writes nothing."""
    if store is not None and not store_runs_program(store=store, program=program):
        raise ApplicationError(
            _("%(store)s does not run “%(program)s”.") % {"store": store, "program": program},
            code="store_not_in_program",
        )
    terms = terms_current(program=program)
    if terms is not None and not accept_terms:
        raise ApplicationError(
            _("The member must accept the program's terms (version %(version)s) to join.") % {"version": terms.version},
            code="terms_not_accepted",
            extra={"field": "accept_terms"},
        )
    referred_by = member_by_referral_code(referral_code) if referral_code.strip() else None
    if referred_by is not None and _same_person(referred_by, member_fields):
        raise ApplicationError(
            _("A member cannot use their own referral code."), code="self_referral", extra={"field": "referral_code"}
        )
    invited = False
    if program.enrolment_mode != Program.EnrolmentMode.OPEN and invitation_code.strip():
        _invitation_use(program, invitation_code)
        invited = True
    elif program.enrolment_mode == Program.EnrolmentMode.INVITATION and channel != Member.Channel.IMPORT:
        _invitation_use(program, invitation_code)  # refuses with the reason
    member = member_create(
        channel=channel,
        enrolled_by=enrolled_by,
        store=store,
        referred_by=referred_by,
        user=user,
        enrolled_at=at,
        **member_fields,
    )
    account = enrol(
        member=member,
        program=program,
        enrolled_by=enrolled_by,
        store=store,
        invited=invited or channel == Member.Channel.IMPORT,
        at=at,
    )
    if terms is not None:
        terms_accept(account=account, terms=terms, channel=channel, recorded_by=enrolled_by, store=store)
    return account


def _same_person(member: Member, fields: dict) -> bool:
    email = (fields.get("email") or "").strip().lower()
    try:
        phone = phone_normalise(fields.get("phone") or "")
    except ApplicationError:
        phone = ""  # member_create reports the bad phone
    return bool((email and member.email.lower() == email) or (phone and str(member.phone) == phone))


# --- earning ----------------------------------------------------------------------------------------


@transaction.atomic
def earn_for_purchase(
    *,
    account: Account | None = None,
    member_no: str = "",
    program_slug: str = "",
    amount,
    currency: str,
    receipt_number: str,
    occurred_at: datetime.datetime,
    idempotency_key: str,
    store: Store | None = None,
    lines: list[dict] | tuple = (),
    created_by=None,
) -> EarnResult:
    """Earn for a purchase on `account`, or on the account a store's till names by card number (`member_no`,
    with `program_slug` when the store runs several programs): then found and locked in one statement."""
    if account is None:
        account = store_account(store=store, member_no=member_no, program_slug=program_slug, lock=True)
    else:
        account = account_lock(account)
    key = _require_key(idempotency_key)
    amount = _money(amount, field_name="amount", label=_("The amount"))
    receipt_number = (receipt_number or "").strip()
    if not receipt_number or len(receipt_number) > 64:
        raise ApplicationError(
            _("Give the receipt number (1 to 64 characters)."), code="invalid", extra={"field": "receipt_number"}
        )
    _check_occurred_at(occurred_at)
    try:
        parsed_lines = engine.parse_lines(lines)
    except (KeyError, TypeError, InvalidOperation, ValueError):
        raise ApplicationError(
            _('Each purchase line needs a category and an amount, e.g. {"category": "PAINT", "amount": "20.00"}.'),
            code="invalid",
            extra={"field": "lines"},
        ) from None
    if any(line.amount < 0 for line in parsed_lines) or sum(line.amount for line in parsed_lines) > amount:
        raise ApplicationError(
            _("The purchase lines add up to more than the amount, or one is negative."),
            code="invalid",
            extra={"field": "lines"},
        )
    fingerprint = _fingerprint(
        account=account.pk,
        amount=amount,
        currency=currency,
        receipt=receipt_number,
        at=occurred_at.isoformat(),
        store=store.pk if store else None,
        lines=[(line.category, line.amount) for line in parsed_lines],
    )
    program = account.program
    earlier = functools.partial(
        _earlier_purchases, program=program, key=key, fingerprint=fingerprint, store=store, receipt=receipt_number
    )

    # The purchase's unique keys (the key, the store's receipt) decide on insert, so the happy path reads
    # no earlier purchase; what the insert yields to, and a refusal below, look at them first.
    existing = duplicate = None
    if store is None:  # no unique key covers a receipt posted without a store: look before inserting
        existing, duplicate = earlier()
        if existing:
            return _purchase_replay(account, existing)
    try:
        _check_can_earn(account)
        if currency != program.currency:
            raise ApplicationError(
                _("The program counts in %(expected)s; this purchase is in %(given)s.")
                % {"expected": program.currency, "given": currency},
                code="currency_mismatch",
                extra={"field": "currency"},
            )
    except ApplicationError:
        # A retry of a purchase recorded before this refusal held still gets its first answer.
        existing = earlier()[0] if store is not None else None
        if existing:
            return _purchase_replay(account, existing)
        raise
    if duplicate:
        raise _duplicate_receipt(duplicate)

    purchase = Purchase(
        program=program,
        account=account,
        store=store,
        receipt_number=receipt_number,
        amount=amount,
        currency=currency,
        lines=[{"category": line.category, "amount": str(line.amount)} for line in parsed_lines],
        occurred_at=occurred_at,
        idempotency_key=key,
        fingerprint=fingerprint,
        created_by=created_by,
    )
    if not rows.insert_unless_taken(purchase):
        existing, duplicate = earlier()
        if existing:
            return _purchase_replay(account, existing)
        if duplicate:
            raise _duplicate_receipt(duplicate)
        # Both unique keys name the program, and the row the insert yielded to has committed: unreachable.
        raise IntegrityError(f"purchase {key!r} conflicts with a row it cannot find")
    ctx = _context(
        account,
        activity_type=ActivityType.PURCHASE,
        occurred_at=occurred_at,
        store=store,
        amount=amount,
        lines=parsed_lines,
    )
    entries = _post_awards(
        account,
        _awards(account, ctx, purchase=purchase),
        key=key,
        occurred_at=occurred_at,
        activity_type=ActivityType.PURCHASE,
        store=store,
        created_by=created_by,
        purchase=purchase,
    )
    _touch(account, occurred_at)
    upgraded = _upgrade_if_earned(account, timezone.now())
    _save_account(account)
    if account.member.referred_by_id and not account.purchases.exclude(pk=purchase.pk).exists():
        _referral_rewards(account, trigger="first_purchase", at=occurred_at, store=store, created_by=created_by)
        account.refresh_from_db()
    return EarnResult(account=account, entries=entries, purchase=purchase, upgraded_to=upgraded)


def _earlier_purchases(
    *, program: Program, key: str, fingerprint: str, store: Store | None, receipt: str
) -> tuple[Purchase | None, Purchase | None]:
    """The purchase recorded under this key (refused when its content differs), and the store's purchase
    with this receipt number: one read for both."""
    earlier = list(
        Purchase.objects.filter(program=program).filter(Q(idempotency_key=key) | Q(store=store, receipt_number=receipt))
    )
    existing = _same_content(next((p for p in earlier if p.idempotency_key == key), None), fingerprint)
    duplicate = next((p for p in earlier if p.store_id == (store.pk if store else None)), None)
    return existing, duplicate


def _purchase_replay(account: Account, purchase: Purchase) -> EarnResult:
    return EarnResult(
        account=account,
        entries=list(purchase.entries.filter(kind=LedgerEntry.Kind.EARN).order_by("pk")),
        purchase=purchase,
        replayed=True,
    )


def _duplicate_receipt(earlier: Purchase) -> ApplicationError:
    return ApplicationError(
        _("Receipt %(receipt)s was already posted by this store on %(when)s; it earns only once.")
        % {
            "receipt": earlier.receipt_number,
            "when": timezone.localtime(earlier.created_at).strftime("%Y-%m-%d %H:%M"),
        },
        code="duplicate_receipt",
    )


def _referral_rewards(referee: Account, *, trigger: str, at: datetime.datetime, store, created_by) -> None:
    """Reward a referral as the program's referral rules say: the referrer, the new member or both, when the
    new member enrols or makes a first purchase. Each reward is posted once (engine key per referee)."""
    referrer = referee.member.referred_by
    if referrer is None:
        return
    rule_set = earn_rule_set(program=referee.program, activity_type=ActivityType.REFERRAL, reuse=True)
    parties = sorted({rule.referral_party for rule in rule_set.rules if rule.referral_trigger == trigger})
    for party in parties:
        if party == "referee":
            target, description = referee, _("Joined with %(name)s's referral") % {"name": referrer.first_name}
        else:
            # Lock order: the referee's account is held; the referrer enrolled earlier (a referee is always
            # newer than their referrer), so two referrals can never wait on each other in a cycle.
            target = Account.objects.filter(member=referrer, program=referee.program).first()
            if target is None or referrer.status != Member.Status.ACTIVE:
                continue
            description = _("Referred %(name)s") % {"name": referee.member.first_name or referee.member.company}
        _activity_record(
            target,
            activity_type=ActivityType.REFERRAL,
            occurred_at=at,
            key=f"~referral:{trigger}:{party}:{referee.pk}",
            quantity=Decimal(1),
            code=f"{party}:{trigger}",
            description=description,
            evidence=None,
            store=store,
            created_by=created_by,
        )


@transaction.atomic
def earn_for_activity(
    *,
    account: Account,
    activity_type: str,
    occurred_at: datetime.datetime,
    idempotency_key: str,
    quantity=1,
    code: str = "",
    description: str = "",
    evidence=None,
    store: Store | None = None,
    created_by=None,
    as_claim: bool = False,
) -> EarnResult:
    """Record a non-spend activity. Types that need evidence, activities whose rules need approval, and
    whatever a member claims for themselves (`as_claim`) become a claim for staff instead."""
    key = _require_key(idempotency_key)
    if activity_type not in ActivityType.values or activity_type in {ActivityType.PURCHASE, ActivityType.ENROLMENT}:
        allowed = ", ".join(t for t in ActivityType.values if t not in {ActivityType.PURCHASE, ActivityType.ENROLMENT})
        raise ApplicationError(
            _("Unknown activity type “%(type)s”. Use one of: %(allowed)s.")
            % {"type": activity_type, "allowed": allowed},
            code="unknown_activity_type",
            extra={"field": "activity_type"},
        )
    try:
        quantity = Decimal(str(quantity))
    except (InvalidOperation, ValueError):
        quantity = Decimal("-1")
    if not quantity.is_finite() or quantity <= 0 or quantity > MAX_QUANTITY:
        raise ApplicationError(
            _("The quantity must be a number between 0 and %(max)s (e.g. 2.5 training hours).") % {"max": MAX_QUANTITY},
            code="invalid",
            extra={"field": "quantity"},
        )
    if activity_type == ActivityType.CUSTOM_CODE and not code:
        raise ApplicationError(_("A custom-code activity needs its code."), code="invalid", extra={"field": "code"})
    _check_evidence(evidence)
    _check_occurred_at(occurred_at)
    return _activity_record(
        account,
        activity_type=activity_type,
        occurred_at=occurred_at,
        key=key,
        quantity=quantity,
        code=code,
        description=description,
        evidence=evidence,
        store=store,
        created_by=created_by,
        as_claim=as_claim,
    )


EVIDENCE_MAX_BYTES = 5 * 1024 * 1024
EVIDENCE_SIGNATURES = (b"%PDF", b"\x89PNG", b"\xff\xd8\xff")  # PDF, PNG, JPEG: by content, not by name


def _check_evidence(evidence) -> None:
    """Evidence staff can open safely: a PDF, JPEG or PNG of at most 5 MB."""
    if not evidence:
        return
    if evidence.size > EVIDENCE_MAX_BYTES:
        raise ApplicationError(
            _("The file is too large: send one of at most 5 MB."), code="invalid", extra={"field": "evidence"}
        )
    head = evidence.read(8)
    evidence.seek(0)
    if not head.startswith(EVIDENCE_SIGNATURES):
        raise ApplicationError(
            _("Send a PDF, JPEG or PNG file; this one is of another type."),
            code="invalid",
            extra={"field": "evidence"},
        )


def _activity_record(
    account: Account,
    *,
    activity_type: str,
    occurred_at: datetime.datetime,
    key: str,
    quantity: Decimal,
    code: str,
    description: str,
    evidence,
    store: Store | None,
    created_by,
    as_claim: bool = False,
) -> EarnResult:
    fingerprint = _fingerprint(
        account=account.pk, type=activity_type, quantity=quantity, code=code, at=occurred_at.isoformat()
    )
    account = account_lock(account)
    program = account.program
    existing = _previous(Activity.objects.filter(program=program), key, fingerprint)
    if existing:
        return EarnResult(
            account=account, entries=list(existing.entries.order_by("pk")), activity=existing, replayed=True
        )
    _check_can_earn(account)
    rule_set = earn_rule_set(program=program, activity_type=activity_type, reuse=True)
    ctx = _context(
        account, activity_type=activity_type, occurred_at=occurred_at, store=store, quantity=quantity, code=code
    )
    # Training, certifications and reviews need evidence, so they always wait for staff; other activities
    # wait when a rule that would reward them asks for approval.
    needs_approval = (
        as_claim
        or activity_type in EVIDENCE_ACTIVITY_TYPES
        or any(rule.requires_approval and engine.rule_matches(rule, ctx, rule_set) for rule in rule_set.rules)
    )
    activity = _create_keyed(
        Activity,
        program=program,
        account=account,
        activity_type=activity_type,
        code=code,
        quantity=quantity,
        description=description[:200],
        evidence=evidence or "",
        occurred_at=occurred_at,
        store=store,
        status=Activity.Status.PENDING_REVIEW if needs_approval else Activity.Status.APPROVED,
        idempotency_key=key,
        fingerprint=fingerprint,
        created_by=created_by,
    )
    if needs_approval:
        return EarnResult(account=account, entries=[], activity=activity)
    return _earn_activity(account, activity, created_by=created_by)


def _earn_activity(account: Account, activity: Activity, *, created_by) -> EarnResult:
    ctx = _context(
        account,
        activity_type=activity.activity_type,
        occurred_at=activity.occurred_at,
        store=activity.store,
        quantity=activity.quantity,
        code=activity.code,
    )
    entries = _post_awards(
        account,
        _awards(account, ctx),
        key=f"activity:{activity.pk}",
        occurred_at=activity.occurred_at,
        activity_type=activity.activity_type,
        store=activity.store,
        created_by=created_by,
        activity=activity,
    )
    _touch(account, activity.occurred_at)
    upgraded = _upgrade_if_earned(account, timezone.now())
    _save_account(account)
    return EarnResult(account=account, entries=entries, activity=activity, upgraded_to=upgraded)


@transaction.atomic
def activity_approve(*, activity: Activity, reviewed_by) -> EarnResult:
    account = account_lock(activity.account)
    activity = Activity.objects.select_for_update().get(pk=activity.pk)
    if activity.status == Activity.Status.APPROVED:
        return EarnResult(
            account=account, entries=list(activity.entries.order_by("pk")), activity=activity, replayed=True
        )
    if activity.status != Activity.Status.PENDING_REVIEW:
        raise ApplicationError(_("This claim was already rejected."), code="claim_already_reviewed")
    _check_can_earn(account)
    activity.status = Activity.Status.APPROVED
    activity.reviewed_by, activity.reviewed_at = reviewed_by, timezone.now()
    activity.save(update_fields=["status", "reviewed_by", "reviewed_at"])
    return _earn_activity(account, activity, created_by=reviewed_by)


@transaction.atomic
def activity_reject(*, activity: Activity, reviewed_by, reason: str) -> Activity:
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Say why the claim is rejected: the member reads it."), code="reason_required")
    activity = Activity.objects.select_for_update().get(pk=activity.pk)
    if activity.status != Activity.Status.PENDING_REVIEW:
        raise ApplicationError(_("This claim was already reviewed."), code="claim_already_reviewed")
    activity.status = Activity.Status.REJECTED
    activity.reviewed_by, activity.reviewed_at, activity.rejection_reason = reviewed_by, timezone.now(), reason[:200]
    activity.save(update_fields=["status", "reviewed_by", "reviewed_at", "rejection_reason"])
    return activity


# --- returns ------------------------------------------------------------------------------------------


def _share(total: int, numerator: Decimal, denominator: Decimal) -> int:
    return int((Decimal(total) * numerator / denominator).to_integral_value(rounding=ROUND_HALF_UP))


@transaction.atomic
def reverse_purchase(*, purchase: Purchase, amount, idempotency_key: str, created_by=None) -> ReturnResult:
    """A return takes back points in proportion to the amount returned. Points of the purchase already
    spent are taken from the member's other points down to a zero balance; the rest is recorded as a
    shortfall, never as a negative balance."""
    key = _require_key(idempotency_key)
    amount = _money(amount, field_name="amount", label=_("The returned amount"))
    fingerprint = _fingerprint(purchase=purchase.pk, amount=amount)
    account = account_lock(purchase.account)
    purchase = Purchase.objects.get(pk=purchase.pk)  # re-read under the account lock
    existing = _previous(purchase.returns.all(), key, fingerprint)
    if existing:
        return ReturnResult(purchase_return=existing, entries=list(_return_entries(existing)), replayed=True)
    returnable = purchase.amount - purchase.returned_amount
    if amount > returnable:
        raise ApplicationError(
            _("Only %(returnable)s %(currency)s of this purchase can still be returned.")
            % {"returnable": returnable, "currency": purchase.currency},
            code="return_exceeds_purchase",
            extra={"field": "amount"},
        )
    returned_after = purchase.returned_amount + amount
    purchase_return = PurchaseReturn.objects.create(
        purchase=purchase, amount=amount, idempotency_key=key, fingerprint=fingerprint, created_by=created_by
    )
    entries, reversed_total, shortfall_total = [], 0, 0
    now = timezone.now()
    lots = list(purchase.entries.filter(kind=LedgerEntry.Kind.EARN).select_for_update().order_by("pk"))
    # First each lot gives back from itself; what its share still lacks is then taken from the member's
    # other points (never from this purchase's lots, never below zero) and the rest is a shortfall.
    plan = []
    for lot in lots:
        # Share of the total returned so far minus the share before this return: partial returns add up
        # exactly to the whole lot, whatever the rounding.
        owed = _share(lot.points, returned_after, purchase.amount) - _share(
            lot.points, purchase.returned_amount, purchase.amount
        )
        owed_qualifying = _share(lot.qualifying_points, returned_after, purchase.amount) - _share(
            lot.qualifying_points, purchase.returned_amount, purchase.amount
        )
        plan.append([lot, owed, owed_qualifying, min(lot.remaining, owed)])
    purchase_lot_ids = [lot.pk for lot in lots]
    left_in_purchase_lots = sum(lot.remaining - from_lot for lot, _owed, _q, from_lot in plan if lot.is_available)
    others = (
        account.balance - sum(from_lot for lot, _o, _q, from_lot in plan if lot.is_available) - left_in_purchase_lots
    )
    with translation.override(account.member.language or settings.LANGUAGE_CODE):
        for lot, owed, owed_qualifying, from_lot in plan:
            from_others = min(owed - from_lot, max(others, 0)) if lot.is_available else 0
            others -= from_others
            shortfall = owed - from_lot - from_others
            taken = from_lot + from_others
            if taken == 0 and owed_qualifying == 0:
                shortfall_total += shortfall
                continue
            reason = _("%(points)s pts: return of %(currency)s %(amount)s on receipt %(receipt)s") % {
                "points": -taken,
                "currency": purchase.currency,
                "amount": amount,
                "receipt": purchase.receipt_number,
            }
            if shortfall:
                reason += " " + _("(%(shortfall)s pts were already spent and could not be taken back)") % {
                    "shortfall": shortfall
                }
            entry = LedgerEntry.objects.create(
                program=account.program,
                account=account,
                kind=LedgerEntry.Kind.REVERSE,
                points=-taken,
                qualifying_points=-owed_qualifying,
                remaining=0,
                expires_at=None,
                available_at=lot.available_at,
                is_available=lot.is_available,
                occurred_at=now,
                reason=reason[:300],
                reverses=lot,
                purchase=purchase,
                idempotency_key=f"~return:{purchase_return.pk}#lot-{lot.pk}",
                created_by=created_by,
                store=purchase.store,
            )
            if from_lot:
                lot.remaining -= from_lot
                lot.save(update_fields=["remaining"])
                LedgerAllocation.objects.create(debit=entry, lot=lot, points=from_lot)
            if from_others:
                _consume_lots(account, entry, from_others, exclude_lots=purchase_lot_ids)
            if lot.is_available:
                account.balance -= taken
            else:
                account.pending -= taken
            entries.append(entry)
            reversed_total += taken
            shortfall_total += shortfall
    purchase.returned_amount = returned_after
    purchase.save(update_fields=["returned_amount"])
    purchase_return.points_reversed, purchase_return.points_shortfall = reversed_total, shortfall_total
    purchase_return.save(update_fields=["points_reversed", "points_shortfall"])
    _save_account(account)
    return ReturnResult(purchase_return=purchase_return, entries=entries)


def _return_entries(purchase_return: PurchaseReturn):
    return LedgerEntry.objects.filter(
        program=purchase_return.purchase.program, idempotency_key__startswith=f"~return:{purchase_return.pk}#"
    ).order_by("pk")


# --- spending and corrections -------------------------------------------------------------------------


@transaction.atomic
def spend(
    *,
    account: Account,
    points: int,
    reason: str,
    idempotency_key: str,
    source=None,
    store: Store | None = None,
    created_by=None,
) -> LedgerEntry:
    """Take points from the balance (a redemption): soonest-expiring lots first, never below zero."""
    key = _require_key(idempotency_key)
    reason = _require_reason(reason)
    if not isinstance(points, int) or isinstance(points, bool) or points <= 0:
        raise ApplicationError(
            _("Points to spend must be a whole number above zero."), code="invalid", extra={"field": "points"}
        )
    fingerprint = _fingerprint(account=account.pk, points=points, reason=reason)
    account = account_lock(account)
    existing = _previous(LedgerEntry.objects.filter(program=account.program), key, fingerprint)
    if existing:
        return existing
    _check_can_earn(account)
    if account.balance < points:
        raise ApplicationError(
            _("Not enough points: %(needed)s needed, %(balance)s available.")
            % {"needed": points, "balance": account.balance},
            code="insufficient_points",
            extra={"needed": points, "balance": account.balance},
        )
    entry = _post_debit(
        account,
        kind=LedgerEntry.Kind.REDEEM,
        points=points,
        reason=reason,
        idempotency_key=key,
        fingerprint=fingerprint,
        created_by=created_by,
        store=store,
        source=source,
    )
    account.lifetime_redeemed += points
    _touch(account, entry.occurred_at)
    _save_account(account)
    return entry


@transaction.atomic
def refund(*, entry: LedgerEntry, reason: str, created_by=None) -> LedgerEntry:
    """Give back the points of a redemption (a cancelled reward), once, to the very lots they came from."""
    if entry.kind != LedgerEntry.Kind.REDEEM:
        raise ApplicationError(_("Only a redemption can be refunded."), code="invalid")
    reason = _require_reason(reason)
    account = account_lock(entry.account)
    existing = entry.reversals.first()
    if existing:
        return existing
    now = timezone.now()
    refund_entry = LedgerEntry.objects.create(
        program=account.program,
        account=account,
        kind=LedgerEntry.Kind.REVERSE,
        points=-entry.points,
        remaining=0,
        available_at=now,
        is_available=True,
        occurred_at=now,
        reason=reason[:300],
        reverses=entry,
        idempotency_key=f"~refund:{entry.pk}",
        created_by=created_by,
        source_type=entry.source_type,
        source_id=entry.source_id,
    )
    given_back = dict(entry.allocations.values_list("lot_id", "points"))
    lots = list(LedgerEntry.objects.select_for_update().filter(pk__in=given_back).order_by("pk"))
    for lot in lots:
        # A lot that lapsed meanwhile gets its points back too, and they lapse again at the next expiry run.
        lot.remaining += given_back[lot.pk]
    LedgerEntry.objects.bulk_update(lots, ["remaining"], batch_size=BULK_BATCH)
    account.balance += -entry.points
    account.lifetime_redeemed -= -entry.points
    _save_account(account)
    return refund_entry


@transaction.atomic
def adjust(
    *,
    account: Account,
    points: int,
    reason: str,
    created_by,
    idempotency_key: str | None = None,
    qualifying: bool = False,
) -> LedgerEntry:
    """A staff correction. A reason is mandatory; a debit can never take the balance below zero."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            _("Give a reason for the adjustment: the member reads it on their statement."),
            code="reason_required",
            extra={"field": "reason"},
        )
    if not isinstance(points, int) or isinstance(points, bool) or points == 0 or abs(points) > MAX_ADJUSTMENT_POINTS:
        raise ApplicationError(
            _("Adjust by a whole number of points other than zero, at most %(max)s either way.")
            % {"max": MAX_ADJUSTMENT_POINTS},
            code="invalid",
            extra={"field": "points"},
        )
    key = _require_key(idempotency_key) if idempotency_key and idempotency_key.strip() else None
    fingerprint = _fingerprint(account=account.pk, points=points, reason=reason, qualifying=qualifying)
    account = account_lock(account)
    if key and (existing := _previous(LedgerEntry.objects.filter(program=account.program), key, fingerprint)):
        return existing
    now = timezone.now()
    if points > 0:
        entry = _post_lot(
            account,
            kind=LedgerEntry.Kind.ADJUST,
            points=points,
            qualifying_points=points if qualifying else 0,
            reason=reason[:300],
            occurred_at=now,
            activity_type="adjustment",
            idempotency_key=key,
            created_by=created_by,
            fingerprint=fingerprint,
        )
        if qualifying:
            _upgrade_if_earned(account, now)
    else:
        if account.balance < -points:
            raise ApplicationError(
                _("This would take the balance below zero: %(balance)s points available.")
                % {"balance": account.balance},
                code="insufficient_points",
                extra={"field": "points"},
            )
        entry = _post_debit(
            account,
            kind=LedgerEntry.Kind.ADJUST,
            points=-points,
            qualifying_points=points if qualifying else 0,
            reason=reason,
            idempotency_key=key,
            fingerprint=fingerprint,
            created_by=created_by,
        )
    _save_account(account)
    return entry


@dataclass(frozen=True)
class MigrateResult:
    out_entry: LedgerEntry | None  # None when there was nothing to take out
    in_entry: LedgerEntry | None  # None when nothing was posted in (a conversion, a closing, zero points)
    to_account: Account | None
    pending_released: int


@transaction.atomic
def migrate_points(
    *,
    from_account: Account,
    points_out: int,
    reason_out: str,
    idempotency_key: str,
    to_program: Program | None = None,
    to_tier: Tier | None = None,
    points_in: int = 0,
    reason_in: str = "",
    created_by=None,
) -> MigrateResult:
    """Move an account's whole balance out of its program (a program transition): its pending points are
    released first (the return window is waived: a later return records what it cannot take back as not
    recovered), then `points_out` (which must be the whole balance, so the caller decides under the same
    lock) leaves as a `migrate` entry, soonest-expiring lots first. With `to_program`, `points_in` arrive
    there as a new `migrate` lot, in the member's account (opened at `to_tier` without a welcome bonus
    when they have none; an existing account's tier is raised to `to_tier`, never lowered). Without it,
    the points simply leave (converted into a voucher, or lapsed with the account). Both accounts are
    locked in id order. A retry with the same key returns the first result; other content is refused."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 150:
        raise ApplicationError(_("A migration needs an idempotency key of 1 to 150 characters."), code="invalid")
    for value in (points_out, points_in):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ApplicationError(_("Points to migrate must be whole numbers, zero or more."), code="invalid")
    if points_in and to_program is None:
        raise ApplicationError(_("Points can only be migrated into a program."), code="invalid")
    if to_program is not None and to_program.pk == from_account.program_id:
        raise ApplicationError(_("Choose another program to migrate points into."), code="invalid")
    if to_tier is not None and (to_program is None or to_tier.program_id != to_program.pk):
        raise ApplicationError(_("Choose a tier of the program the points go to."), code="invalid")
    fingerprint = _fingerprint(
        account=from_account.pk,
        points_out=points_out,
        points_in=points_in,
        to_program=to_program.pk if to_program else None,
    )
    existing_to = (
        Account.objects.filter(member_id=from_account.member_id, program=to_program).first() if to_program else None
    )
    # Both accounts in id order, as every money path that holds two does.
    held = {
        account.pk: rows.joined_after_lock(account, "tier")
        for account in locked(
            Account.objects.filter(pk__in=[from_account.pk] + ([existing_to.pk] if existing_to else [])).order_by("pk")
        )
    }
    account = held[from_account.pk]
    to_account = held.get(existing_to.pk) if existing_to else None
    previous = _same_content(
        LedgerEntry.objects.filter(program=account.program, idempotency_key=f"{key}:out").first(), fingerprint
    )
    previous_in = (
        _same_content(LedgerEntry.objects.filter(program=to_program, idempotency_key=f"{key}:in").first(), fingerprint)
        if to_program
        else None
    )
    if previous or previous_in:
        return MigrateResult(previous, previous_in, to_account, 0)
    now = timezone.now()
    released = account.pending
    if released:
        LedgerEntry.objects.filter(account=account, is_available=False).update(is_available=True)
        account.balance, account.pending = account.balance + released, 0
    if points_out != account.balance:
        raise ApplicationError(
            _("The balance changed to %(balance)s points while the migration was prepared; prepare it again.")
            % {"balance": account.balance},
            code="balance_changed",
        )
    out_entry = None
    if points_out:
        out_entry = _post_debit(
            account,
            kind=LedgerEntry.Kind.MIGRATE,
            points=points_out,
            reason=_require_reason(reason_out),
            idempotency_key=f"{key}:out",
            fingerprint=fingerprint,
            created_by=created_by,
        )
        _touch(account, now)
    _save_account(account)
    in_entry = None
    if to_program is not None:
        if to_account is None:
            to_account = _migration_account_open(account, to_program=to_program, to_tier=to_tier, at=now)
        elif to_tier is not None and (to_account.tier is None or to_tier.rank > to_account.tier.rank):
            _set_tier(
                to_account, to_tier, reason=TierChange.Reason.IMPORT, at=now, entry_tier=program_entry_tier(to_program)
            )
        if points_in:
            in_entry = _post_lot(
                to_account,
                kind=LedgerEntry.Kind.MIGRATE,
                points=points_in,
                qualifying_points=0,
                reason=_require_reason(reason_in),
                occurred_at=now,
                activity_type="migration",
                idempotency_key=f"{key}:in",
                fingerprint=fingerprint,
                created_by=created_by,
            )
            _touch(to_account, now)
        _save_account(to_account)
    return MigrateResult(out_entry, in_entry, to_account, released)


def _migration_account_open(
    account: Account, *, to_program: Program, to_tier: Tier | None, at: datetime.datetime
) -> Account:
    """The member's account in the program they move to: no welcome bonus (they bring their points),
    enrolled as in the program they leave; the tier change is recorded as an import."""
    entry_tier = program_entry_tier(to_program)
    tier = to_tier or entry_tier
    to_account = Account.objects.create(
        member=account.member,
        program=to_program,
        tier=entry_tier,
        tier_since=at,
        enrolled_at=at,
        last_activity_at=at,
        enrolled_by=account.enrolled_by,
        enrolled_at_store=account.enrolled_at_store,
    )
    to_account.program = to_program
    TierChange.objects.create(
        account=to_account, from_tier=None, to_tier=entry_tier, reason=TierChange.Reason.ENROLMENT, changed_at=at
    )
    if tier.pk != entry_tier.pk:
        _set_tier(to_account, tier, reason=TierChange.Reason.IMPORT, at=at, entry_tier=entry_tier)
    return to_account


# --- batch jobs: set-based SQL, in chunks of accounts, each chunk one transaction ---------------------


@dataclass(frozen=True)
class BatchResult:
    rows: int = 0
    points: int = 0

    def __add__(self, other: "BatchResult") -> "BatchResult":
        return BatchResult(rows=self.rows + other.rows, points=self.points + other.points)


ENTRY = LedgerEntry._meta.db_table
ACCOUNT = Account._meta.db_table
MEMBER = Member._meta.db_table
TIER_CHANGE = TierChange._meta.db_table
PURCHASE = Purchase._meta.db_table


_ACCOUNT_VALUES_SQL = """
INSERT INTO {values} (account_id, program_id, spend_12m, purchases_12m, decile, computed_at, {period_columns})
SELECT a.id, a.program_id, COALESCE(p.spend_12m, 0), COALESCE(p.visits, 0),
       NTILE(10) OVER (ORDER BY COALESCE(p.spend_12m, 0) DESC, a.id), %s, {period_values}
FROM {accounts} a
JOIN {members} m ON m.id = a.member_id AND m.status = %s
LEFT JOIN (
    SELECT account_id, {spend_sums},
           SUM(CASE WHEN occurred_at > %s THEN amount - returned_amount ELSE 0 END) AS spend_12m,
           COUNT(CASE WHEN occurred_at > %s THEN 1 END) AS visits
    FROM {purchases}
    WHERE program_id = %s AND occurred_at > %s AND occurred_at <= %s
    GROUP BY account_id
) p ON p.account_id = a.id
LEFT JOIN (
    SELECT account_id, {points_sums}
    FROM {ledger}
    WHERE program_id = %s AND kind = %s AND occurred_at > %s AND occurred_at <= %s
    GROUP BY account_id
) e ON e.account_id = a.id
WHERE a.program_id = %s
ON CONFLICT (account_id) DO UPDATE SET spend_12m = EXCLUDED.spend_12m, purchases_12m = EXCLUDED.purchases_12m,
    decile = EXCLUDED.decile, computed_at = EXCLUDED.computed_at, {period_updates}
"""


@transaction.atomic
def account_values_refresh(*, program: Program, as_of: datetime.datetime | None = None) -> int:
    """Rank the program's active members by spend (net of returns) over the 12 months before `as_of`
    into deciles, and sum each one's spend and earned points over each of `AccountValue.PERIODS`
    (the days up to and including `as_of`), in one statement (PostgreSQL and SQLite alike); returns
    the accounts ranked."""
    as_of = as_of or timezone.now()
    moment = connection.ops.adapt_datetimefield_value  # raw SQL: datetimes as the ORM stores them
    periods = AccountValue.PERIODS
    starts = [moment(as_of - datetime.timedelta(days=days)) for days in periods]
    year_ago = as_of - relativedelta(months=12)
    earliest = min(year_ago, as_of - datetime.timedelta(days=max(periods)))
    columns = [f"{source}_{days}d" for source in ("spend", "points") for days in periods]
    sql = _ACCOUNT_VALUES_SQL.format(
        values=AccountValue._meta.db_table,
        accounts=Account._meta.db_table,
        members=Member._meta.db_table,
        purchases=Purchase._meta.db_table,
        ledger=LedgerEntry._meta.db_table,
        period_columns=", ".join(columns),
        period_values=", ".join(
            f"COALESCE({'p' if column.startswith('spend') else 'e'}.{column}, 0)" for column in columns
        ),
        spend_sums=", ".join(
            f"SUM(CASE WHEN occurred_at > %s THEN amount - returned_amount ELSE 0 END) AS spend_{days}d"
            for days in periods
        ),
        points_sums=", ".join(
            f"SUM(CASE WHEN occurred_at > %s THEN points ELSE 0 END) AS points_{days}d" for days in periods
        ),
        period_updates=", ".join(f"{column} = EXCLUDED.{column}" for column in columns),
    )
    params = [
        moment(as_of),
        Member.Status.ACTIVE,
        *starts,
        moment(year_ago),
        moment(year_ago),
        program.pk,
        moment(earliest),
        moment(as_of),
        *starts,
        program.pk,
        LedgerEntry.Kind.EARN,
        moment(earliest),
        moment(as_of),
        program.pk,
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        ranked = cursor.rowcount
    # Members who left since the last refresh are no longer ranked.
    AccountValue.objects.filter(program=program).exclude(computed_at=as_of).delete()
    if connection.vendor == "postgresql":
        # Every row was just rewritten: until autovacuum gets to it the planner judges segments' decile
        # criterion on the old statistics (3.3 s instead of 0.85 s at 1,000,000 members, bench/segments.py).
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {AccountValue._meta.db_table}")
    return ranked


def account_chunks(*, program: Program, chunk_size: int = 20_000):
    """Disjoint [low, high) ranges of account ids covering the program, for the batch jobs' chunks."""
    bounds = Account.objects.filter(program=program).aggregate(low=Min("pk"), high=Max("pk"))
    if bounds["low"] is None:
        return
    for low in range(bounds["low"], bounds["high"] + 1, chunk_size):
        yield low, low + chunk_size


def _each_chunk(chunk_job, *, program: Program, as_of: datetime.datetime | None, chunk_size: int) -> BatchResult:
    """Run a batch job's chunk function over the whole program, one transaction per chunk."""
    as_of = as_of or timezone.now()
    total = BatchResult()
    for low, high in account_chunks(program=program, chunk_size=chunk_size):
        total += chunk_job(program=program, low=low, high=high, as_of=as_of)
    return total


def _lock_accounts(low: int, high: int, where_sql: str, params: list) -> list[int]:
    """Lock, in id order, the accounts of the chunk [low, high) that its statements are about to change."""
    return list(
        Account.objects.select_for_update()
        .filter(pk__gte=low, pk__lt=high, pk__in=RawSQL(where_sql, params))
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def _expiry_reason(program: Program) -> str:
    months = program.expiry_months
    if program.expiry_policy == Program.ExpiryPolicy.INACTIVITY:
        text = ngettext(
            "Points expired: no activity for %(months)s month",
            "Points expired: no activity for %(months)s months",
            months,
        )
    elif program.expiry_policy == Program.ExpiryPolicy.END_OF_NTH_MONTH:
        text = ngettext(
            "Points expired: unused by the end of the month after they were earned",
            "Points expired: unused by the end of month %(months)s after they were earned",
            months,
        )
    else:
        text = ngettext(
            "Points expired: unused %(months)s month after they were earned",
            "Points expired: unused %(months)s months after they were earned",
            months,
        )
    return text % {"months": months}


def _expiry_reason_sql(program: Program) -> tuple[str, list[str]]:
    """A CASE over the member's language, so each member reads why in their own language."""
    whens, params = [], []
    for code, _name in settings.LANGUAGES:
        with translation.override(code):
            whens.append("WHEN %s THEN %s")
            params += [code, _expiry_reason(program)]
    with translation.override(settings.LANGUAGE_CODE):
        params.append(_expiry_reason(program))
    return f"CASE m.language {' '.join(whens)} ELSE %s END", params


def expire_due(*, program: Program, as_of: datetime.datetime | None = None, chunk_size: int = 20_000) -> BatchResult:
    """Turn the unspent part of lapsed lots into expire entries. Safe to re-run and to kill: a chunk
    commits whole, and an expired lot has nothing left to expire."""
    return _each_chunk(expire_due_chunk, program=program, as_of=as_of, chunk_size=chunk_size)


def expire_due_chunk(*, program: Program, low: int, high: int, as_of: datetime.datetime) -> BatchResult:
    """`expire_due` for the accounts with ids in [low, high), in one transaction. Chunks are disjoint, so
    several workers can run different chunks of one run at the same time."""
    if program.expiry_policy == Program.ExpiryPolicy.NEVER:
        return BatchResult()
    due = (
        "l.program_id = %s AND l.account_id >= %s AND l.account_id < %s AND l.remaining > 0"
        " AND l.is_available = %s AND (l.expires_at <= %s"
    )
    due_params = [program.pk, low, high, True, as_of]
    if program.expiry_policy == Program.ExpiryPolicy.INACTIVITY:
        due += (
            f" OR l.account_id IN (SELECT a2.id FROM {ACCOUNT} a2 WHERE a2.program_id = %s"
            " AND a2.id >= %s AND a2.id < %s AND a2.last_activity_at <= %s)"
        )
        due_params += [program.pk, low, high, as_of - relativedelta(months=program.expiry_months)]
    due += ")"
    reason_sql, reason_params = _expiry_reason_sql(program)
    with transaction.atomic(), connection.cursor() as cursor:
        if not _lock_accounts(low, high, f"SELECT DISTINCT l.account_id FROM {ENTRY} l WHERE {due}", due_params):
            return BatchResult()
        cursor.execute(
            f"UPDATE {ACCOUNT} SET balance = balance - d.points, lifetime_expired = lifetime_expired + d.points"
            f" FROM (SELECT l.account_id, SUM(l.remaining) AS points FROM {ENTRY} l WHERE {due} GROUP BY l.account_id) d"
            f" WHERE {ACCOUNT}.id = d.account_id AND {ACCOUNT}.id >= %s AND {ACCOUNT}.id < %s",
            [*due_params, low, high],
        )
        # Each expire entry names the lot it takes back (`reverses`): that is its allocation.
        cursor.execute(
            f"INSERT INTO {ENTRY} (program_id, account_id, kind, points, qualifying_points, remaining, expires_at,"
            " available_at, is_available, occurred_at, reason, reverses_id, fingerprint, created_at)"
            f" SELECT l.program_id, l.account_id, %s, -l.remaining, 0, 0, NULL, %s, %s, %s, {reason_sql}, l.id, '', %s"
            f" FROM {ENTRY} l JOIN {ACCOUNT} a ON a.id = l.account_id AND a.id >= %s AND a.id < %s"
            f" JOIN {MEMBER} m ON m.id = a.member_id WHERE {due}",
            [LedgerEntry.Kind.EXPIRE, as_of, True, as_of, *reason_params, timezone.now(), low, high, *due_params],
        )
        expired = cursor.rowcount
        cursor.execute(f"SELECT COALESCE(SUM(l.remaining), 0) FROM {ENTRY} l WHERE {due}", due_params)
        points = int(cursor.fetchone()[0])
        cursor.execute(f"UPDATE {ENTRY} AS l SET remaining = 0 WHERE {due}", due_params)
    return BatchResult(rows=expired, points=points)


def release_pending(
    *, program: Program, as_of: datetime.datetime | None = None, chunk_size: int = 20_000
) -> BatchResult:
    """Make points available once their return window has passed. Safe to re-run."""
    return _each_chunk(release_pending_chunk, program=program, as_of=as_of, chunk_size=chunk_size)


def release_pending_chunk(*, program: Program, low: int, high: int, as_of: datetime.datetime) -> BatchResult:
    """`release_pending` for the accounts with ids in [low, high), in one transaction."""
    due = "l.program_id = %s AND l.account_id >= %s AND l.account_id < %s AND l.is_available = %s AND l.available_at <= %s"
    due_params = [program.pk, low, high, False, as_of]
    with transaction.atomic(), connection.cursor() as cursor:
        if not _lock_accounts(low, high, f"SELECT DISTINCT l.account_id FROM {ENTRY} l WHERE {due}", due_params):
            return BatchResult()
        cursor.execute(
            f"UPDATE {ACCOUNT} SET balance = balance + d.points, pending = pending - d.points"
            f" FROM (SELECT l.account_id, SUM(l.points) AS points FROM {ENTRY} l WHERE {due} GROUP BY l.account_id) d"
            f" WHERE {ACCOUNT}.id = d.account_id AND {ACCOUNT}.id >= %s AND {ACCOUNT}.id < %s",
            [*due_params, low, high],
        )
        cursor.execute(f"SELECT COUNT(*), COALESCE(SUM(l.points), 0) FROM {ENTRY} l WHERE {due}", due_params)
        released, points = cursor.fetchone()
        cursor.execute(f"UPDATE {ENTRY} AS l SET is_available = %s WHERE {due}", [True, *due_params])
    return BatchResult(rows=int(released), points=int(points))


EXPIRY_WARNING_DAYS = 30


def expiry_warnings_send(
    *, program: Program, as_of: datetime.datetime | None = None, chunk_size: int = 20_000
) -> BatchResult:
    """Email each member whose points expire within EXPIRY_WARNING_DAYS, once per lot. Safe to re-run."""
    return _each_chunk(expiry_warnings_send_chunk, program=program, as_of=as_of, chunk_size=chunk_size)


def expiry_warnings_send_chunk(*, program: Program, low: int, high: int, as_of: datetime.datetime) -> BatchResult:
    """`expiry_warnings_send` for the accounts with ids in [low, high): one email per member, naming the
    points and the first date. A lot is left out when the member's last warning already covered it (it
    existed then and expired within that warning's window). A service message: sent whatever the
    marketing consent. The accounts are marked in the chunk's transaction, after the emails went out:
    a worker killed in between sends that chunk's emails again, never loses one."""
    through = as_of + datetime.timedelta(days=EXPIRY_WARNING_DAYS)
    due = (
        "l.program_id = %s AND l.account_id >= %s AND l.account_id < %s AND l.remaining > 0"
        " AND l.expires_at > %s AND l.expires_at <= %s"
        " AND (a.expiry_warned_at IS NULL OR l.created_at > a.expiry_warned_at OR l.expires_at > a.expiry_warned_through)"
        " AND m.status = %s AND m.email <> ''"
    )
    due_params = [program.pk, low, high, as_of, through, Member.Status.ACTIVE]
    joins = f"FROM {ENTRY} l JOIN {ACCOUNT} a ON a.id = l.account_id JOIN {MEMBER} m ON m.id = a.member_id"
    with transaction.atomic(), connection.cursor() as cursor:
        if not _lock_accounts(low, high, f"SELECT DISTINCT l.account_id {joins} WHERE {due}", due_params):
            return BatchResult()
        cursor.execute(
            "SELECT a.id, m.email, m.first_name, m.company, m.language, SUM(l.remaining), MIN(l.expires_at)"
            f" {joins} WHERE {due} GROUP BY a.id, m.id ORDER BY a.id",
            due_params,
        )
        warnings = cursor.fetchall()
        url = settings.SITE_URL + reverse("me:rewards")
        messages = []
        for _account_id, email, first_name, company, language, points, first_date in warnings:
            with translation.override(language):
                facts = {
                    "name": first_name or company,
                    "points": points,
                    "points_name": program.points_name,
                    "program": program.name,
                    "date": date_format(timezone.localtime(_aware(first_date)).date(), "DATE_FORMAT"),
                    "url": url,
                }
                subject = _("%(points)s %(points_name)s expire on %(date)s") % facts
                body = render_to_string("email/points_expiring.txt", facts)
            messages.append(EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [email]))
        get_connection().send_messages(messages)
        Account.objects.filter(pk__in=[row[0] for row in warnings]).update(
            expiry_warned_at=as_of, expiry_warned_through=through
        )
    return BatchResult(rows=len(warnings), points=sum(row[5] for row in warnings))


def _aware(value) -> datetime.datetime:
    """A timestamp from raw SQL: aware on PostgreSQL, naive UTC on SQLite."""
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    return value if timezone.is_aware(value) else timezone.make_aware(value, datetime.UTC)


def _kept_window(program: Program, as_of: datetime.datetime) -> tuple[datetime.datetime, datetime.datetime]:
    """After an evaluation, the member keeps (or holds) the tier by qualifying in this window."""
    if program.qualification_window == Program.Window.CALENDAR_YEAR:
        return engine.qualification_window(program, as_of)
    return engine.tier_review_window(program, as_of)


def evaluate_tiers(
    *, program: Program, as_of: datetime.datetime | None = None, chunk_size: int = 20_000
) -> BatchResult:
    """Review tiers whose window has closed (after the grace months): members who did not re-qualify go
    down one tier or straight to the tier they earned. Upgrades happen at earning, not here. Safe to re-run."""
    return _each_chunk(evaluate_tiers_chunk, program=program, as_of=as_of, chunk_size=chunk_size)


def evaluate_tiers_chunk(*, program: Program, low: int, high: int, as_of: datetime.datetime) -> BatchResult:
    """`evaluate_tiers` for the accounts with ids in [low, high), in one transaction."""
    tiers = list(program.tiers.order_by("rank"))
    if len(tiers) < 2:
        return BatchResult()
    entry_tier = tiers[0]
    cutoff = as_of - relativedelta(months=program.downgrade_grace_months)
    current_start, current_end = engine.qualification_window(program, as_of)
    kept_start, kept_end = _kept_window(program, as_of)

    if program.qualifying_basis == Program.QualifyingBasis.SPEND:

        def qualifying(start_sql: str, end_sql: str) -> str:
            return (
                f"COALESCE((SELECT SUM(p.amount - p.returned_amount) FROM {PURCHASE} p WHERE p.account_id = a.id"
                f" AND p.occurred_at >= {start_sql} AND p.occurred_at < {end_sql}), 0)"
            )
    else:

        def qualifying(start_sql: str, end_sql: str) -> str:
            return (
                f"COALESCE((SELECT SUM(l.qualifying_points) FROM {ENTRY} l WHERE l.account_id = a.id"
                f" AND l.occurred_at >= {start_sql} AND l.occurred_at < {end_sql}), 0)"
            )

    # Positions 0..n-1 in rank order, so "one tier down" is position - 1 whatever the ranks are.
    position_of = " ".join(f"WHEN {tier.pk} THEN {i}" for i, tier in enumerate(tiers))
    earned_position = " ".join(f"WHEN q >= {tier.threshold} THEN {i}" for i, tier in reversed(list(enumerate(tiers))))
    tier_at = " ".join(f"WHEN {i} THEN {tier.pk}" for i, tier in enumerate(tiers) if i)
    if program.downgrade_mode == Program.DowngradeMode.ONE_TIER:
        target = "CASE WHEN earned > current_position - 1 THEN earned ELSE current_position - 1 END"
    else:
        target = "earned"

    # OFFSET 0 keeps PostgreSQL from inlining the sums' subquery, which would re-run both sums for every
    # mention of q below (20x slower); SQLite, the demo's database, evaluates it once anyway.
    fence = " OFFSET 0" if connection.vendor == "postgresql" else ""
    due = "a.program_id = %s AND a.id >= %s AND a.id < %s AND a.tier_review_at <= %s AND a.tier_id <> %s"
    due_params = [program.pk, low, high, cutoff, entry_tier.pk]
    with transaction.atomic(), connection.cursor() as cursor:
        if not _lock_accounts(low, high, f"SELECT a.id FROM {ACCOUNT} a WHERE {due}", due_params):
            return BatchResult()
        # What each member earned: the better of the window under review and the current window so far.
        earned_sql = (
            f"SELECT a.id, a.tier_id, CASE WHEN q_review >= q_now THEN q_review ELSE q_now END AS q FROM ("
            f" SELECT a.id, a.tier_id, {qualifying('a.tier_window_start', 'a.tier_review_at')} AS q_review,"
            f" {qualifying('%s', '%s')} AS q_now FROM {ACCOUNT} a WHERE {due}{fence}) a"
        )
        cursor.execute(
            f"INSERT INTO {TIER_CHANGE} (account_id, from_tier_id, to_tier_id, reason, changed_at)"
            f" SELECT id, tier_id, CASE target WHEN 0 THEN {entry_tier.pk} {tier_at} END, %s, %s FROM ("
            f"  SELECT id, tier_id, current_position, {target} AS target FROM ("
            f"   SELECT id, tier_id, CASE tier_id {position_of} END AS current_position,"
            f"   CASE {earned_position} ELSE 0 END AS earned FROM ({earned_sql}) e) r) t"
            " WHERE target < current_position",
            [TierChange.Reason.DOWNGRADE, as_of, current_start, current_end, *due_params],
        )
        downgraded = cursor.rowcount
        moved = (
            f"SELECT tc.to_tier_id FROM {TIER_CHANGE} tc WHERE tc.account_id = a.id AND tc.changed_at = %s"
            " AND tc.reason = %s AND tc.from_tier_id = a.tier_id"
        )
        # The same accounts as `due`, still matched after their tier has changed below.
        reviewed_sql = "program_id = %s AND id >= %s AND id < %s AND tier_review_at <= %s"
        reviewed_params = due_params[:-1]
        cursor.execute(
            f"UPDATE {ACCOUNT} SET tier_id = COALESCE(({moved.replace('a.', f'{ACCOUNT}.')}), tier_id),"
            f" tier_since = CASE WHEN EXISTS ({moved.replace('a.', f'{ACCOUNT}.')}) THEN %s ELSE tier_since END"
            f" WHERE {reviewed_sql}",
            [as_of, TierChange.Reason.DOWNGRADE, as_of, TierChange.Reason.DOWNGRADE, as_of, *reviewed_params],
        )
        # Everyone reviewed starts a new window; members back at the entry tier have nothing to keep.
        cursor.execute(
            f"UPDATE {ACCOUNT} SET"
            " tier_window_start = CASE WHEN tier_id = %s THEN NULL ELSE %s END,"
            " tier_review_at = CASE WHEN tier_id = %s THEN NULL ELSE %s END"
            f" WHERE {reviewed_sql}",
            [entry_tier.pk, kept_start, entry_tier.pk, kept_end, *reviewed_params],
        )
        reviewed = cursor.rowcount
    return BatchResult(rows=reviewed, points=downgraded)


# --- program configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TierSpec:
    rank: int
    name: str
    threshold: int
    earn_multiplier: Decimal
    colour: str = "#6b7280"
    benefits: tuple[str, ...] | None = None  # None leaves the tier's benefits as they are


def tier_ladder_errors(tiers: list[TierSpec]) -> list[str]:
    """Why a tier ladder cannot be saved (empty when it can): one entry tier at threshold 0, ranks and
    thresholds rising together, unique names, positive multipliers."""
    errors = []
    if not tiers:
        return [_("Add at least the entry tier, at threshold 0.")]
    ranks = [tier.rank for tier in tiers]
    names = [tier.name.strip().lower() for tier in tiers]
    if len(set(ranks)) != len(ranks):
        errors.append(_("Two tiers have the same rank: give each tier its own rank."))
    if len(set(names)) != len(names):
        errors.append(_("Two tiers have the same name: give each tier its own name."))
    ladder = sorted(tiers, key=lambda tier: tier.rank)
    at_zero = [tier for tier in tiers if tier.threshold == 0]
    if len(at_zero) != 1:
        errors.append(
            _("Exactly one tier must start at threshold 0 (the entry tier); %(count)s do.") % {"count": len(at_zero)}
        )
    elif ladder[0].threshold != 0:
        errors.append(
            _("The entry tier (threshold 0) must have the lowest rank; %(name)s has a lower one.")
            % {"name": ladder[0].name}
        )
    for lower, higher in itertools.pairwise(ladder):
        if higher.threshold <= lower.threshold and higher.rank != lower.rank:
            errors.append(
                _(
                    "%(higher)s (rank %(higher_rank)s) needs a threshold above %(lower)s's %(threshold)s: tiers would overlap."
                )
                % {
                    "higher": higher.name,
                    "higher_rank": higher.rank,
                    "lower": lower.name,
                    "threshold": lower.threshold,
                }
            )
    for tier in tiers:
        if tier.earn_multiplier is None or tier.earn_multiplier <= 0:
            errors.append(_("The multiplier of %(name)s must be above zero (1 means no bonus).") % {"name": tier.name})
    return errors


@transaction.atomic
def tier_ladder_save(*, program: Program, tiers: list[TierSpec]) -> list[Tier]:
    """Replace the program's tier ladder in one go. Tiers are matched by rank; a tier members hold
    cannot be removed."""
    errors = tier_ladder_errors(tiers)
    if errors:
        raise ApplicationError(" ".join(errors), code="invalid_tier_ladder", extra={"errors": errors})
    program = Program.objects.select_for_update().get(pk=program.pk)
    existing = {tier.rank: tier for tier in program.tiers.all()}
    wanted = {spec.rank for spec in tiers}
    removed = [tier for rank, tier in existing.items() if rank not in wanted]
    held = [tier.name for tier in removed if tier.accounts.exists()]
    if held:
        raise ApplicationError(
            _("Members hold %(tiers)s: move them before removing the tier.") % {"tiers": ", ".join(held)},
            code="tier_in_use",
        )
    for tier in removed:
        tier.delete()
    # Two passes so swapped thresholds or names never collide with the unique constraints midway.
    for offset, tier in enumerate(existing.values()):
        if tier.rank in wanted:
            Tier.objects.filter(pk=tier.pk).update(threshold=2_000_000_000 + offset, name=f"~{tier.pk}")
    saved = []
    for spec in sorted(tiers, key=lambda spec: spec.rank):
        tier = existing.get(spec.rank) or Tier(program=program, rank=spec.rank)
        tier.name, tier.threshold, tier.earn_multiplier = spec.name.strip(), spec.threshold, spec.earn_multiplier
        tier.colour = spec.colour
        tier.full_clean(exclude=["program"], validate_unique=False, validate_constraints=False)
        tier.save()
        if spec.benefits is not None:
            # The ladder edits texts; a benefit whose text stays keeps the reward it was linked to.
            links = dict(tier.benefits.values_list("text", "reward_id"))
            tier.benefits.all().delete()
            TierBenefit.objects.bulk_create(
                TierBenefit(tier=tier, position=position, text=text[:160], reward_id=links.get(text[:160]))
                for position, text in enumerate(text for text in spec.benefits if text.strip())
            )
        saved.append(tier)
    return saved
