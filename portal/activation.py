"""Online access for members enrolled at the counter: a signed, single-use link by email to choose a
password. The link carries the member's id and a digest of their state, so it stops working once used
(the member then has a sign-in) or when their email changes; it expires after ACTIVATION_DAYS."""

import hashlib

from django.conf import settings
from django.contrib.auth import login
from django.core import signing
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _
from django.views import View

from loyalty.core.exceptions import ApplicationError
from members.models import Member
from members.services import member_link_user, member_user_create
from portal.forms import ActivationForm

ACTIVATION_DAYS = 30
SALT = "portal.member-activation"


def _state(member: Member) -> str:
    raw = f"{member.pk}:{member.user_id}:{member.email.lower()}:{member.status}"
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def activation_token(member: Member) -> str:
    return signing.dumps({"m": member.pk, "s": _state(member)}, salt=SALT, compress=True)


def member_for_token(token: str) -> Member | None:
    """The member the link was made for, or None when it is forged, expired or already used."""
    try:
        data = signing.loads(token, salt=SALT, max_age=ACTIVATION_DAYS * 24 * 3600)
    except signing.BadSignature:
        return None
    member = Member.objects.filter(pk=data.get("m"), status=Member.Status.ACTIVE, user__isnull=True).first()
    if member is None or not member.email or _state(member) != data.get("s"):
        return None
    return member


def send_activation_invitation(*, request, member: Member) -> None:
    url = request.build_absolute_uri(reverse("activate", args=[activation_token(member)]))
    with translation.override(member.language):
        subject = _("Your loyalty card is ready: activate your online account")
        body = render_to_string("email/activation.txt", {"member": member, "url": url, "days": ACTIVATION_DAYS})
    transaction.on_commit(
        lambda: send_mail(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email], fail_silently=False)
    )


class ActivateView(View):
    """The link from the invitation: choose a password, and the member's dashboard opens."""

    def get(self, request, token):
        member = member_for_token(token)
        if member is None:
            return render(request, "me/activation_invalid.html", status=400)
        return render(request, "me/activate.html", {"member": member, "form": ActivationForm()})

    def post(self, request, token):
        member = member_for_token(token)
        if member is None:
            return render(request, "me/activation_invalid.html", status=400)
        form = ActivationForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    user = member_user_create(
                        email=member.email,
                        password=form.cleaned_data["password1"],
                        first_name=member.first_name,
                        last_name=member.last_name,
                        email_verified=True,  # the link reached this address
                    )
                    member_link_user(member=member, user=user)
            except ApplicationError as error:
                form.add_error(None, error.message)
            except ValidationError:  # the address already has a sign-in (the user's full_clean says so)
                form.add_error(None, _("This email already has a sign-in: sign in with it instead."))
            else:
                login(request, user, backend="django.contrib.auth.backends.ModelBackend")
                return redirect("me:dashboard")
        return render(request, "me/activate.html", {"member": member, "form": form}, status=400)


TELL_BATCH = 500


def members_to_tell(program):
    """Accounts of imported members who can be told by email and have not been: consent given, an address,
    no online sign-in yet."""
    from loyalty.models import Account

    return Account.objects.filter(
        program=program,
        moved_notice_sent_at__isnull=True,
        member__enrolment_channel=Member.Channel.IMPORT,
        member__status=Member.Status.ACTIVE,
        member__marketing_consent=True,
        member__user__isnull=True,
    ).exclude(member__email="")


def imported_members_tell(*, program_id: int) -> int:
    """Tell each member a legacy import brought into the program, by name and in their language, that
    their account moved, with their balance and tier and a link to activate online access. Members
    with marketing consent and an email only; each is told once (Account.moved_notice_sent_at). Sent in
    batches over one mail connection; a batch is marked in the transaction that sends it."""
    from django.core.mail import EmailMessage, get_connection
    from django.utils import timezone

    from loyalty.models import Account, Program

    program = Program.objects.get(pk=program_id)
    told = 0
    while True:
        with transaction.atomic():
            batch = list(
                members_to_tell(program)
                .select_related("member", "tier")
                .order_by("pk")
                .select_for_update(skip_locked=True, of=("self",))[:TELL_BATCH]
            )
            if not batch:
                return told
            messages = []
            for account in batch:
                member = account.member
                url = f"{settings.SITE_URL}{reverse('activate', args=[activation_token(member)])}"
                with translation.override(member.language):
                    subject = _("Your %(program)s account has moved to our new portal") % {"program": program.name}
                    body = render_to_string(
                        "email/account_moved.txt",
                        {"member": member, "account": account, "program": program, "url": url, "days": ACTIVATION_DAYS},
                    )
                messages.append(EmailMessage(subject, body, settings.DEFAULT_FROM_EMAIL, [member.email]))
            get_connection().send_messages(messages)
            Account.objects.filter(pk__in=[account.pk for account in batch]).update(moved_notice_sent_at=timezone.now())
            told += len(batch)
