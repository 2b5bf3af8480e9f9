from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils.translation import gettext_lazy as _


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


class Member(models.Model):
    """A person or a firm's contact who belongs to loyalty programs (one Account per program)."""

    class Status(models.TextChoices):
        ACTIVE = "active", _("Active")
        SUSPENDED = "suspended", _("Suspended")
        CLOSED = "closed", _("Closed")
        ANONYMISED = "anonymised", _("Anonymised")

    member_no = models.CharField(_("member number"), max_length=32, unique=True)
    first_name = models.CharField(_("first name"), max_length=100, blank=True)
    last_name = models.CharField(_("last name"), max_length=100, blank=True)
    company = models.CharField(_("company"), max_length=200, blank=True)
    email = models.EmailField(_("email"), blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    region = models.CharField(_("region"), max_length=80, blank=True)
    member_type = models.CharField(
        _("member type"), max_length=40, default="consumer", help_text=_("Trade, e.g. consumer, contractor, installer.")
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
    enrolled_at = models.DateTimeField(_("enrolled at"), auto_now_add=True)

    class Meta:
        verbose_name = _("member")
        verbose_name_plural = _("members")
        indexes = [models.Index(Lower("email"), name="member_email_ci_idx"), models.Index(fields=["phone"])]

    def __str__(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip() or self.company or self.email
        return f"{name} ({self.member_no})"
