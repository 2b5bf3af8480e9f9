"""The reward catalogue, redemptions and vouchers.

Only rewards.services writes Redemption and Voucher rows; points move only through loyalty.services.
"""

import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from simple_history.models import HistoricalRecords

from loyalty.models import Account, EarnRule, LedgerEntry, Program, Tier
from members.models import Store


def reward_image_path(reward, filename: str) -> str:
    extension = filename.rsplit(".", 1)[-1].lower()[:5] if "." in filename else "img"
    return f"rewards/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.{extension}"


class Reward(models.Model):
    class Kind(models.TextChoices):
        VOUCHER_AMOUNT = "voucher_amount", _("Voucher of a money value")
        VOUCHER_PERCENT = "voucher_percent", _("Percentage discount voucher")
        CASHBACK = "cashback", _("Cashback credit")
        MERCHANDISE = "merchandise", _("Merchandise")
        EXPERIENCE = "experience", _("Experience or event")
        WORKSHOP = "workshop", _("Training workshop")
        MARKETING_CREDIT = "marketing_credit", _("Marketing or advertising credit")
        WARRANTY = "warranty", _("Extended warranty")
        DONATION = "donation", _("Charity donation")

    class Fulfilment(models.TextChoices):
        VOUCHER = "voucher", _("A voucher code, issued at once")
        MANUAL = "manual", _("Fulfilled by staff (shipping, booking, donation)")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="rewards", verbose_name=_("program"))
    name = models.CharField(_("name"), max_length=120)
    description = models.TextField(_("description"), blank=True)
    image = models.ImageField(_("image"), upload_to=reward_image_path, blank=True)
    kind = models.CharField(_("kind"), max_length=20, choices=Kind.choices)
    points_cost = models.PositiveIntegerField(_("points cost"), validators=[MinValueValidator(1)])
    value = models.DecimalField(
        _("value"),
        max_digits=10,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("Money value (in the program currency) or, for a percentage voucher, the percentage."),
    )
    min_tier = models.ForeignKey(
        Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("minimum tier")
    )
    regions = models.JSONField(_("regions"), default=list, blank=True, help_text=_("Empty: every region."))
    member_types = models.JSONField(_("member types"), default=list, blank=True, help_text=_("Empty: every type."))
    valid_from = models.DateField(_("offered from"), null=True, blank=True)
    valid_until = models.DateField(_("offered until (inclusive)"), null=True, blank=True)
    stock = models.PositiveIntegerField(_("stock"), null=True, blank=True, help_text=_("Empty: unlimited."))
    limit_per_member = models.PositiveSmallIntegerField(
        _("limit per member"), null=True, blank=True, validators=[MinValueValidator(1)], help_text=_("Empty: no limit.")
    )
    limit_period = models.CharField(_("limit period"), max_length=8, choices=EarnRule.CapPeriod.choices, blank=True)
    fulfilment = models.CharField(_("fulfilment"), max_length=8, choices=Fulfilment.choices)
    voucher_valid_days = models.PositiveSmallIntegerField(
        _("voucher valid for (days)"), default=90, validators=[MinValueValidator(1), MaxValueValidator(3660)]
    )
    featured = models.BooleanField(
        _("featured"), default=False, help_text=_("Shown first in the catalogue and on members' dashboards.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("reward")
        verbose_name_plural = _("rewards")
        ordering = ["program", "points_cost", "name"]
        constraints = [
            # Messages for the admin form; rewards.services.reward_check names the field to fix first.
            models.CheckConstraint(
                condition=Q(points_cost__gte=1),
                name="reward_cost_positive",
                violation_error_message=_("A reward costs at least one point."),
            ),
            models.CheckConstraint(
                condition=(Q(limit_per_member__isnull=True) & Q(limit_period=""))
                | (Q(limit_per_member__gte=1) & ~Q(limit_period="")),
                name="reward_limit_complete",
                violation_error_message=_("Give both the limit per member and its period, or neither."),
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name="reward_validity_ordered",
                violation_error_message=_("The end date comes before the start date."),
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=["voucher_amount", "voucher_percent"])
                | (Q(fulfilment="voucher") & Q(value__gt=0)),
                name="reward_voucher_has_value",
                violation_error_message=_("A voucher reward issues its code at once and has a value."),
            ),
            models.CheckConstraint(
                condition=~Q(kind="voucher_percent") | Q(value__lte=100),
                name="reward_percent_at_most_100",
                violation_error_message=_("A percentage discount is at most 100."),
            ),
        ]
        indexes = [models.Index(fields=["program", "is_active"])]

    def __str__(self) -> str:
        return self.name

    @property
    def issues_voucher(self) -> bool:
        return self.fulfilment == self.Fulfilment.VOUCHER


class Redemption(models.Model):
    class Status(models.TextChoices):
        REQUESTED = "requested", _("Requested")
        FULFILLED = "fulfilled", _("Fulfilled")
        CANCELLED = "cancelled", _("Cancelled")

    class Channel(models.TextChoices):
        ONLINE = "online", _("Member online")
        DESK = "desk", _("Clerk at the desk")
        API = "api", _("Point-of-sale API")
        STAFF = "staff", _("Program staff")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="redemptions")
    reward = models.ForeignKey(Reward, on_delete=models.PROTECT, related_name="redemptions")
    points = models.PositiveIntegerField(_("points"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # The ledger's redeem entry (whose source is this redemption), set in the transaction that creates both.
    entry = models.OneToOneField(
        LedgerEntry, on_delete=models.PROTECT, null=True, blank=True, related_name="redemption"
    )
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("redeemed at"), default=timezone.now)
    fulfilled_at = models.DateTimeField(_("fulfilled at"), null=True, blank=True)
    fulfilled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancelled_at = models.DateTimeField(_("cancelled at"), null=True, blank=True)
    cancelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    cancel_reason = models.CharField(_("reason for cancelling"), max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)

    class Meta:
        verbose_name = _("redemption")
        verbose_name_plural = _("redemptions")
        ordering = ["-created_at"]
        permissions = [("fulfil_redemption", _("Can fulfil or cancel redemptions"))]
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="redemption_idempotency_unique"),
            models.CheckConstraint(condition=Q(points__gte=1), name="redemption_points_positive"),
            models.CheckConstraint(
                condition=~Q(status="cancelled") | Q(cancelled_at__isnull=False), name="redemption_cancel_dated"
            ),
        ]
        indexes = [
            models.Index(fields=["account", "reward", "created_at"], name="redemption_limit_idx"),
            models.Index(fields=["program", "status"], name="redemption_queue_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.reward} ({self.points})"


class Voucher(models.Model):
    class Status(models.TextChoices):
        # Contexts: "Redeemed" and "Expired" also name ledger entry kinds, which translate differently.
        ACTIVE = "active", pgettext_lazy("voucher status", "Active")
        REDEEMED = "redeemed", pgettext_lazy("voucher status", "Used")
        EXPIRED = "expired", pgettext_lazy("voucher status", "Expired")
        CANCELLED = "cancelled", pgettext_lazy("voucher status", "Cancelled")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="vouchers")
    # Stored without separators (rewards.codes); shown in groups of four (codes.display).
    code = models.CharField(_("code"), max_length=16, unique=True)
    description = models.CharField(_("what it is"), max_length=160)
    amount = models.DecimalField(_("value"), max_digits=10, decimal_places=2, null=True, blank=True)
    percent = models.DecimalField(_("discount (%)"), max_digits=5, decimal_places=2, null=True, blank=True)
    currency = models.CharField(_("currency"), max_length=3)
    redemption = models.OneToOneField(
        Redemption, on_delete=models.PROTECT, null=True, blank=True, related_name="voucher"
    )
    # A campaign (a higher layer) that issued it, named generically to keep the layers apart.
    source_type = models.ForeignKey(ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    source_id = models.BigIntegerField(null=True, blank=True)
    source = GenericForeignKey("source_type", "source_id")
    issue_key = models.CharField(max_length=160, unique=True, help_text="What issued it, once: redemption or campaign.")
    valid_from = models.DateField(_("valid from"))
    valid_until = models.DateField(_("valid until (inclusive)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.ACTIVE)
    redeemed_at = models.DateTimeField(_("used at"), null=True, blank=True)
    redeemed_store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+", verbose_name=_("used at store")
    )
    redeemed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("issued at"), auto_now_add=True)

    class Meta:
        verbose_name = _("voucher")
        verbose_name_plural = _("vouchers")
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=Q(valid_until__gte=F("valid_from")), name="voucher_validity_ordered"),
            models.CheckConstraint(
                condition=~Q(status="redeemed") | (Q(redeemed_at__isnull=False) & Q(redeemed_store__isnull=False)),
                name="voucher_redeemed_where_and_when",
            ),
            models.CheckConstraint(
                condition=Q(amount__isnull=True) | Q(percent__isnull=True), name="voucher_amount_or_percent"
            ),
        ]
        indexes = [
            models.Index(fields=["valid_until"], condition=Q(status="active"), name="voucher_expiry_idx"),
            models.Index(fields=["account", "status"], name="voucher_account_idx"),
        ]

    def __str__(self) -> str:
        return self.code


class RewardMonth(models.Model):
    """Redemptions not cancelled per program, month (of the redemption), reward, member's region (as of
    the refresh: loyalty's `MemberRegion`) and store of the enrolment, with the ledger up to the member
    summary's entry mark (`rewards.analytics`, in the member summary's transaction): the overview's top
    rewards for a region without joining every redemption to its member. The pages add the redemptions
    and the cancellations (refund entries) posted since."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(_("month"))
    reward = models.ForeignKey(Reward, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.CharField(_("region"), max_length=80, blank=True)
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False)
    redemptions = models.BigIntegerField(_("redemptions"))
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("redemptions per month")
        verbose_name_plural = _("redemptions per month")
        indexes = [models.Index(fields=["program", "month"], name="rewardmonth_program_idx")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} reward {self.reward_id}: {self.redemptions}"
