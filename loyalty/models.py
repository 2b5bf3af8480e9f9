"""Programs, tiers, earning rules, accounts and the ledger.

Only loyalty.services writes Account and LedgerEntry rows (see DESIGN.md, "The ledger").
"""

import os
import uuid
from decimal import Decimal

from django.conf import settings
from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.storage import storages
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from members.models import Member, Store


class Program(models.Model):
    class Window(models.TextChoices):
        ROLLING_12_MONTHS = "rolling_12m", _("Rolling 12 months")
        CALENDAR_YEAR = "calendar_year", _("Calendar year")

    class QualifyingBasis(models.TextChoices):
        POINTS = "points", _("Qualifying points")
        SPEND = "spend", _("Qualifying spend")

    class DowngradeMode(models.TextChoices):
        ONE_TIER = "one_tier", _("One tier down at a time")
        TO_EARNED = "to_earned", _("Straight to the tier earned")

    class ExpiryPolicy(models.TextChoices):
        NEVER = "never", _("Points never expire")
        MONTHS_AFTER_EARN = "months_after_earn", _("N months after they were earned")
        END_OF_NTH_MONTH = "end_of_nth_month", _("At the end of the Nth month after they were earned")
        INACTIVITY = "inactivity", _("All points after N months without activity")

    class EnrolmentMode(models.TextChoices):
        OPEN = "open", _("Open to everyone")
        INVITATION = "invitation", _("By invitation only")
        PILOT = "pilot", _("Pilot, capped number of members")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        PILOT = "pilot", _("Pilot")
        LIVE = "live", _("Live")
        CLOSED = "closed", _("Closed")

    name = models.CharField(_("name"), max_length=120)
    slug = models.SlugField(_("slug"), max_length=60, unique=True)
    points_name = models.CharField(_("name of the points"), max_length=40, default="points")
    currency = models.CharField(
        _("currency"),
        max_length=3,
        default="EUR",
        validators=[RegexValidator(r"^[A-Z]{3}$", _("Use a code such as EUR."))],
    )
    point_value = models.DecimalField(
        _("value of one point"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("0.01"),
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("In the program currency; used for the outstanding liability."),
    )
    qualification_window = models.CharField(
        _("qualification window"), max_length=16, choices=Window.choices, default=Window.ROLLING_12_MONTHS
    )
    qualifying_basis = models.CharField(
        _("tiers are earned with"), max_length=8, choices=QualifyingBasis.choices, default=QualifyingBasis.POINTS
    )
    downgrade_grace_months = models.PositiveSmallIntegerField(_("grace months before a downgrade"), default=0)
    downgrade_mode = models.CharField(
        _("downgrade"), max_length=12, choices=DowngradeMode.choices, default=DowngradeMode.ONE_TIER
    )
    expiry_policy = models.CharField(
        _("points expiry"), max_length=20, choices=ExpiryPolicy.choices, default=ExpiryPolicy.NEVER
    )
    expiry_months = models.PositiveSmallIntegerField(_("expiry months (N)"), null=True, blank=True)
    pending_days = models.PositiveSmallIntegerField(
        _("pending days"), default=0, help_text=_("Return window: purchase points become available after these days.")
    )
    enrolment_mode = models.CharField(
        _("enrolment"), max_length=12, choices=EnrolmentMode.choices, default=EnrolmentMode.OPEN
    )
    pilot_member_cap = models.PositiveIntegerField(_("pilot member cap"), null=True, blank=True)
    welcome_bonus = models.PositiveIntegerField(_("welcome bonus (points)"), default=0)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    stores = models.ManyToManyField(
        Store, blank=True, related_name="programs", verbose_name=_("stores running the program")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(m2m_fields=[stores])

    class Meta:
        verbose_name = _("program")
        verbose_name_plural = _("programs")
        ordering = ["name"]
        constraints = [
            models.CheckConstraint(
                condition=Q(expiry_policy="never") | Q(expiry_months__gte=1), name="program_expiry_months_set"
            ),
            models.CheckConstraint(
                condition=~Q(enrolment_mode="pilot") | Q(pilot_member_cap__gte=1), name="program_pilot_cap_set"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class RulesVersion(models.Model):
    """The version of a program's earn rules (their tier and store conditions too) and tiers: the key under
    which a process keeps the rule set and tier ladder it read (loyalty.selectors). PostgreSQL triggers
    (migration 0018) write it, in the transaction of any such change, with a new value from a sequence. It
    has a table of its own so that a rule or tier write locks only this row, not the program's: enrolment
    (which locks the program) and program saves go on while a campaign writes rules. No row: no rule or tier
    change since the table exists (version 0)."""

    program = models.OneToOneField(
        Program, on_delete=models.CASCADE, primary_key=True, related_name="rules_version", verbose_name=_("program")
    )
    version = models.BigIntegerField(_("version of the rules"))

    class Meta:
        verbose_name = _("rules version")
        verbose_name_plural = _("rules versions")

    def __str__(self) -> str:
        return f"{self.program_id} v{self.version}"


class TermsVersion(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="terms_versions")
    version = models.CharField(_("version"), max_length=20)
    text = models.TextField(_("text"))
    effective_on = models.DateField(_("effective on"))
    requires_reacceptance = models.BooleanField(_("members must accept again"), default=False)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("terms version")
        verbose_name_plural = _("terms versions")
        ordering = ["program", "-effective_on"]
        constraints = [models.UniqueConstraint(fields=["program", "version"], name="terms_version_unique")]

    def __str__(self) -> str:
        return f"{self.program} {self.version}"


class Invitation(models.Model):
    """A code that lets someone enrol in an invitation-only or pilot program. Single use unless told
    otherwise; expires."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="invitations")
    code = models.CharField(_("code"), max_length=16, unique=True)
    email = models.EmailField(_("sent to"), blank=True)
    max_uses = models.PositiveIntegerField(_("uses allowed"), default=1)
    uses = models.PositiveIntegerField(_("used"), default=0)
    expires_at = models.DateTimeField(_("expires at"))
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        constraints = [models.CheckConstraint(condition=Q(uses__lte=F("max_uses")), name="invitation_uses_within_max")]

    def __str__(self) -> str:
        return self.code


class Tier(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="tiers")
    rank = models.PositiveSmallIntegerField(_("rank"))
    name = models.CharField(_("name"), max_length=40)
    threshold = models.PositiveIntegerField(
        _("threshold"), help_text=_("Qualifying points (or spend, in whole currency units) within the window.")
    )
    earn_multiplier = models.DecimalField(_("earn multiplier"), max_digits=5, decimal_places=2, default=Decimal("1.00"))
    colour = models.CharField(
        _("colour"), max_length=7, default="#6b7280", validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$")]
    )

    history = HistoricalRecords()

    class Meta:
        verbose_name = _("tier")
        verbose_name_plural = _("tiers")
        ordering = ["program", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["program", "rank"], name="tier_rank_unique"),
            models.UniqueConstraint(fields=["program", "threshold"], name="tier_threshold_unique"),
            models.UniqueConstraint(fields=["program", "name"], name="tier_name_unique"),
            models.CheckConstraint(condition=Q(earn_multiplier__gt=0), name="tier_multiplier_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class TierBenefit(models.Model):
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, related_name="benefits")
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    text = models.CharField(_("benefit"), max_length=160)
    # A reward of the catalogue this benefit gives or unlocks. The catalogue is a higher layer
    # (rewards), so it is named by string, as DESIGN.md allows where a link is unavoidable.
    reward = models.ForeignKey(
        "rewards.Reward",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("reward"),
        help_text=_("Optional: the catalogue reward this benefit gives or unlocks."),
    )

    class Meta:
        verbose_name = _("tier benefit")
        verbose_name_plural = _("tier benefits")
        ordering = ["tier", "position", "pk"]

    def __str__(self) -> str:
        return self.text

    def clean(self):
        if self.reward_id and self.tier_id and self.reward.program_id != self.tier.program_id:
            raise ValidationError({"reward": _("Choose a reward of this tier's program.")})


class ActivityType(models.TextChoices):
    PURCHASE = "purchase", _("Purchase")
    TRAINING_HOURS = "training_hours", _("Training hours")
    CERTIFICATION = "certification", _("Certification")
    REFERRAL = "referral", _("Referral")
    REVIEW = "review", _("Review")
    EVENT_ATTENDANCE = "event_attendance", _("Event attendance")
    CHECK_IN = "check_in", _("Check-in")
    ENROLMENT = "enrolment", _("Enrolment")
    BIRTHDAY = "birthday", _("Birthday")
    CUSTOM_CODE = "custom_code", _("Custom code")


# Activities whose claims wait for staff approval (with evidence) before earning.
EVIDENCE_ACTIVITY_TYPES = frozenset({ActivityType.TRAINING_HOURS, ActivityType.CERTIFICATION, ActivityType.REVIEW})


class EarnBudget(models.Model):
    """A ceiling on the points some rules may award in total (a campaign's budget). `awarded` moves only
    under a row lock in loyalty.services, so concurrent earns never take it past `points`."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(_("name"), max_length=120)
    points = models.BigIntegerField(_("budget (points)"))
    awarded = models.BigIntegerField(_("points awarded"), default=0)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("earning budget")
        verbose_name_plural = _("earning budgets")
        constraints = [
            models.CheckConstraint(condition=Q(points__gte=0), name="earnbudget_points_not_negative"),
            models.CheckConstraint(
                condition=Q(awarded__gte=0) & Q(awarded__lte=F("points")), name="earnbudget_within_budget"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def left(self) -> int:
        return max(self.points - self.awarded, 0)


class EarnRule(models.Model):
    """Condition + benefit, in the shape of django-oscar's offers: who and what qualifies, and what it earns."""

    class Calculation(models.TextChoices):
        PER_CURRENCY_UNIT = "per_currency_unit", _("Points per currency unit spent")
        PER_QUANTITY = "per_quantity", _("Points per unit of quantity (e.g. per training hour)")
        FIXED = "fixed", _("Fixed points")
        # Campaigns' "x2 points": extra points as a multiple of what the other rules award.
        BONUS_MULTIPLE = "bonus_multiple", _("Extra points: a multiple of what the other rules award")

    class Rounding(models.TextChoices):
        DOWN = "down", _("Round down")
        HALF_UP = "half_up", _("Round half up")
        UP = "up", _("Round up")

    class CapPeriod(models.TextChoices):
        DAY = "day", _("per day")
        WEEK = "week", _("per week")
        MONTH = "month", _("per month")
        YEAR = "year", _("per year")
        EVER = "ever", _("ever")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="earn_rules")
    name = models.CharField(_("name"), max_length=120)
    activity_type = models.CharField(_("activity"), max_length=20, choices=ActivityType.choices)
    custom_code = models.SlugField(_("custom code"), max_length=40, blank=True)
    # Benefit
    calculation = models.CharField(_("calculation"), max_length=20, choices=Calculation.choices)
    rate = models.DecimalField(
        _("rate"),
        max_digits=10,
        decimal_places=4,
        validators=[MinValueValidator(Decimal("0"))],
        help_text=_("Points per currency unit, per unit of quantity, or the fixed points."),
    )
    rounding = models.CharField(_("rounding"), max_length=8, choices=Rounding.choices, default=Rounding.DOWN)
    apply_tier_multiplier = models.BooleanField(_("tier multipliers apply"), default=True)
    qualifying = models.BooleanField(_("counts toward tiers"), default=True)
    cap_points = models.PositiveIntegerField(_("cap (points)"), null=True, blank=True)
    cap_period = models.CharField(_("cap period"), max_length=8, choices=CapPeriod.choices, blank=True)
    stackable = models.BooleanField(
        _("stackable"),
        default=True,
        help_text=_("Exclusive rules apply alone: the one with the highest priority wins."),
    )
    priority = models.SmallIntegerField(_("priority"), default=0)
    requires_approval = models.BooleanField(_("claims need staff approval"), default=False)
    referral_party = models.CharField(
        _("referral reward goes to"),
        max_length=8,
        choices=[("referrer", _("the member who referred")), ("referee", _("the new member"))],
        default="referrer",
        help_text=_("Referral rules only."),
    )
    referral_trigger = models.CharField(
        _("referral rewarded on"),
        max_length=16,
        choices=[("enrolment", _("enrolment of the new member")), ("first_purchase", _("their first purchase"))],
        default="enrolment",
        help_text=_("Referral rules only."),
    )
    # Conditions (empty means "any")
    tiers = models.ManyToManyField(Tier, blank=True, related_name="+", verbose_name=_("tiers"))
    stores = models.ManyToManyField(Store, blank=True, related_name="+", verbose_name=_("stores"))
    regions = models.JSONField(_("regions"), default=list, blank=True)
    member_types = models.JSONField(_("member types"), default=list, blank=True)
    product_categories = models.JSONField(
        _("product categories"), default=list, blank=True, help_text=_("Only purchase lines in these categories count.")
    )
    min_amount = models.DecimalField(_("minimum amount"), max_digits=12, decimal_places=2, null=True, blank=True)
    valid_from = models.DateField(_("valid from"), null=True, blank=True)
    valid_until = models.DateField(_("valid until (inclusive)"), null=True, blank=True)
    first_purchase_only = models.BooleanField(
        _("first purchase only"), default=False, help_text=_("Only a member's first purchase earns this.")
    )
    enrolled_within_days = models.PositiveSmallIntegerField(
        _("within days of enrolment"),
        null=True,
        blank=True,
        help_text=_("Only activities within this many days of the member's enrolment earn this."),
    )
    # Audiences and holdouts are how a campaign (a higher layer) targets a rule without the engine
    # knowing campaigns: the campaign lists the accounts, the engine only reads the list.
    audience_only = models.BooleanField(
        _("listed members only"), default=False, help_text=_("Only the accounts in the rule's audience earn this.")
    )
    holdout_seed = models.CharField(_("holdout seed"), max_length=32, blank=True)
    holdout_percent = models.DecimalField(
        _("holdout (%)"),
        max_digits=4,
        decimal_places=1,
        default=Decimal("0"),
        help_text=_("Members held out as a control group never earn this rule."),
    )
    budget = models.ForeignKey(
        EarnBudget, on_delete=models.PROTECT, null=True, blank=True, related_name="rules", verbose_name=_("budget")
    )
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    history = HistoricalRecords(m2m_fields=[tiers, stores])

    class Meta:
        verbose_name = _("earning rule")
        verbose_name_plural = _("earning rules")
        ordering = ["program", "activity_type", "-priority", "name"]
        constraints = [
            models.CheckConstraint(condition=Q(rate__gte=0), name="earnrule_rate_not_negative"),
            models.CheckConstraint(
                condition=(Q(cap_points__isnull=True) & Q(cap_period=""))
                | (Q(cap_points__isnull=False) & ~Q(cap_period="")),
                name="earnrule_cap_complete",
            ),
            models.CheckConstraint(
                condition=Q(valid_from__isnull=True)
                | Q(valid_until__isnull=True)
                | Q(valid_until__gte=F("valid_from")),
                name="earnrule_validity_ordered",
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lte=90), name="earnrule_holdout_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class EarnRuleAudience(models.Model):
    """The accounts an `audience_only` rule is for (written set-based by whoever targets the rule)."""

    pk = models.CompositePrimaryKey("rule", "account")
    rule = models.ForeignKey(EarnRule, on_delete=models.CASCADE, related_name="+")
    account = models.ForeignKey("Account", on_delete=models.CASCADE, related_name="+")

    class Meta:
        verbose_name = _("rule audience")
        verbose_name_plural = _("rule audiences")
        indexes = [models.Index(fields=["account"], name="earnruleaudience_account_idx")]

    def __str__(self) -> str:
        return f"{self.rule_id}:{self.account_id}"


class Account(models.Model):
    """A member's account in one program. Its counters change only in loyalty.services, under a row lock."""

    # No index of their own: account_member_program_unique leads with the member, and both of Meta's
    # indexes with the program.
    member = models.ForeignKey(Member, on_delete=models.PROTECT, related_name="accounts", db_index=False)
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="accounts", db_index=False)
    balance = models.BigIntegerField(_("balance"), default=0)
    pending = models.BigIntegerField(_("pending points"), default=0)
    tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, related_name="accounts")
    tier_since = models.DateTimeField(_("tier since"), null=True)
    # The member keeps a tier above the entry tier by re-qualifying in [tier_window_start, tier_review_at).
    tier_window_start = models.DateTimeField(_("tier window start"), null=True)
    tier_review_at = models.DateTimeField(_("tier review"), null=True)
    lifetime_earned = models.BigIntegerField(_("points earned"), default=0)
    lifetime_redeemed = models.BigIntegerField(_("points redeemed"), default=0)
    lifetime_expired = models.BigIntegerField(_("points expired"), default=0)
    last_activity_at = models.DateTimeField(_("last activity"), null=True)
    # The last warning of expiring points: lots that existed then and expired within its window were in it.
    expiry_warned_at = models.DateTimeField(_("expiry last warned"), null=True)
    expiry_warned_through = models.DateTimeField(null=True)
    # When a member brought over by a legacy import was told their account moved (portal.imports).
    moved_notice_sent_at = models.DateTimeField(_("told of the move"), null=True, blank=True)
    enrolled_at = models.DateTimeField(_("enrolled at"))
    enrolled_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    enrolled_at_store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        verbose_name = _("account")
        verbose_name_plural = _("accounts")
        constraints = [
            models.UniqueConstraint(fields=["member", "program"], name="account_member_program_unique"),
            # The key the ledger's (account, program) foreign key points at (migration 0014).
            models.UniqueConstraint(fields=["id", "program"], name="account_id_program_unique"),
            models.CheckConstraint(condition=Q(balance__gte=0), name="account_balance_not_negative"),
            models.CheckConstraint(condition=Q(pending__gte=0), name="account_pending_not_negative"),
        ]
        indexes = [
            models.Index(fields=["program", "tier_review_at"]),
            models.Index(fields=["program", "last_activity_at"]),
        ]

    def __str__(self) -> str:
        return f"{self.member} / {self.program}"


class TermsAcceptance(models.Model):
    """A member accepted a version of the program's terms: when, through which channel, recorded by whom."""

    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="terms_acceptances")
    terms = models.ForeignKey(TermsVersion, on_delete=models.PROTECT, related_name="acceptances")
    accepted_at = models.DateTimeField(_("accepted at"))
    channel = models.CharField(_("channel"), max_length=12)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, related_name="+")

    class Meta:
        verbose_name = _("terms acceptance")
        verbose_name_plural = _("terms acceptances")
        ordering = ["-accepted_at"]
        constraints = [models.UniqueConstraint(fields=["account", "terms"], name="terms_accepted_once")]

    def __str__(self) -> str:
        return f"{self.account} accepted {self.terms.version}"


class Purchase(models.Model):
    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="purchases")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="purchases")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="purchases")
    receipt_number = models.CharField(_("receipt number"), max_length=64)
    amount = models.DecimalField(_("amount"), max_digits=12, decimal_places=2)
    currency = models.CharField(_("currency"), max_length=3)
    lines = models.JSONField(_("lines"), default=list, blank=True)
    returned_amount = models.DecimalField(_("returned amount"), max_digits=12, decimal_places=2, default=Decimal("0"))
    occurred_at = models.DateTimeField(_("purchased at"))
    idempotency_key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("purchase")
        verbose_name_plural = _("purchases")
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="purchase_idempotency_unique"),
            models.UniqueConstraint(fields=["program", "store", "receipt_number"], name="purchase_receipt_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="purchase_amount_positive"),
            models.CheckConstraint(
                condition=Q(returned_amount__gte=0) & Q(returned_amount__lte=F("amount")),
                name="purchase_returned_le_amount",
            ),
        ]
        indexes = [
            # Segments sum a period's spend per account (campaigns.segments) from this index alone; the
            # amounts are key columns rather than INCLUDE, which SQLite (the demo) would warn about.
            models.Index(
                fields=["program", "occurred_at", "account", "amount", "returned_amount"],
                name="purchase_period_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.receipt_number} ({self.amount} {self.currency})"


class PurchaseReturn(models.Model):
    purchase = models.ForeignKey(Purchase, on_delete=models.PROTECT, related_name="returns")
    amount = models.DecimalField(_("amount returned"), max_digits=12, decimal_places=2)
    points_reversed = models.BigIntegerField(_("points reversed"), default=0)
    points_shortfall = models.BigIntegerField(
        _("points not recovered"), default=0, help_text=_("Points of the purchase already spent when it was returned.")
    )
    idempotency_key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("purchase return")
        verbose_name_plural = _("purchase returns")
        constraints = [
            models.UniqueConstraint(fields=["purchase", "idempotency_key"], name="return_idempotency_unique"),
            models.CheckConstraint(condition=Q(amount__gt=0), name="return_amount_positive"),
        ]

    def __str__(self) -> str:
        return f"{self.purchase.receipt_number} -{self.amount}"


def private_storage():
    """Files with personal data: outside MEDIA_URL (settings.STORAGES["private"]), served by checked views."""
    return storages["private"]


def evidence_path(activity, filename: str) -> str:
    """An unguessable name that keeps only the file's extension."""
    extension = os.path.splitext(filename)[1].lower()[:8]
    return f"evidence/{timezone.now():%Y/%m}/{uuid.uuid4().hex}{extension}"


class Activity(models.Model):
    """A non-spend activity (training, event, review, ...); a claim while it awaits staff approval."""

    class Status(models.TextChoices):
        PENDING_REVIEW = "pending_review", _("Awaiting approval")
        APPROVED = "approved", _("Approved")
        REJECTED = "rejected", _("Rejected")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="activities")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="activities")
    activity_type = models.CharField(_("activity"), max_length=20, choices=ActivityType.choices)
    code = models.SlugField(_("code"), max_length=40, blank=True)
    quantity = models.DecimalField(_("quantity"), max_digits=8, decimal_places=2, default=Decimal("1"))
    description = models.CharField(_("description"), max_length=200, blank=True)
    evidence = models.FileField(_("evidence"), upload_to=evidence_path, storage=private_storage, blank=True)
    occurred_at = models.DateTimeField(_("took place at"))
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    status = models.CharField(_("status"), max_length=16, choices=Status.choices)
    reviewed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    reviewed_at = models.DateTimeField(_("reviewed at"), null=True, blank=True)
    rejection_reason = models.CharField(_("reason for rejection"), max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("activity")
        verbose_name_plural = _("activities")
        permissions = [("review_claims", _("Can approve or reject members' claims"))]
        constraints = [
            models.UniqueConstraint(fields=["program", "idempotency_key"], name="activity_idempotency_unique"),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="activity_quantity_positive"),
        ]
        indexes = [models.Index(fields=["program", "status"])]

    def __str__(self) -> str:
        return f"{self.get_activity_type_display()} x{self.quantity}"


class LedgerEntry(models.Model):
    """One line of an account's statement. Append-only: only the lot bookkeeping (`remaining`,
    `is_available`) of an existing entry ever changes."""

    class Kind(models.TextChoices):
        EARN = "earn", _("Earned")
        REDEEM = "redeem", _("Redeemed")
        EXPIRE = "expire", _("Expired")
        ADJUST = "adjust", _("Adjustment")
        REVERSE = "reverse", _("Reversal")
        OPENING_BALANCE = "opening_balance", _("Opening balance")
        MIGRATE = "migrate", _("Migration")

    # Indexes are chosen by hand (Meta.indexes): on 20M rows each one costs every insert and lot update.
    # On PostgreSQL one foreign key covers both columns, (account, program) -> account (id, program) (migration
    # 0014): an entry's program is its account's, and each new entry costs one check at commit instead of two.
    # SQLite, the demo's database, has no key on them; PROTECT still guards deletes through the ORM.
    program = models.ForeignKey(
        Program, on_delete=models.PROTECT, related_name="+", db_index=False, db_constraint=False
    )
    account = models.ForeignKey(
        Account, on_delete=models.PROTECT, related_name="entries", db_index=False, db_constraint=False
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    points = models.BigIntegerField(_("points"))
    qualifying_points = models.BigIntegerField(_("qualifying points"), default=0)
    # An entry with points > 0 is a lot: `remaining` is its unspent part, consumed soonest-expiring first.
    remaining = models.BigIntegerField(_("remaining"), default=0)
    expires_at = models.DateTimeField(_("expires at"), null=True, blank=True)
    available_at = models.DateTimeField(_("available at"))
    is_available = models.BooleanField(_("available"), default=True)
    occurred_at = models.DateTimeField(_("occurred at"))
    reason = models.CharField(_("explanation"), max_length=300)
    rule = models.ForeignKey(
        EarnRule, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    purchase = models.ForeignKey(
        Purchase, on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_index=False
    )
    activity = models.ForeignKey(
        Activity, on_delete=models.PROTECT, null=True, blank=True, related_name="entries", db_index=False
    )
    # The entry this one takes back: a returned purchase's lot, a refunded redemption, a lapsed lot.
    # No database foreign key here: its per-row check at commit, which locks each lot again, was more than
    # half of an expiry chunk's commit (bench/RESULTS.md). The link cannot dangle all the same: the ledger
    # refuses DELETE (migration 0004's trigger), the engine writes the link from the lot it reads in the
    # same statement, and check_ledger verifies that every link names an entry of the same account.
    reverses = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="reversals",
        db_index=False,
        db_constraint=False,
    )
    # Sources in higher layers (a redemption, a campaign) are named generically to keep layers apart.
    source_type = models.ForeignKey(
        ContentType, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False
    )
    source_id = models.BigIntegerField(null=True, blank=True)
    source = GenericForeignKey("source_type", "source_id")
    store = models.ForeignKey(Store, on_delete=models.PROTECT, null=True, blank=True, related_name="+", db_index=False)
    # NULL, not "": entries without a key must not collide in the unique index.
    idempotency_key = models.CharField(max_length=160, null=True, blank=True)  # noqa: DJ001
    fingerprint = models.CharField(max_length=64, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    created_at = models.DateTimeField(_("recorded at"), auto_now_add=True, db_index=False)

    class Meta:
        verbose_name = _("ledger entry")
        verbose_name_plural = _("ledger entries")
        permissions = [("adjust_points", _("Can adjust a member's points"))]
        constraints = [
            models.UniqueConstraint(
                fields=["program", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="ledger_idempotency_unique",
            ),
            # A return of points already spent may reverse qualifying points only.
            models.CheckConstraint(condition=~Q(points=0) | ~Q(qualifying_points=0), name="ledger_entry_not_empty"),
            models.CheckConstraint(
                condition=Q(remaining__gte=0) & (Q(remaining=0) | Q(remaining__lte=F("points"))),
                name="ledger_remaining_within_lot",
            ),
        ]
        indexes = [
            models.Index(fields=["account", "-occurred_at", "-id"], name="ledger_statement_idx"),
            models.Index(
                fields=["account", "expires_at", "id"], condition=Q(remaining__gt=0), name="ledger_live_lots_idx"
            ),
            models.Index(fields=["program", "expires_at"], condition=Q(remaining__gt=0), name="ledger_expiry_idx"),
            models.Index(
                fields=["account", "available_at"], condition=Q(is_available=False), name="ledger_pending_idx"
            ),
            # Links that most entries leave empty get small partial indexes.
            models.Index(fields=["purchase"], condition=Q(purchase__isnull=False), name="ledger_purchase_idx"),
            models.Index(fields=["activity"], condition=Q(activity__isnull=False), name="ledger_activity_idx"),
            models.Index(fields=["reverses"], condition=Q(reverses__isnull=False), name="ledger_reverses_idx"),
            models.Index(
                fields=["source_type", "source_id"], condition=Q(source_id__isnull=False), name="ledger_source_idx"
            ),
            # An account's first redemption (analytics) without reading its whole statement.
            models.Index(fields=["account", "occurred_at", "id"], condition=Q(kind="redeem"), name="ledger_redeem_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.points:+d} {self.reason}"


class LedgerAllocation(models.Model):
    """Which lots a debit that may span several (a redemption, a negative adjustment, a return taking
    other points) consumed, and how much. An expiry takes back one lot, named by its `reverses`."""

    debit = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="allocations")
    lot = models.ForeignKey(LedgerEntry, on_delete=models.PROTECT, related_name="consumed_by")
    points = models.BigIntegerField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(points__gt=0), name="allocation_points_positive")]

    def __str__(self) -> str:
        return f"{self.points} from lot {self.lot_id} to {self.debit_id}"


class AccountValue(models.Model):
    """An account's spend and earned points over the periods segments offer (the 30, 90, 180 and 365
    days before `computed_at`), its spend over the 12 months before it and its value decile in the
    program (1 = the tenth who spent most; members without spend rank at the bottom). Refreshed
    set-based by the nightly job `loyalty.refresh_account_values`, so segments and the value pyramid
    read a few columns instead of summing a year of purchases and earns for a million members at every
    count."""

    # The periods, in days, a segment's spend and points criteria may count over: one column pair each.
    PERIODS = (30, 90, 180, 365)

    account = models.OneToOneField(Account, on_delete=models.CASCADE, primary_key=True, related_name="value")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    spend_12m = models.DecimalField(_("spend over 12 months"), max_digits=14, decimal_places=2)
    purchases_12m = models.PositiveIntegerField(_("purchases over 12 months"))
    decile = models.PositiveSmallIntegerField(_("value decile"))
    spend_30d = models.DecimalField(_("spend over 30 days"), max_digits=14, decimal_places=2, default=0)
    spend_90d = models.DecimalField(_("spend over 90 days"), max_digits=14, decimal_places=2, default=0)
    spend_180d = models.DecimalField(_("spend over 180 days"), max_digits=14, decimal_places=2, default=0)
    spend_365d = models.DecimalField(_("spend over 365 days"), max_digits=14, decimal_places=2, default=0)
    points_30d = models.BigIntegerField(_("points earned over 30 days"), default=0)
    points_90d = models.BigIntegerField(_("points earned over 90 days"), default=0)
    points_180d = models.BigIntegerField(_("points earned over 180 days"), default=0)
    points_365d = models.BigIntegerField(_("points earned over 365 days"), default=0)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("account value")
        verbose_name_plural = _("account values")
        indexes = [models.Index(fields=["program", "decile"], name="accountvalue_decile_idx")]
        constraints = [
            models.CheckConstraint(condition=Q(decile__gte=1) & Q(decile__lte=10), name="accountvalue_decile_range")
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: decile {self.decile}"


class TierChange(models.Model):
    class Reason(models.TextChoices):
        ENROLMENT = "enrolment", _("Enrolment")
        UPGRADE = "upgrade", _("Upgrade")
        DOWNGRADE = "downgrade", _("Downgrade at evaluation")
        ADJUSTMENT = "adjustment", _("Staff adjustment")
        IMPORT = "import", _("Import")

    # Indexed by Meta's (account, -changed_at) and, for the tiers, only where there is one.
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="tier_changes", db_index=False)
    from_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, related_name="+", db_index=False)
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, related_name="+")
    reason = models.CharField(max_length=12, choices=Reason.choices)
    changed_at = models.DateTimeField()

    class Meta:
        verbose_name = _("tier change")
        verbose_name_plural = _("tier changes")
        indexes = [
            models.Index(fields=["account", "-changed_at"]),
            models.Index(fields=["from_tier"], condition=Q(from_tier__isnull=False), name="tierchange_from_tier_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.from_tier} -> {self.to_tier} ({self.reason})"


def import_path(instance, filename: str) -> str:
    return f"imports/{timezone.now():%Y/%m}/{uuid.uuid4().hex}.csv"


class LegacyImport(models.Model):
    """A legacy member file uploaded by staff: its mapping, its check and its import (loyalty.legacy),
    run as Celery tasks; the file and the error report stay in private storage."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded: map the columns")
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Checked: ready to import")
        INVALID = "invalid", _("Errors found: nothing imported")
        IMPORTING = "importing", _("Importing")
        IMPORTED = "imported", _("Imported")
        FAILED = "failed", _("Stopped by an error")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="legacy_imports")
    file = models.FileField(_("file"), upload_to=import_path, storage=private_storage)
    original_name = models.CharField(_("file name"), max_length=200)
    size = models.BigIntegerField(_("size (bytes)"), default=0)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=1, blank=True)
    headers = models.JSONField(_("headers"), default=list)
    mapping = models.JSONField(_("mapping"), default=dict, help_text=_("A header of the file -> a column."))
    date_format = models.CharField(_("date format"), max_length=20, blank=True)
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.UPLOADED)
    phase = models.CharField(_("phase"), max_length=12, blank=True)
    bytes_done = models.BigIntegerField(default=0)
    rows = models.PositiveIntegerField(_("rows"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    first_errors = models.JSONField(default=list, blank=True)
    error_report = models.FileField(upload_to=import_path, storage=private_storage, blank=True)
    members_created = models.PositiveIntegerField(_("members created"), default=0)
    members_updated = models.PositiveIntegerField(_("members updated"), default=0)
    accounts_opened = models.PositiveIntegerField(_("accounts opened"), default=0)
    tiers_raised = models.PositiveIntegerField(_("tiers raised"), default=0)
    balances_posted = models.PositiveIntegerField(_("opening balances"), default=0)
    points_posted = models.BigIntegerField(_("points"), default=0)
    failure = models.TextField(_("error"), blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+")
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        verbose_name = _("member import")
        verbose_name_plural = _("member imports")
        ordering = ["-created_at", "-pk"]
        permissions = [("import_members", _("Can import legacy members"))]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.get_status_display()})"

    @property
    def running(self) -> bool:
        return self.status in {self.Status.CHECKING, self.Status.IMPORTING}

    @property
    def percent(self) -> int:
        if self.status in {self.Status.CHECKED, self.Status.IMPORTED, self.Status.INVALID}:
            return 100
        if not self.size:
            return 0
        reading = min(self.bytes_done / self.size, 1.0)
        # reading the file is most of a check; writing is the last fifth of an import
        share = {"reading": 0.8, "checking": 0.85, "writing": 0.9}.get(self.phase, 0.0)
        return int((reading * 0.8 if self.phase in {"", "reading"} else share) * 100)


class LedgerMonth(models.Model):
    """The ledger summed per program, month (of `occurred_at`, in the site's time zone), kind and, for
    expiries, the month the lapsed lot was issued (`cohort`). Points never change once posted, so the
    sums only grow; `loyalty.analytics.ledger_months_refresh` rebuilds them set-based (the daily job
    `loyalty.summarise_ledger`) and the analytics pages add the entries posted since (`LedgerMonthMark`),
    so charts at 20,000,000 entries read a few hundred rows and still reconcile with the balances."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(_("month"))
    kind = models.CharField(_("kind"), max_length=16, choices=LedgerEntry.Kind.choices)
    cohort = models.DateField(_("issued in"), null=True, blank=True)
    credit = models.BigIntegerField(_("points credited"), default=0)
    debit = models.BigIntegerField(_("points debited"), default=0)  # zero or negative
    entries = models.BigIntegerField(_("entries"), default=0)

    class Meta:
        verbose_name = _("ledger month")
        verbose_name_plural = _("ledger months")
        indexes = [models.Index(fields=["program", "month"], name="ledgermonth_program_idx")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind}: +{self.credit} {self.debit}"


class LedgerMonthMark(models.Model):
    """How far `LedgerMonth` reaches for a program: every entry with an id up to `through_entry`, except
    the `entry_gaps` ([low, high] id ranges that held no committed entry when it was taken; the pages
    read them live with the ids above, so the refresh needs no lock on the ledger)."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="+")
    through_entry = models.BigIntegerField(_("summed through entry"), default=0)
    entry_gaps = models.JSONField(default=list)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        verbose_name = _("ledger summary mark")
        verbose_name_plural = _("ledger summary marks")

    def __str__(self) -> str:
        return f"{self.program_id} through {self.through_entry}"


class LedgerExpiring(models.Model):
    """Unspent points per program and month they lapse in, as of the last ledger summary (its mark's
    `refreshed_at`): summing the live lots about to lapse reads millions of rows on a large program."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(_("month"))
    points = models.BigIntegerField(_("points"))

    class Meta:
        verbose_name = _("points expiring")
        verbose_name_plural = _("points expiring")
        indexes = [models.Index(fields=["program", "month"], name="ledgerexpiring_program_idx")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m}: {self.points}"


class MemberMonth(models.Model):
    """Members counted per program, month and event (enrolled, upgraded, downgraded, first redemption),
    by what the analytics pages filter and group on: the member's region (as of the refresh), the store
    and clerk of the enrolment and its channel. `loyalty.analytics.member_months_refresh` rebuilds it
    set-based (the daily job `loyalty.summarise_ledger`) and the overview adds the accounts and tier
    changes recorded since (`MemberMonthMark`), so it reads thousands of rows instead of grouping a
    million accounts."""

    class Kind(models.TextChoices):
        ENROLLED = "enrolled", _("Enrolled")
        UPGRADE = "upgrade", _("Upgrade")
        DOWNGRADE = "downgrade", _("Downgrade at evaluation")
        FIRST_REDEMPTION = "first_redemption", _("First redemption")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    month = models.DateField(_("month"))
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices)
    region = models.CharField(_("region"), max_length=80, blank=True)
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False)
    clerk = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False
    )
    channel = models.CharField(_("enrolment channel"), max_length=12, blank=True)
    members = models.BigIntegerField(_("members"))
    waited = models.DurationField(null=True)  # first redemptions: the time since enrolment, summed

    class Meta:
        verbose_name = _("member month")
        verbose_name_plural = _("member months")
        indexes = [models.Index(fields=["program", "kind", "month"], name="membermonth_program_idx")]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} {self.kind}: {self.members}"


class MemberDecile(models.Model):
    """Ranked members per program, value decile and tier (as of the refresh), with the region and store
    the pages filter on and their 12-month spend: the value pyramid without joining a million rankings
    to a million accounts. `computed_at` is the ranking's (`AccountValue`) it was summed from."""

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    decile = models.PositiveSmallIntegerField(_("value decile"))
    tier = models.ForeignKey(Tier, on_delete=models.CASCADE, null=True, related_name="+", db_index=False)
    region = models.CharField(_("region"), max_length=80, blank=True)
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, related_name="+", db_index=False)
    members = models.BigIntegerField(_("members"))
    spend = models.DecimalField(_("spend over 12 months"), max_digits=16, decimal_places=2)
    computed_at = models.DateTimeField(_("computed at"))

    class Meta:
        verbose_name = _("member decile")
        verbose_name_plural = _("member deciles")
        indexes = [models.Index(fields=["program", "decile"], name="memberdecile_program_idx")]

    def __str__(self) -> str:
        return f"decile {self.decile}: {self.members}"


class MemberRegion(models.Model):
    """The region each member lived in at the member summary's refresh: the summary counts their first
    redemption, value decile (and rewards' `RewardMonth` their redemptions) in it, and the pages take
    what changed since (a cancellation, a tier change) off that same region, wherever they live now."""

    account = models.OneToOneField(Account, on_delete=models.CASCADE, primary_key=True, related_name="summary_region")
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="+", db_index=False)
    region = models.CharField(_("region"), max_length=80, blank=True)

    class Meta:
        verbose_name = _("member's region at the summary")
        verbose_name_plural = _("members' regions at the summary")
        indexes = [models.Index(fields=["program"], name="memberregion_program_idx")]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.region}"


class MemberMonthMark(models.Model):
    """How far `MemberMonth` reaches for a program: the accounts and tier changes with an id up to
    `through_*`, except the `*_gaps` ([low, high] id ranges that held no committed row when it was
    taken), which the pages read live with the ids above; the ledger entries up to `through_entry` except
    the `entry_gaps` (first redemptions, and rewards' `RewardMonth`); and the ranking `MemberDecile` was
    summed from."""

    program = models.OneToOneField(Program, on_delete=models.CASCADE, primary_key=True, related_name="+")
    through_account = models.BigIntegerField(default=0)
    account_gaps = models.JSONField(default=list)
    through_tier_change = models.BigIntegerField(default=0)
    tier_change_gaps = models.JSONField(default=list)
    through_entry = models.BigIntegerField(default=0)
    entry_gaps = models.JSONField(default=list)
    ranked_at = models.DateTimeField(null=True)
    refreshed_at = models.DateTimeField(_("refreshed at"))

    class Meta:
        verbose_name = _("member summary mark")
        verbose_name_plural = _("member summary marks")

    def __str__(self) -> str:
        return f"{self.program_id} through account {self.through_account}"
