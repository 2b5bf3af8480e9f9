"""Segments, campaigns, their members (treatment or control), messages and the send log.

A campaign targets the engine only through the engine's own notions (earning rules with a budget,
an audience and a holdout; see loyalty.models.EarnRule), so the engine never imports campaigns.
"""

import secrets
from decimal import Decimal

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _

from loyalty.models import Account, EarnBudget, EarnRule, Program, TermsVersion, Tier
from members.models import Member, Store


def new_seed() -> str:
    return secrets.token_hex(8)


class Segment(models.Model):
    """A saved, readable definition of a group of a program's members. Every criterion left empty
    means "any"; the criteria set are all required (AND). Compiled to one query by campaigns.segments."""

    class Consent(models.TextChoices):
        ANY = "", _("any")
        GIVEN = "given", _("gave marketing consent")
        NOT_GIVEN = "not_given", _("did not give marketing consent")

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="segments")
    name = models.CharField(_("name"), max_length=120)
    description = models.CharField(_("what it is for"), max_length=300, blank=True)
    tiers = models.ManyToManyField(Tier, blank=True, related_name="+", verbose_name=_("tiers"))
    stores = models.ManyToManyField(
        Store, blank=True, related_name="+", verbose_name=_("home stores"), help_text=_("The member's home store.")
    )
    regions = models.JSONField(_("regions"), default=list, blank=True)
    member_types = models.JSONField(_("member types"), default=list, blank=True)
    enrolled_from = models.DateField(_("enrolled on or after"), null=True, blank=True)
    enrolled_until = models.DateField(_("enrolled on or before"), null=True, blank=True)
    active_within_days = models.PositiveIntegerField(_("active in the last (days)"), null=True, blank=True)
    inactive_for_days = models.PositiveIntegerField(_("inactive for at least (days)"), null=True, blank=True)
    # The periods AccountValue keeps sums for (loyalty.models.AccountValue.PERIODS), so that a count reads
    # them as of the nightly refresh instead of summing a year of purchases for a million members.
    period_days = models.PositiveIntegerField(
        _("spend and points counted over"),
        default=365,
        choices=[
            (30, _("the last 30 days")),
            (90, _("the last 90 days")),
            (180, _("the last 180 days")),
            (365, _("the last 365 days")),
        ],
    )
    spend_min = models.DecimalField(_("spent at least"), max_digits=12, decimal_places=2, null=True, blank=True)
    spend_max = models.DecimalField(_("spent at most"), max_digits=12, decimal_places=2, null=True, blank=True)
    points_min = models.BigIntegerField(_("earned at least (points)"), null=True, blank=True)
    points_max = models.BigIntegerField(_("earned at most (points)"), null=True, blank=True)
    balance_min = models.BigIntegerField(_("balance at least"), null=True, blank=True)
    balance_max = models.BigIntegerField(_("balance at most"), null=True, blank=True)
    consent = models.CharField(_("marketing consent"), max_length=10, choices=Consent.choices, default="", blank=True)
    # Deciles of members by spend over the last 12 months: 1 is the top tenth, 10 the bottom.
    decile_best = models.PositiveSmallIntegerField(
        _("value decile from"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1), MaxValueValidator(10)],
        help_text=_("1 is the tenth of members who spent most over 12 months, as ranked last night."),
    )
    decile_worst = models.PositiveSmallIntegerField(
        _("value decile to"), null=True, blank=True, validators=[MinValueValidator(1), MaxValueValidator(10)]
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["program", "name"]
        constraints = [
            models.UniqueConstraint(fields=["program", "name"], name="segment_name_unique_in_program"),
            models.CheckConstraint(
                condition=Q(decile_best__isnull=True)
                | Q(decile_worst__isnull=True)
                | Q(decile_worst__gte=F("decile_best")),
                name="segment_deciles_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Campaign(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SCHEDULED = "scheduled", _("Scheduled")
        RUNNING = "running", _("Running")
        PAUSED = "paused", _("Paused")
        ENDED = "ended", _("Ended")
        CANCELLED = "cancelled", _("Cancelled")

    class Mechanic(models.TextChoices):
        BONUS_POINTS = "bonus_points", _("Bonus points on purchases or activities")
        SPEND_THRESHOLD = "spend_threshold", _("Spend a threshold, get a voucher next period")
        WELCOME = "welcome", _("Welcome: bonus on the first purchase after enrolment")
        WIN_BACK = "win_back", _("Win-back: a bonus for inactive members who come back")
        CATEGORY_BONUS = "category_bonus", _("Extra points on product categories")
        ANNOUNCEMENT = "announcement", _("Announcement only (a message, no award)")

    class Award(models.TextChoices):
        POINTS = "points", _("points")
        VOUCHER = "voucher", _("a voucher")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="campaigns")
    name = models.CharField(_("name"), max_length=100)
    goal = models.TextField(_("goal"), blank=True, help_text=_("What the campaign should change, in a sentence."))
    segment = models.ForeignKey(
        Segment,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="campaigns",
        verbose_name=_("segment"),
        help_text=_("Empty: every member of the program."),
    )
    starts_on = models.DateField(_("starts on"))
    ends_on = models.DateField(_("ends on (inclusive)"))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    mechanic = models.CharField(_("mechanic"), max_length=16, choices=Mechanic.choices)
    # Budget: points, or money converted at the program's point value; empty means no ceiling.
    budget_points = models.BigIntegerField(
        _("budget (points)"), null=True, blank=True, validators=[MinValueValidator(1)]
    )
    budget_money = models.DecimalField(
        _("budget (money)"), max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(1)]
    )
    holdout_percent = models.DecimalField(
        _("control group (%)"),
        max_digits=4,
        decimal_places=1,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("50"))],
        help_text=_("Members randomly held out of the campaign, to measure what it changed."),
    )
    holdout_seed = models.CharField(max_length=32, default=new_seed, editable=False)
    # Mechanic settings (each mechanic reads its own; the form shows only those).
    activity_types = models.JSONField(_("activities"), default=list, blank=True)
    bonus_multiple = models.DecimalField(
        _("extra points as a multiple"),
        max_digits=5,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.01"))],
        help_text=_("1 doubles the points earned, 0.5 adds half."),
    )
    bonus_points = models.PositiveIntegerField(_("fixed bonus (points)"), null=True, blank=True)
    product_categories = models.JSONField(_("product categories"), default=list, blank=True)
    category_rate = models.DecimalField(
        _("extra points per currency unit"),
        max_digits=10,
        decimal_places=4,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal("0.0001"))],
    )
    threshold_amount = models.DecimalField(
        _("spend threshold"), max_digits=12, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(1)]
    )
    award = models.CharField(_("award"), max_length=8, choices=Award.choices, default=Award.POINTS)
    voucher_amount = models.DecimalField(
        _("voucher value"), max_digits=10, decimal_places=2, null=True, blank=True, validators=[MinValueValidator(1)]
    )
    voucher_valid_days = models.PositiveSmallIntegerField(_("voucher valid for (days)"), default=30)
    welcome_days = models.PositiveSmallIntegerField(_("days after enrolment"), null=True, blank=True)
    inactive_days = models.PositiveSmallIntegerField(_("inactive for at least (days)"), null=True, blank=True)
    # What launching created in the engine.
    budget = models.OneToOneField(EarnBudget, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    rules = models.ManyToManyField(EarnRule, blank=True, related_name="+", verbose_name=_("earning rules"))
    launched_at = models.DateTimeField(_("launched at"), null=True, blank=True)
    launched_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)
    vouchers_issued_at = models.DateTimeField(_("period-end vouchers issued at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("campaign")
        verbose_name_plural = _("campaigns")
        ordering = ["-starts_on", "name"]
        permissions = [("launch_campaign", _("Can launch, pause and end campaigns"))]
        constraints = [
            models.CheckConstraint(condition=Q(ends_on__gte=F("starts_on")), name="campaign_dates_ordered"),
            models.CheckConstraint(
                condition=Q(budget_points__isnull=True) | Q(budget_money__isnull=True), name="campaign_one_budget"
            ),
            models.CheckConstraint(
                condition=Q(holdout_percent__gte=0) & Q(holdout_percent__lte=50), name="campaign_holdout_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def awards_vouchers(self) -> bool:
        return self.mechanic == self.Mechanic.SPEND_THRESHOLD or (
            self.mechanic == self.Mechanic.WIN_BACK and self.award == self.Award.VOUCHER
        )


class CampaignMember(models.Model):
    """Who a campaign targeted, and in which group: recorded at launch (and, for a welcome series,
    as new members enrol), never changed afterwards."""

    pk = models.CompositePrimaryKey("campaign", "account")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="members")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    held_out = models.BooleanField(_("control group"))
    added_at = models.DateTimeField(_("added at"))

    class Meta:
        verbose_name = _("campaign member")
        verbose_name_plural = _("campaign members")
        indexes = [models.Index(fields=["account"], name="campaignmember_account_idx")]

    def __str__(self) -> str:
        return f"{self.campaign_id}:{self.account_id}"


class Message(models.Model):
    """An email to a campaign's members (marketing: consenting, treated members only) or a service
    message to every member of the program (terms changes, expiring points)."""

    class Kind(models.TextChoices):
        MARKETING = "marketing", _("Marketing (only members who consented)")
        SERVICE = "service", _("Service (every member with an email address)")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        SENDING = "sending", _("Sending")
        SENT = "sent", _("Sent")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, null=True, blank=True, related_name="messages")
    kind = models.CharField(_("kind"), max_length=10, choices=Kind.choices, default=Kind.MARKETING)
    name = models.CharField(_("name"), max_length=120)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.DRAFT)
    previewed_at = models.DateTimeField(_("last previewed at"), null=True, blank=True)
    send_started_at = models.DateTimeField(_("sending started at"), null=True, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.name


class MessageText(models.Model):
    """A message's subject and body in one language; members get their language, else the first one."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="texts")
    language = models.CharField(_("language"), max_length=8, choices=settings.LANGUAGES)
    subject = models.CharField(_("subject"), max_length=160)
    body = models.TextField(
        _("body"),
        help_text=_(
            "Personal facts in braces: {first_name}, {balance}, {tier}, {next_tier}, {points_to_next_tier}, "
            "{points_expiring}, {expiring_on}, {voucher_code}."
        ),
    )

    class Meta:
        verbose_name = _("message text")
        verbose_name_plural = _("message texts")
        ordering = ["message", "language"]
        constraints = [models.UniqueConstraint(fields=["message", "language"], name="messagetext_one_per_language")]

    def __str__(self) -> str:
        return f"{self.message} ({self.language})"


class MessageSend(models.Model):
    """One member's copy of a message: the send log. One row per member and message, so a send job
    that is retried or killed halfway never emails anyone twice."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")
        SKIPPED = "skipped", _("Not sent")

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="sends")
    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="+")
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    note = models.CharField(_("note"), max_length=200, blank=True)
    email = models.EmailField(_("sent to"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)

    class Meta:
        verbose_name = _("message sent")
        verbose_name_plural = _("messages sent")
        constraints = [models.UniqueConstraint(fields=["message", "member"], name="messagesend_once_per_member")]
        indexes = [
            models.Index(fields=["member"], name="messagesend_member_idx"),
            # Send batches claim the next queued rows of a message; sent rows must not slow them down.
            models.Index(fields=["message", "member"], condition=Q(status="queued"), name="messagesend_queued_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.message} → {self.member}"


# --- program transitions (campaigns.transitions) ---------------------------------------------------


class Transition(models.Model):
    """A program's move to new terms that members must accept again: told by name (announcement, then
    reminders to those who have not accepted), a deadline to accept, and a cut-over day from which the
    migration plan moves every account once (campaigns.transitions)."""

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        ANNOUNCED = "announced", _("Announced")
        MIGRATING = "migrating", _("Migrating accounts")
        COMPLETED = "completed", _("Completed")

    program = models.ForeignKey(Program, on_delete=models.PROTECT, related_name="transitions")
    terms = models.ForeignKey(
        TermsVersion,
        on_delete=models.PROTECT,
        related_name="transitions",
        verbose_name=_("new terms"),
        help_text=_("A version of the program's terms that members must accept again."),
    )
    name = models.CharField(_("name"), max_length=120)
    announce_on = models.DateField(_("announced on"))
    accept_by = models.DateField(_("members accept by"), help_text=_("The last day members can accept."))
    cutover_on = models.DateField(_("cut-over on"), help_text=_("The day balances move to the new program."))
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.DRAFT)
    # The burn window: rewards (rewards, layer 3) the member pages put forward until the cut-over.
    burn_rewards = models.ManyToManyField(
        "rewards.Reward",
        blank=True,
        related_name="+",
        verbose_name=_("rewards to use points on"),
        help_text=_("Small, cheap or promotional rewards shown to members with the deadline until the cut-over."),
    )
    # The job run that migrates the accounts (layer 0's runner), once started.
    job_run = models.ForeignKey(
        "core.JobRun", on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("job run")
    )
    announced_at = models.DateTimeField(_("announced at"), null=True, blank=True)
    migration_started_at = models.DateTimeField(_("migration started at"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("program transition")
        verbose_name_plural = _("program transitions")
        ordering = ["-cutover_on", "-pk"]
        permissions = [("execute_transition", _("Can announce a program transition and migrate its accounts"))]
        constraints = [
            models.UniqueConstraint(fields=["terms"], name="transition_one_per_terms"),
            models.CheckConstraint(
                condition=Q(accept_by__gte=F("announce_on")) & Q(cutover_on__gt=F("accept_by")),
                name="transition_dates_ordered",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class TransitionNotice(models.Model):
    """The log of who was told of a transition, how and when: one row per member and notice (the
    announcement is reminder 0), so a notice is never sent twice."""

    class Channel(models.TextChoices):
        EMAIL = "email", _("Email")
        LETTER = "letter", _("Letter")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        SENT = "sent", _("Sent")
        FAILED = "failed", _("Failed")

    transition = models.ForeignKey(Transition, on_delete=models.CASCADE, related_name="notices")
    account = models.ForeignKey(Account, on_delete=models.CASCADE, related_name="+")
    reminder = models.PositiveSmallIntegerField(_("reminder"), default=0, help_text=_("0 is the announcement."))
    channel = models.CharField(_("channel"), max_length=8, choices=Channel.choices)
    status = models.CharField(_("status"), max_length=8, choices=Status.choices, default=Status.QUEUED)
    email = models.EmailField(_("sent to"), blank=True)
    language = models.CharField(_("language"), max_length=8, blank=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    sent_at = models.DateTimeField(_("sent or printed at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("transition notice")
        verbose_name_plural = _("transition notices")
        constraints = [
            models.UniqueConstraint(
                fields=["transition", "account", "reminder"], name="transitionnotice_once_per_member"
            )
        ]
        indexes = [
            models.Index(
                fields=["transition", "channel", "account"],
                condition=Q(status="queued"),
                name="transitionnotice_queued_idx",
            )
        ]

    def __str__(self) -> str:
        return f"{self.transition} → {self.account_id} ({self.channel} {self.reminder})"


class MigrationPlan(models.Model):
    """How a transition moves accounts: accepted members to the target program at a conversion rate and
    a tier mapping; members who never accepted get a voucher worth an uplift over their balance's value,
    or are closed (their points released)."""

    class Unaccepted(models.TextChoices):
        VOUCHER = "voucher", _("Convert the balance into a voucher")
        CLOSE = "close", _("Close: the balance lapses")

    RE_EVALUATE = "re-evaluate"

    transition = models.OneToOneField(Transition, on_delete=models.CASCADE, related_name="plan")
    target_program = models.ForeignKey(
        Program, on_delete=models.PROTECT, related_name="+", verbose_name=_("new program")
    )
    conversion_rate = models.DecimalField(
        _("conversion rate"),
        max_digits=10,
        decimal_places=4,
        default=Decimal("1"),
        validators=[MinValueValidator(Decimal("0.0001"))],
        help_text=_("New points for one old point."),
    )
    rounding = models.CharField(
        _("rounding"), max_length=8, choices=EarnRule.Rounding.choices, default=EarnRule.Rounding.DOWN
    )
    tier_mapping = models.JSONField(
        _("tier mapping"),
        default=dict,
        blank=True,
        help_text=_("Old tier id -> new tier id, or “re-evaluate” (the default)."),
    )
    unaccepted = models.CharField(
        _("members who never accepted"), max_length=8, choices=Unaccepted.choices, default=Unaccepted.VOUCHER
    )
    uplift_percent = models.DecimalField(
        _("voucher uplift (%)"),
        max_digits=5,
        decimal_places=2,
        default=Decimal("10"),
        validators=[MinValueValidator(Decimal("0")), MaxValueValidator(Decimal("200"))],
        help_text=_("10 gives a voucher worth 110% of the balance's value."),
    )
    voucher_valid_days = models.PositiveSmallIntegerField(
        _("voucher valid for (days)"), default=365, validators=[MinValueValidator(1)]
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("migration plan")
        verbose_name_plural = _("migration plans")
        constraints = [
            models.CheckConstraint(condition=Q(conversion_rate__gt=0), name="migrationplan_rate_positive"),
            models.CheckConstraint(
                condition=Q(uplift_percent__gte=0) & Q(uplift_percent__lte=200), name="migrationplan_uplift_range"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.transition} → {self.target_program}"


class MigrationOutcome(models.Model):
    """What the migration did to one account: exactly one row per account of the program, written in the
    same transaction as its ledger entries and voucher."""

    class State(models.TextChoices):
        MIGRATED = "migrated", _("Migrated")
        CONVERTED = "converted", _("Converted into a voucher")
        CLOSED = "closed", _("Closed")

    transition = models.ForeignKey(Transition, on_delete=models.CASCADE, related_name="outcomes")
    account = models.ForeignKey(Account, on_delete=models.PROTECT, related_name="+")
    state = models.CharField(_("state"), max_length=10, choices=State.choices)
    accepted = models.BooleanField(_("accepted the new terms"), default=False)
    points_out = models.BigIntegerField(_("points out"), default=0)
    pending_released = models.BigIntegerField(_("pending points released"), default=0)
    points_in = models.BigIntegerField(_("points in"), default=0)
    to_account = models.ForeignKey(Account, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    to_tier = models.ForeignKey(Tier, on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    # A voucher (rewards, layer 3) issued instead of the balance.
    voucher = models.ForeignKey("rewards.Voucher", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    voucher_amount = models.DecimalField(_("voucher value"), max_digits=12, decimal_places=2, null=True, blank=True)
    done_at = models.DateTimeField(_("done at"))

    class Meta:
        verbose_name = _("migration outcome")
        verbose_name_plural = _("migration outcomes")
        constraints = [
            models.UniqueConstraint(fields=["transition", "account"], name="migrationoutcome_once_per_account"),
            models.CheckConstraint(
                condition=Q(points_out__gte=0) & Q(points_in__gte=0) & Q(pending_released__gte=0),
                name="migrationoutcome_points_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.account_id}: {self.state}"
