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
