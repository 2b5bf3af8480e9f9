"""Writes of the rewards app: the catalogue, redemptions and vouchers.

Money paths lock rows in one fixed order: the account, then the reward, then the redemption or the
voucher. Points move only through loyalty.services (spend, refund), in the same transaction.
"""

import datetime
from dataclasses import dataclass

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from loyalty import services as engine_services
from loyalty.core import rows
from loyalty.core.exceptions import ApplicationError
from loyalty.core.idempotency import fingerprint, key_reused_error
from loyalty.models import Account, Program
from loyalty.selectors import store_programs
from members.models import Store
from rewards import codes, eligibility
from rewards.models import Redemption, Reward, Voucher
from rewards.selectors import redeemed_in_limit_period


@dataclass(frozen=True)
class RedemptionResult:
    redemption: Redemption
    replayed: bool = False

    @property
    def voucher(self) -> Voucher | None:
        return getattr(self.redemption, "voucher", None)


def _validation_error(error: ValidationError) -> ApplicationError:
    """A model's full_clean() refusal as one message, naming the first field at fault."""
    fields = getattr(error, "message_dict", {})
    field = next((name for name in fields if name != "__all__"), None)
    return ApplicationError(" ".join(error.messages), code="invalid", extra={"field": field, "fields": fields})


# --- the catalogue --------------------------------------------------------------------------------

REWARD_FIELDS = (
    "name",
    "description",
    "image",
    "kind",
    "points_cost",
    "value",
    "min_tier",
    "regions",
    "member_types",
    "valid_from",
    "valid_until",
    "stock",
    "limit_per_member",
    "limit_period",
    "fulfilment",
    "voucher_valid_days",
    "featured",
    "is_active",
)


def reward_check(reward: Reward) -> None:
    """Rules a reward must follow beyond its fields' own (ValidationError naming the fields at fault)."""
    errors = {}
    if reward.kind in {Reward.Kind.VOUCHER_AMOUNT, Reward.Kind.VOUCHER_PERCENT}:
        if reward.fulfilment != Reward.Fulfilment.VOUCHER:
            errors["fulfilment"] = _("A voucher reward issues its voucher code at once: choose that fulfilment.")
        if reward.value is None:
            errors["value"] = _("Give the voucher's value.")
    if reward.kind == Reward.Kind.VOUCHER_PERCENT and reward.value is not None and reward.value > 100:
        errors["value"] = _("A percentage discount is at most 100.")
    if (reward.limit_per_member is None) != (not reward.limit_period):
        errors["limit_period"] = _("Give both the limit per member and its period, or neither.")
    if reward.valid_from and reward.valid_until and reward.valid_until < reward.valid_from:
        errors["valid_until"] = _("The end date comes before the start date.")
    if reward.min_tier_id and reward.program_id and reward.min_tier.program_id != reward.program_id:
        errors["min_tier"] = _("Choose a tier of this reward's program.")
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def reward_save(*, program: Program, reward: Reward | None = None, **fields) -> Reward:
    """Create a reward (reward=None) or change one. Stock changes here are a staff correction of the count."""
    unknown = set(fields) - set(REWARD_FIELDS)
    if unknown:
        raise TypeError(f"unknown reward fields: {sorted(unknown)}")
    if reward is None:
        reward = Reward(program=program)
    elif reward.program_id != program.pk:
        raise ApplicationError(_("This reward belongs to another program."), code="invalid")
    for name, value in fields.items():
        setattr(reward, name, value)
    try:
        reward.clean_fields()  # types first, then the rules that name the field to fix, then the constraints
        reward_check(reward)
        reward.full_clean()
    except ValidationError as error:
        raise _validation_error(error) from None
    reward.save()
    return reward


# --- redemption -----------------------------------------------------------------------------------


def _lock_reward(reward: Reward) -> Reward:
    locked = Reward.objects.select_for_update(of=("self",)).select_related("program", "min_tier").get(pk=reward.pk)
    return rows.joined_after_lock(locked, "min_tier")


@transaction.atomic
def redeem(
    *,
    account: Account,
    reward: Reward,
    idempotency_key: str,
    channel: str,
    store: Store | None = None,
    created_by=None,
) -> RedemptionResult:
    """Spend points on a reward: eligibility, stock and limits checked under the account's and the
    reward's locks, the points spent through the engine, stock taken, the voucher issued; all or nothing.
    A retry with the same key returns the first redemption."""
    key = (idempotency_key or "").strip()
    if not key or len(key) > 128:
        raise ApplicationError(
            _("An idempotency key of 1 to 128 characters is required, so that a retry never redeems twice."),
            code="idempotency_key_required",
        )
    if channel not in Redemption.Channel.values:
        raise ApplicationError(_("Unknown channel “%(channel)s”.") % {"channel": channel}, code="invalid")
    digest = fingerprint(account=account.pk, reward=reward.pk)
    account = engine_services.account_lock(account)  # fixed order: the account first, then the reward
    existing = Redemption.objects.filter(program=account.program, idempotency_key=key).first()
    if existing is not None:
        if existing.fingerprint != digest:
            raise key_reused_error()
        return RedemptionResult(existing, replayed=True)
    reward = _lock_reward(reward)
    now = timezone.now()
    refused = eligibility.refusal(
        reward,
        account,
        today=timezone.localdate(now),
        redeemed_in_period=redeemed_in_limit_period(account=account, reward=reward, as_of=now),
    )
    if refused is not None:
        raise ApplicationError(
            refused.message,
            code=refused.code,
            extra={"points_missing": refused.points_missing} if refused.points_missing else {},
        )
    try:
        with transaction.atomic():
            redemption = Redemption.objects.create(
                program=account.program,
                account=account,
                reward=reward,
                points=reward.points_cost,
                status=Redemption.Status.REQUESTED,
                channel=channel,
                store=store,
                created_by=created_by,
                created_at=now,
                idempotency_key=key,
                fingerprint=digest,
            )
    except IntegrityError:  # the same key, at the same instant, on another account
        raise key_reused_error() from None
    redemption.entry = engine_services.spend(
        account=account,
        points=reward.points_cost,
        reason=_("Redeemed: %(reward)s") % {"reward": reward.name},
        idempotency_key=f"redemption:{redemption.pk}",
        source=redemption,
        store=store,
        created_by=created_by,
    )
    if reward.stock is not None:
        Reward.objects.filter(pk=reward.pk).update(stock=F("stock") - 1)
    if reward.issues_voucher:
        _voucher_create(
            account=account,
            description=reward.name,
            amount=reward.value if reward.kind != Reward.Kind.VOUCHER_PERCENT else None,
            percent=reward.value if reward.kind == Reward.Kind.VOUCHER_PERCENT else None,
            valid_from=timezone.localdate(now),
            valid_until=timezone.localdate(now) + datetime.timedelta(days=reward.voucher_valid_days - 1),
            issue_key=f"redemption:{redemption.pk}",
            redemption=redemption,
        )
        redemption.status = Redemption.Status.FULFILLED
        redemption.fulfilled_at = now
    redemption.save(update_fields=["entry", "status", "fulfilled_at"])
    return RedemptionResult(redemption)


def _lock_redemption(redemption: Redemption) -> tuple[Account, Redemption]:
    account = engine_services.account_lock(redemption.account)
    _lock_reward(redemption.reward)
    redemption = (
        Redemption.objects.select_for_update(of=("self",)).select_related("reward", "entry").get(pk=redemption.pk)
    )
    return account, redemption


@transaction.atomic
def redemption_cancel(*, redemption: Redemption, reason: str, cancelled_by) -> Redemption:
    """Give the points back (a reversing entry) and the item back to stock; once, however often asked.
    A redemption whose voucher was already used cannot be cancelled."""
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(
            _("Give a reason for cancelling: the member reads it on their statement."),
            code="reason_required",
            extra={"field": "reason"},
        )
    _account, redemption = _lock_redemption(redemption)
    if redemption.status == Redemption.Status.CANCELLED:
        return redemption
    voucher = Voucher.objects.select_for_update().filter(redemption=redemption).first()
    if voucher is not None and voucher.status == Voucher.Status.REDEEMED:
        raise ApplicationError(
            _("Its voucher was used on %(date)s at %(store)s, so this redemption cannot be cancelled.")
            % {
                "date": date_format(timezone.localtime(voucher.redeemed_at), "DATETIME_FORMAT"),
                "store": voucher.redeemed_store,
            },
            code="voucher_already_redeemed",
        )
    engine_services.refund(
        entry=redemption.entry,
        reason=_("Cancelled: %(reward)s (%(reason)s)") % {"reward": redemption.reward.name, "reason": reason},
        created_by=cancelled_by,
    )
    if redemption.reward.stock is not None:
        Reward.objects.filter(pk=redemption.reward_id).update(stock=F("stock") + 1)
    if voucher is not None:
        voucher.status = Voucher.Status.CANCELLED
        voucher.save(update_fields=["status"])
    redemption.status = Redemption.Status.CANCELLED
    redemption.cancelled_at = timezone.now()
    redemption.cancelled_by = cancelled_by
    redemption.cancel_reason = reason[:200]
    redemption.save(update_fields=["status", "cancelled_at", "cancelled_by", "cancel_reason"])
    return redemption


@transaction.atomic
def redemption_fulfil(*, redemption: Redemption, fulfilled_by) -> Redemption:
    """Staff shipped, booked or donated it (manual fulfilment)."""
    redemption = Redemption.objects.select_for_update().get(pk=redemption.pk)
    if redemption.status == Redemption.Status.FULFILLED:
        return redemption
    if redemption.status == Redemption.Status.CANCELLED:
        raise ApplicationError(_("This redemption was cancelled; it cannot be fulfilled."), code="redemption_cancelled")
    redemption.status = Redemption.Status.FULFILLED
    redemption.fulfilled_at = timezone.now()
    redemption.fulfilled_by = fulfilled_by
    redemption.save(update_fields=["status", "fulfilled_at", "fulfilled_by"])
    return redemption


# --- vouchers --------------------------------------------------------------------------------------


def _voucher_create(**fields) -> Voucher:
    """Insert a voucher with a fresh code (a collision of 50 random bits is retried, not assumed away)."""
    for _attempt in range(5):
        try:
            with transaction.atomic():
                return Voucher.objects.create(
                    program=fields["account"].program,
                    currency=fields["account"].program.currency,
                    code=codes.generate(),
                    **fields,
                )
        except IntegrityError:
            if Voucher.objects.filter(issue_key=fields["issue_key"]).exists():
                raise
    raise ApplicationError(_("No free voucher code was found; try again."), code="voucher_code_exhausted")


@transaction.atomic
def voucher_issue(
    *,
    account: Account,
    description: str,
    issue_key: str,
    valid_from: datetime.date,
    valid_until: datetime.date,
    amount=None,
    percent=None,
    source=None,
) -> Voucher:
    """A voucher given, not bought (a campaign's award). `issue_key` names what issued it: issuing twice
    with one key returns the first voucher."""
    if existing := Voucher.objects.filter(issue_key=issue_key).first():
        return existing
    if valid_until < valid_from:
        raise ApplicationError(
            _("The voucher would end before it starts."), code="invalid", extra={"field": "valid_until"}
        )
    if amount is not None and percent is not None:
        raise ApplicationError(_("A voucher has a value or a percentage, not both."), code="invalid")
    return _voucher_create(
        account=account,
        description=description[:160],
        amount=amount,
        percent=percent,
        valid_from=valid_from,
        valid_until=valid_until,
        issue_key=issue_key,
        source=source,
    )


def _not_found() -> ApplicationError:
    # The same words for a code that does not exist and for one of a program this store does not run.
    return ApplicationError(
        _("No voucher with this code can be used here. Check the code on the member's screen or print-out."),
        code="voucher_not_found",
        extra={"field": "code"},
    )


def voucher_for_store(*, code: str, store: Store) -> Voucher:
    """The voucher a clerk typed, if their store may accept it; else a refusal that reveals nothing."""
    code = codes.normalise(code)
    if not codes.well_formed(code):
        raise ApplicationError(
            _("This is not a valid voucher code: a character is mistyped. Codes have 12 letters and digits."),
            code="voucher_code_invalid",
            extra={"field": "code"},
        )
    voucher = (
        Voucher.objects.select_related("account__member", "program", "redeemed_store")
        .filter(code=code, program__in=store_programs(store=store))
        .first()
    )
    if voucher is None:
        raise _not_found()
    return voucher


def voucher_refusal(voucher: Voucher, *, today: datetime.date) -> ApplicationError | None:
    """Why this voucher cannot be used today, if it cannot."""
    if voucher.status == Voucher.Status.REDEEMED:
        return ApplicationError(
            _("This voucher was already used on %(date)s at %(store)s.")
            % {
                "date": date_format(timezone.localtime(voucher.redeemed_at), "DATETIME_FORMAT"),
                "store": voucher.redeemed_store,
            },
            code="voucher_already_redeemed",
        )
    if voucher.status == Voucher.Status.CANCELLED:
        return ApplicationError(_("This voucher was cancelled."), code="voucher_cancelled")
    if voucher.status == Voucher.Status.EXPIRED or today > voucher.valid_until:
        return ApplicationError(
            _("This voucher expired on %(date)s.") % {"date": date_format(voucher.valid_until, "DATE_FORMAT")},
            code="voucher_expired",
        )
    if today < voucher.valid_from:
        return ApplicationError(
            _("This voucher can be used from %(date)s.") % {"date": date_format(voucher.valid_from, "DATE_FORMAT")},
            code="voucher_not_yet_valid",
        )
    return None


@transaction.atomic
def voucher_redeem(*, code: str, store: Store, redeemed_by) -> Voucher:
    """Use a voucher at the till: once, whoever else tries the same code at the same instant."""
    voucher = voucher_for_store(code=code, store=store)
    voucher = Voucher.objects.select_for_update(of=("self",)).select_related("redeemed_store").get(pk=voucher.pk)
    if refused := voucher_refusal(voucher, today=timezone.localdate()):
        raise refused
    voucher.status = Voucher.Status.REDEEMED
    voucher.redeemed_at = timezone.now()
    voucher.redeemed_store = store
    voucher.redeemed_by = redeemed_by
    voucher.save(update_fields=["status", "redeemed_at", "redeemed_store", "redeemed_by"])
    return voucher


def vouchers_expire(*, as_of: datetime.date | None = None) -> int:
    """Mark every active voucher past its last day as expired: one statement, however many there are."""
    as_of = as_of or timezone.localdate()
    return Voucher.objects.filter(status=Voucher.Status.ACTIVE, valid_until__lt=as_of).update(
        status=Voucher.Status.EXPIRED
    )
