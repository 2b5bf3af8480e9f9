from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from phonenumber_field.modelfields import PhoneNumberField
from rest_framework_api_key.models import AbstractAPIKey


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra_fields):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email), **extra_fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", False)
        extra_fields.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra_fields)

    def create_superuser(self, email: str, password: str | None = None, **extra_fields):
        extra_fields.setdefault("is_staff", True)
        extra_fields.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra_fields)


class User(AbstractUser):
    """A person who signs in: a member online, a store clerk or program staff. Signs in by email."""

    username = None
    email = models.EmailField(_("email address"), unique=True)

    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.get_full_name() or self.email


class Store(models.Model):
    """A shop or trade partner's branch where clerks serve members."""

    code = models.SlugField(
        _("code"), max_length=20, unique=True, help_text=_("Short code printed on receipts, e.g. BRU-01.")
    )
    name = models.CharField(_("name"), max_length=120)
    region = models.CharField(_("region"), max_length=80, blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    is_active = models.BooleanField(_("active"), default=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("store")
        verbose_name_plural = _("stores")
        ordering = ["code"]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"


class StaffProfile(models.Model):
    """Ties a staff user to a store. The user's role is their group (see members.roles)."""

    user = models.OneToOneField(User, on_delete=models.CASCADE, related_name="staff_profile", verbose_name=_("user"))
    store = models.ForeignKey(
        Store,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="staff",
        verbose_name=_("store"),
        help_text=_("Required for store clerks: they serve this store's members only."),
    )

    class Meta:
        verbose_name = _("staff profile")
        verbose_name_plural = _("staff profiles")
        # Page-level permissions; roles (groups) receive them, see members.roles.ROLE_PERMISSIONS.
        permissions = [
            ("use_desk", _("Can use the store clerk desk")),
            ("view_staff_pages", _("Can open the program staff pages")),
            ("view_analytics", _("Can view program analytics")),
            ("export_reports", _("Can export reports")),
        ]

    def __str__(self) -> str:
        return str(self.user)


class MemberType(models.Model):
    """A trade or kind of member (consumer, contractor, roofer, ...). Programs target rules and rewards at
    these codes; staff add their own in the admin."""

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=80)
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    is_active = models.BooleanField(_("offered at enrolment"), default=True)

    class Meta:
        verbose_name = _("member type")
        verbose_name_plural = _("member types")
        ordering = ["position", "name"]

    def __str__(self) -> str:
        return self.name


class Member(models.Model):
    """A person or a firm's contact who belongs to loyalty programs (one Account per program)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        CLOSED = "closed", _("Closed")
        ANONYMISED = "anonymised", _("Anonymised")

    class Channel(models.TextChoices):
        COUNTER = "counter", _("At the counter")
        ONLINE = "online", _("Online")
        IMPORT = "import", _("Imported")
        INVITATION = "invitation", _("By invitation")
        API = "api", _("Point of sale")

    member_no = models.CharField(
        _("member number"),
        max_length=32,
        unique=True,
        help_text=_("Printed on the card. Numbers the portal issues end in a check digit; legacy numbers are kept."),
    )
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = PhoneNumberField(_("phone"), blank=True)
    street = models.CharField(_("street"), max_length=200, blank=True)
    postal_code = models.CharField(_("postal code"), max_length=20, blank=True)
    city = models.CharField(_("city"), max_length=100, blank=True)
    country = models.CharField(_("country"), max_length=2, blank=True, help_text=_("Two-letter code, e.g. BE."))
    region = models.CharField(_("region"), max_length=80, blank=True)
    member_type = models.CharField(
        _("member type"), max_length=40, default="consumer", help_text=_("Code of a member type, e.g. contractor.")
    )
    language = models.CharField(_("preferred language"), max_length=8, default="en")
    birth_date = models.DateField(_("birth date"), null=True, blank=True)
    home_store = models.ForeignKey(
        Store, on_delete=models.PROTECT, null=True, blank=True, related_name="members", verbose_name=_("home store")
    )
    user = models.OneToOneField(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="member", verbose_name=_("sign-in")
    )
    status = models.CharField(_("status"), max_length=12, choices=Status.choices, default=Status.ACTIVE)
    enrolment_channel = models.CharField(
        _("enrolment channel"), max_length=12, choices=Channel.choices, default=Channel.COUNTER
    )
    enrolled_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("enrolled by")
    )
    enrolled_at_store = models.ForeignKey(
        Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("enrolled at")
    )
    marketing_consent = models.BooleanField(_("marketing consent"), default=False)
    marketing_consent_at = models.DateTimeField(_("consent given or withdrawn at"), null=True, blank=True)
    marketing_consent_channel = models.CharField(
        _("consent channel"), max_length=12, choices=Channel.choices, blank=True
    )
    # Unique among members that have one (member_referral_code_unique); most imported members have none.
    referral_code = models.CharField(_("referral code"), max_length=12, null=True, blank=True)  # noqa: DJ001
    referred_by = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="referrals",
        verbose_name=_("referred by"),
        db_index=False,  # member_referred_by_idx, on the few members who were referred
    )
    enrolled_at = models.DateTimeField(_("enrolled at"), default=timezone.now)  # imports keep the legacy date
    closed_at = models.DateTimeField(_("closed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        # Lookups by number, phone, email and name use pattern-ops indexes (PostgreSQL): the one Django makes
        # for the unique member_no, and those of migration 0007 for the others (0010 dropped its copy of the first).
        constraints = [
            # One active member per address and per phone (phones are stored in E.164, so formats agree).
            models.UniqueConstraint(
                Lower("email"), condition=Q(status="active") & ~Q(email=""), name="member_active_email_unique"
            ),
            models.UniqueConstraint(
                fields=["phone"], condition=Q(status="active") & ~Q(phone=""), name="member_active_phone_unique"
            ),
            models.CheckConstraint(condition=~Q(referred_by=F("pk")), name="member_not_own_referrer"),
            # Partial, so a member without a code costs no index entry (nor a pattern-ops copy: codes are
            # looked up whole); `referral_code = …` still uses it.
            models.UniqueConstraint(
                fields=["referral_code"], condition=Q(referral_code__isnull=False), name="member_referral_code_unique"
            ),
        ]
        indexes = [
            models.Index(fields=["referred_by"], condition=Q(referred_by__isnull=False), name="member_referred_by_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.member_no})"

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip() or self.company or self.email or self.member_no


class ConsentRecord(models.Model):
    """Every change of a member's marketing consent: what, when, through which channel, recorded by whom."""

    member = models.ForeignKey(Member, on_delete=models.CASCADE, related_name="consent_records")
    granted = models.BooleanField(_("granted"))
    channel = models.CharField(_("channel"), max_length=12, choices=Member.Channel.choices)
    recorded_at = models.DateTimeField(_("recorded at"))
    recorded_by = models.ForeignKey(
        User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+", verbose_name=_("recorded by")
    )
    store = models.ForeignKey(Store, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")

    class Meta:
        verbose_name = _("consent record")
        verbose_name_plural = _("consent records")
        ordering = ["-recorded_at", "-id"]

    def __str__(self) -> str:
        return f"{self.member_id} {'granted' if self.granted else 'withdrawn'} {self.recorded_at:%Y-%m-%d}"


class StoreAPIKey(AbstractAPIKey):
    """A point-of-sale key: acts for one store, in the programs that store runs. Hashed at rest
    (djangorestframework-api-key); only its prefix is ever shown again after creation."""

    store = models.ForeignKey(Store, on_delete=models.PROTECT, related_name="api_keys", verbose_name=_("store"))
    created_by = models.ForeignKey(User, on_delete=models.SET_NULL, null=True, blank=True, related_name="+")
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)

    class Meta(AbstractAPIKey.Meta):
        verbose_name = _("point-of-sale API key")
        verbose_name_plural = _("point-of-sale API keys")
        ordering = ["store", "-created"]


class APIRequest(models.Model):
    """The first response to a POST sent with an Idempotency-Key, replayed to every retry with the same
    key from the same store. Kept at least 24 hours (purged by a daily job after 48)."""

    store = models.ForeignKey(Store, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=128)
    fingerprint = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField()
    body = models.TextField()  # the JSON exactly as first sent, so a replay is byte for byte the same
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("idempotent API request")
        verbose_name_plural = _("idempotent API requests")
        constraints = [models.UniqueConstraint(fields=["store", "key"], name="api_request_key_unique")]

    def __str__(self) -> str:
        return f"{self.store_id}:{self.key} -> {self.status_code}"
