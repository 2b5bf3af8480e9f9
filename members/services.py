import datetime
import re
import secrets

import phonenumbers
from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from loyalty.core.exceptions import ApplicationError
from members import numbers
from members.models import APIRequest, ConsentRecord, Member, MemberType, StaffProfile, Store, StoreAPIKey, User
from members.roles import STAFF_ROLES, Role


@transaction.atomic
def store_create(
    *, code: str, name: str, region: str = "", street: str = "", postal_code: str = "", city: str = ""
) -> Store:
    store = Store(code=code, name=name, region=region, street=street, postal_code=postal_code, city=city)
    store.full_clean()
    store.save()
    return store


@transaction.atomic
def store_update(
    *, store: Store, name: str, region: str = "", street: str = "", postal_code: str = "", city: str = ""
) -> Store:
    """Correct a store's name and address (its code is printed on receipts and never changes here)."""
    store = Store.objects.select_for_update().get(pk=store.pk)
    store.name, store.region, store.street = name.strip(), region.strip(), street.strip()
    store.postal_code, store.city = postal_code.strip(), city.strip()
    store.full_clean()
    store.save()
    return store


# --- point-of-sale API keys ------------------------------------------------------------------------


@transaction.atomic
def api_key_create(*, store: Store, name: str, created_by: User | None = None) -> tuple[StoreAPIKey, str]:
    """A new key for a store's till or shop. The key itself is returned once and never stored (only its hash)."""
    name = (name or "").strip()
    if not name:
        raise ApplicationError(
            _("Name the key after the till or app that will use it, e.g. “Till 2”."),
            code="invalid",
            extra={"field": "name"},
        )
    if not store.is_active:
        raise ApplicationError(
            _("Store %(store)s is closed.") % {"store": store}, code="invalid", extra={"field": "store"}
        )
    return StoreAPIKey.objects.create_key(store=store, name=name[:50], created_by=created_by)


@transaction.atomic
def api_key_revoke(*, api_key: StoreAPIKey) -> StoreAPIKey:
    """Revoke at once and for good (the library refuses to un-revoke)."""
    api_key = StoreAPIKey.objects.select_for_update().get(pk=api_key.pk)
    if not api_key.revoked:
        api_key.revoked = True
        api_key.save(update_fields=["revoked"])
    return api_key


def api_requests_purge(*, older_than: datetime.timedelta = datetime.timedelta(hours=48)) -> int:
    """Forget recorded idempotent responses older than `older_than` (keys are honoured at least 24 hours)."""
    deleted, _by_model = APIRequest.objects.filter(created_at__lt=timezone.now() - older_than).delete()
    return deleted


def _user_create(
    *, email: str, password: str | None, first_name: str, last_name: str, is_staff: bool, email_verified: bool
) -> User:
    user = User(
        email=User.objects.normalize_email(email), first_name=first_name, last_name=last_name, is_staff=is_staff
    )
    if password is None:
        user.set_unusable_password()
    else:
        user.set_password(password)
    user.full_clean()
    user.save()
    # allauth signs in only through a recorded address; unverified ones get the verification mail first.
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=email_verified)
    return user


@transaction.atomic
def member_user_create(
    *, email: str, password: str | None, first_name: str = "", last_name: str = "", email_verified: bool = False
) -> User:
    """A sign-in for a member (online sign-up goes through allauth's own form instead)."""
    return _user_create(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_staff=False,
        email_verified=email_verified,
    )


@transaction.atomic
def staff_user_create(
    *,
    email: str,
    password: str,
    role: Role,
    first_name: str = "",
    last_name: str = "",
    store: Store | None = None,
) -> User:
    """Create a staff user in one role. Clerks must belong to a store; program staff may use the admin."""
    if role == Role.STORE_CLERK and store is None:
        raise ApplicationError(
            _("A store clerk must belong to a store: choose the store they work in."), code="store_required"
        )
    # Staff accounts are opened by a program manager or an operator, who vouches for the address.
    user = _user_create(
        email=email,
        password=password,
        first_name=first_name,
        last_name=last_name,
        is_staff=role in STAFF_ROLES,
        email_verified=True,
    )
    user.groups.add(Group.objects.get(name=role.value))
    StaffProfile.objects.create(user=user, store=store)
    return user


# --- members -----------------------------------------------------------------------------------------

REFERRAL_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: codes are read aloud and typed


# "+", a country code and digits, single spaces allowed: the shape most exports write phones in.
INTERNATIONAL_PHONE = re.compile(r"\+[1-9](?: ?[0-9])+")
_national_prefixes: dict[int, re.Pattern | None] = {}


def international_phone_e164(raw: str) -> str | None:
    """E.164 of "+32 470 12 34 56"-shaped phones that phonenumbers would parse to the very same number
    and finds valid, in a fraction of `phonenumbers.parse`'s time; None means "ask phonenumbers"
    (another shape, a national prefix to strip, an invalid number). The legacy import checks a million
    phones, most of them in this shape."""
    if INTERNATIONAL_PHONE.fullmatch(raw) is None:
        return None
    digits = raw[1:].replace(" ", "")
    for size in (1, 2, 3):  # country codes have no common prefix, as phonenumbers reads them
        country_code = int(digits[:size])
        if country_code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            break
    else:
        return None
    national = digits[size:]
    if not 2 <= len(national) <= 17 or national[0] == "0":  # too short or long, or an Italian leading zero
        return None
    try:
        prefix = _national_prefixes[country_code]
    except KeyError:
        region = phonenumbers.region_code_for_country_code(country_code)
        metadata = phonenumbers.PhoneMetadata.metadata_for_region_or_calling_code(country_code, region)
        pattern = metadata.national_prefix_for_parsing if metadata else None
        prefix = _national_prefixes[country_code] = re.compile(pattern) if pattern else None
    if prefix is not None and prefix.match(national):
        return None  # phonenumbers may strip a national prefix here (+375 8…, +1 1…): its own rules decide
    number = phonenumbers.PhoneNumber(country_code=country_code, national_number=int(national))
    return "+" + digits if phonenumbers.is_valid_number(number) else None


def phone_normalise(value: str, *, region: str | None = None) -> str:
    """E.164 form of a phone typed in any usual way ("0470 12 34 56", "+32 470..."), or "" when empty.
    Raises a clear error for a number that cannot be a phone."""
    value = (value or "").strip()
    if not value:
        return ""
    if (e164 := international_phone_e164(value)) is not None:
        return e164
    # phonenumbers itself, not phonenumber_field's wrapper: the legacy import checks a million phones here
    try:
        number = phonenumbers.parse(value, region or settings.PHONENUMBER_DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_valid_number(number):
        raise ApplicationError(
            _("“%(value)s” is not a valid phone number. Type it with its country code, e.g. +32 470 12 34 56.")
            % {"value": value},
            code="invalid_phone",
            extra={"field": "phone"},
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def member_duplicates(*, email: str = "", phone: str = "", exclude: Member | None = None) -> list[tuple[str, Member]]:
    """Active members who already use this email or (E.164) phone: [(field, member)]."""
    found = []
    members = Member.objects.filter(status=Member.Status.ACTIVE)
    if exclude is not None:
        members = members.exclude(pk=exclude.pk)
    if email:
        match = members.filter(email__iexact=email).first()
        if match:
            found.append(("email", match))
    if phone:
        match = members.filter(phone=phone).first()
        if match:
            found.append(("phone", match))
    return found


def _duplicate_error(field: str, member: Member) -> ApplicationError:
    # The message names nobody: whoever enrols may not be allowed to know who the other member is. The
    # member is in `extra`, for pages that may show them (the desk, to the clerks who serve them).
    if field == "email":
        message = _("A member with this email already exists.")
    else:
        message = _("A member with this phone already exists.")
    return ApplicationError(message, code="duplicate_member", extra={"field": field, "member": member})


def _issue_member_no() -> str:
    for _attempt in range(20):
        number = numbers.generate()
        if not Member.objects.filter(member_no=number).exists():
            return number
    raise RuntimeError("Could not find a free member number in 20 tries.")  # 1 in 10^160: never


def _issue_referral_code() -> str:
    for _attempt in range(20):
        code = "".join(secrets.choice(REFERRAL_ALPHABET) for _ in range(8))
        if not Member.objects.filter(referral_code=code).exists():
            return code
    raise RuntimeError("Could not find a free referral code in 20 tries.")


def _member_no_check(member_no: str) -> None:
    """A given number is kept as printed (legacy cards), unless it has the shape of the numbers the portal
    issues: then its check digit must be right, or the desk would take the card for a typo."""
    if member_no and numbers.looks_issued(member_no) and not numbers.check_digit_ok(member_no):
        raise ApplicationError(
            _(
                "%(number)s has the shape of a card number the portal issues, but its check digit is wrong. "
                "Check the digits, or leave the number empty to issue a new one."
            )
            % {"number": member_no},
            code="invalid",
            extra={"field": "member_no"},
        )


def member_by_referral_code(code: str) -> Member:
    code = (code or "").strip().upper()
    member = Member.objects.filter(referral_code=code, status=Member.Status.ACTIVE).first() if code else None
    if member is None:
        raise ApplicationError(
            _("The referral code “%(code)s” is unknown. Check it with the member who gave it to you.") % {"code": code},
            code="unknown_referral_code",
            extra={"field": "referral_code"},
        )
    return member


def _member_save(member: Member) -> None:
    """Check and save a member; a database refusal of a duplicate email or phone (another desk gave it
    to someone a moment ago) becomes the same message as the check before it."""
    try:
        member.full_clean(exclude=["phone"])  # phone is already E.164; the field's own check wants a region
    except ValidationError as error:
        field, messages = next(iter(error.message_dict.items()))
        raise ApplicationError(messages[0], code="invalid", extra={"field": field}) from error
    try:
        with transaction.atomic():
            member.save()
    except IntegrityError as error:
        duplicates = member_duplicates(
            email=member.email, phone=str(member.phone or ""), exclude=member if member.pk else None
        )
        for field, existing in duplicates:
            raise _duplicate_error(field, existing) from error
        raise


@transaction.atomic
def member_create(
    *,
    first_name: str = "",
    last_name: str = "",
    company: str = "",
    email: str = "",
    phone: str = "",
    street: str = "",
    postal_code: str = "",
    city: str = "",
    country: str = "",
    region: str = "",
    member_type: str = "consumer",
    language: str = "",
    birth_date=None,
    home_store: Store | None = None,
    channel: str = Member.Channel.COUNTER,
    enrolled_by: User | None = None,
    store: Store | None = None,
    marketing_consent: bool = False,
    referred_by: Member | None = None,
    user: User | None = None,
    member_no: str = "",
    enrolled_at=None,
) -> Member:
    """A new member, checked before anything is written: a name or a company, a valid phone, no active
    member already using the email or the phone, a known member type. Issues the card number (with its
    check digit) unless a legacy number is given, and records the consent."""
    first_name, last_name, company = first_name.strip(), last_name.strip(), company.strip()
    if not (first_name or last_name or company):
        raise ApplicationError(
            _("Give the member's name or their company's name."), code="invalid", extra={"field": "last_name"}
        )
    email = User.objects.normalize_email(email.strip())
    phone = phone_normalise(phone)
    if channel in {Member.Channel.COUNTER, Member.Channel.ONLINE, Member.Channel.API} and not (email or phone):
        raise ApplicationError(
            _("Give a phone or an email, so the member can be found again."), code="invalid", extra={"field": "phone"}
        )
    for field, existing in member_duplicates(email=email, phone=phone):
        raise _duplicate_error(field, existing)
    if not MemberType.objects.filter(code=member_type).exists():
        raise ApplicationError(
            _("Unknown member type “%(type)s”.") % {"type": member_type}, code="invalid", extra={"field": "member_type"}
        )
    _member_no_check(member_no)
    languages = {code for code, _name in settings.LANGUAGES}
    now = timezone.now()
    member = Member(
        member_no=member_no or _issue_member_no(),
        first_name=first_name,
        last_name=last_name,
        company=company,
        email=email,
        phone=phone,
        street=street.strip(),
        postal_code=postal_code.strip(),
        city=city.strip(),
        country=country.strip().upper(),
        region=region or (home_store.region if home_store else ""),
        member_type=member_type,
        language=language if language in languages else settings.LANGUAGE_CODE,
        birth_date=birth_date,
        home_store=home_store,
        user=user,
        enrolment_channel=channel,
        enrolled_by=enrolled_by,
        enrolled_at_store=store,
        marketing_consent=marketing_consent,
        marketing_consent_at=now,
        marketing_consent_channel=channel,
        referral_code=_issue_referral_code(),
        referred_by=referred_by,
        enrolled_at=enrolled_at or now,
    )
    _member_save(member)
    ConsentRecord.objects.create(
        member=member, granted=marketing_consent, channel=channel, recorded_at=now, recorded_by=enrolled_by, store=store
    )
    return member


@transaction.atomic
def member_consent_set(
    *, member: Member, granted: bool, channel: str, recorded_by: User | None = None, store: Store | None = None
) -> Member:
    """Give or withdraw marketing consent; every change is kept in the member's consent history."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.marketing_consent == granted:
        return member
    now = timezone.now()
    member.marketing_consent, member.marketing_consent_at, member.marketing_consent_channel = granted, now, channel
    member.save(update_fields=["marketing_consent", "marketing_consent_at", "marketing_consent_channel"])
    ConsentRecord.objects.create(
        member=member, granted=granted, channel=channel, recorded_at=now, recorded_by=recorded_by, store=store
    )
    return member


@transaction.atomic
def member_profile_update(
    *, member: Member, email: str, phone: str, street: str, postal_code: str, city: str, language: str
) -> Member:
    """What a member may change about themselves. Email and phone stay unique among active members."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    email = User.objects.normalize_email(email.strip())
    phone = phone_normalise(phone)
    for field, existing in member_duplicates(email=email, phone=phone, exclude=member):
        raise ApplicationError(
            _("Another member already uses this %(field)s.")
            % {"field": _("email") if field == "email" else _("phone")},
            code="duplicate_member",
            extra={"field": field, "member": existing},
        )
    if language not in {code for code, _name in settings.LANGUAGES}:
        raise ApplicationError(_("Choose one of the offered languages."), code="invalid", extra={"field": "language"})
    member.email, member.phone, member.language = email, phone, language
    member.street, member.postal_code, member.city = street.strip(), postal_code.strip(), city.strip()
    member.save()
    return member


@transaction.atomic
def member_details_update(
    *,
    member: Member,
    first_name: str | None = None,
    last_name: str | None = None,
    company: str | None = None,
    email: str | None = None,
    phone: str | None = None,
    street: str | None = None,
    postal_code: str | None = None,
    city: str | None = None,
    country: str | None = None,
    region: str | None = None,
    member_type: str | None = None,
    language: str | None = None,
    home_store: Store | None = None,
    marketing_consent: bool | None = None,
    changed_by: User | None = None,
    channel: str = Member.Channel.COUNTER,
) -> Member:
    """Staff correcting a member's details (the admin import): what is None stays as it is. The checks
    are enrolment's: a name or a company, a valid phone, no other active member with the email or the
    phone, a known member type; a change of consent is recorded like any other."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.ANONYMISED:
        raise ApplicationError(
            _("This member was anonymised at their request: their details cannot be filled in again."),
            code="anonymised",
        )
    texts = {
        "first_name": first_name,
        "last_name": last_name,
        "company": company,
        "street": street,
        "postal_code": postal_code,
        "city": city,
        "region": region,
    }
    for name, value in texts.items():
        if value is not None:
            setattr(member, name, value.strip())
    if email is not None:
        member.email = User.objects.normalize_email(email.strip())
    if phone is not None:
        member.phone = phone_normalise(phone)
    if country is not None:
        member.country = country.strip().upper()
    if home_store is not None:
        member.home_store = home_store
    if not (member.first_name or member.last_name or member.company):
        raise ApplicationError(
            _("Give the member's name or their company's name."), code="invalid", extra={"field": "last_name"}
        )
    if member.status == Member.Status.ACTIVE:
        for field, existing in member_duplicates(email=member.email, phone=str(member.phone or ""), exclude=member):
            raise _duplicate_error(field, existing)
    if member_type is not None:
        if not MemberType.objects.filter(code=member_type).exists():
            raise ApplicationError(
                _("Unknown member type “%(type)s”.") % {"type": member_type},
                code="invalid",
                extra={"field": "member_type"},
            )
        member.member_type = member_type
    if language is not None:
        if language not in {code for code, _name in settings.LANGUAGES}:
            raise ApplicationError(
                _("Choose one of the offered languages."), code="invalid", extra={"field": "language"}
            )
        member.language = language
    _member_save(member)
    if marketing_consent is not None:
        member = member_consent_set(member=member, granted=marketing_consent, channel=channel, recorded_by=changed_by)
    return member


@transaction.atomic
def member_link_user(*, member: Member, user: User) -> Member:
    """Give a member online access through this sign-in (one sign-in per member)."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.user_id and member.user_id != user.pk:
        raise ApplicationError(_("This member already has online access."), code="already_linked")
    if Member.objects.filter(user=user).exclude(pk=member.pk).exists():
        raise ApplicationError(_("This sign-in already belongs to another member."), code="already_linked")
    member.user = user
    member.save(update_fields=["user"])
    return member


@transaction.atomic
def member_anonymise(*, member: Member, requested_by: User | None = None) -> Member:
    """Close the member and erase what identifies them. Their ledger stays as it is (the program's books
    need its totals); the sign-in is deactivated and its addresses forgotten."""
    member = Member.objects.select_for_update().get(pk=member.pk)
    if member.status == Member.Status.ANONYMISED:
        return member
    user = member.user
    member.first_name = member.last_name = member.company = ""
    member.email = member.phone = member.street = member.postal_code = member.city = ""
    member.birth_date = None
    member.user = None
    member.marketing_consent = False
    member.referral_code = None
    member.status = Member.Status.ANONYMISED
    member.closed_at = timezone.now()
    member.save()
    if user is not None:
        EmailAddress.objects.filter(user=user).delete()
        user.email = f"anonymised-{user.pk}@invalid"
        user.first_name = user.last_name = ""
        user.is_active = False
        user.set_unusable_password()
        user.save()
    return member


@transaction.atomic
def member_claim_by_verified_email(*, user: User) -> Member | None:
    """A signed-in user whose verified email is that of a member without online access (enrolled at the
    counter or imported) becomes that member's sign-in, rather than a second member."""
    if hasattr(user, "member"):
        return user.member
    verified = EmailAddress.objects.filter(user=user, verified=True).values_list("email", flat=True)
    for email in verified:
        member = (
            Member.objects.select_for_update()
            # A suspended member is linked too (and told at /me/ that their membership is not active),
            # so the address cannot open a second membership beside it.
            .filter(email__iexact=email, status__in=[Member.Status.ACTIVE, Member.Status.SUSPENDED], user__isnull=True)
            .first()
        )
        if member is not None:
            member.user = user
            member.save(update_fields=["user"])
            return member
    return None
