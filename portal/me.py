"""The member's own pages (/me/). Every read is scoped to the signed-in member: another member's
account, claim or file answers 404."""

import csv
import datetime
import json
import uuid
from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import logout
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import FileResponse, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from loyalty import selectors, services
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.models import Account, Activity, LedgerEntry
from members.models import Member
from members.services import member_anonymise, member_claim_by_verified_email, member_consent_set, member_profile_update
from portal import member_data
from portal.desk import card_context
from portal.forms import ClaimForm, JoinForm, ProfileForm

EXPIRING_DAYS = 90


class MemberMixin(LoginRequiredMixin):
    """The signed-in member. Users who are not a member yet are sent to join (or linked, when their
    verified email is a counter-enrolled member's)."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        member = Member.objects.filter(user=request.user).first() or member_claim_by_verified_email(user=request.user)
        if member is None:
            return redirect("me:join")
        if member.status != Member.Status.ACTIVE:
            raise PermissionDenied(_("Your membership is not active. Ask the program's team for help."))
        self.member = member
        return super().dispatch(request, *args, **kwargs)

    def account_or_404(self, pk) -> Account:
        return get_object_or_404(Account.objects.select_related("program", "tier"), pk=pk, member=self.member)


class DashboardView(MemberMixin, View):
    def get(self, request):
        now = timezone.now()
        accounts = []
        for account in selectors.member_accounts(member=self.member):
            expiring = selectors.points_expiring_within(account=account, days=EXPIRING_DAYS, as_of=now)
            accounts.append(
                {
                    "account": account,
                    "progress": selectors.tier_progress(account=account, as_of=now),
                    "expiring": expiring,
                    "expiring_total": sum(lot["points"] for lot in expiring),
                    "latest": selectors.latest_entries(account=account),
                }
            )
        claims = list(selectors.member_claims(member=self.member).filter(status=Activity.Status.PENDING_REVIEW)[:5])
        return render(
            request,
            "me/dashboard.html",
            {"member": self.member, "accounts": accounts, "claims": claims, "expiring_days": EXPIRING_DAYS},
        )


class StatementView(MemberMixin, View):
    PAGE = 25

    def get(self, request, account_pk):
        account = self.account_or_404(account_pk)
        kinds = [k for k in request.GET.getlist("kind") if k in LedgerEntry.Kind.values]
        date_from, date_to = _date(request.GET.get("from")), _date(request.GET.get("to"))
        entries = selectors.account_statement(account=account, kinds=kinds, date_from=date_from, date_to=date_to)
        page = Paginator(entries, self.PAGE).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        return render(
            request,
            "me/statement.html",
            {
                "member": self.member,
                "account": account,
                "page": page,
                "kinds": LedgerEntry.Kind.choices,
                "chosen": kinds,
                "date_from": date_from,
                "date_to": date_to,
                "query": query.urlencode(),
            },
        )


def _date(value: str | None) -> datetime.date | None:
    try:
        return datetime.date.fromisoformat(value) if value else None
    except ValueError:
        return None


class ClaimsView(MemberMixin, View):
    def get(self, request):
        return self.page(ClaimForm(accounts=self.accounts(), initial={"request_id": uuid.uuid4().hex}))

    def post(self, request):
        accounts = self.accounts()
        form = ClaimForm(request.POST, request.FILES, accounts=accounts)
        if form.is_valid():
            data = form.cleaned_data
            account = next(a for a in accounts if a.pk == data["account"])
            occurred = timezone.make_aware(datetime.datetime.combine(data["occurred_on"], datetime.time(12)))
            try:
                services.earn_for_activity(
                    account=account,
                    activity_type=data["activity_type"],
                    quantity=data["quantity"],
                    description=data["description"],
                    evidence=data["evidence"],
                    occurred_at=occurred,
                    idempotency_key=f"claim:{self.member.pk}:{data['request_id']}",
                    created_by=request.user,
                    as_claim=True,
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("Thank you: your claim was sent. Staff will review it shortly."))
                return redirect("me:claims")
        return self.page(form, status=400)

    def accounts(self):
        return selectors.member_accounts(member=self.member)

    def page(self, form, status=200):
        claims = selectors.member_claims(member=self.member)
        return render(
            self.request, "me/claims.html", {"member": self.member, "form": form, "claims": claims}, status=status
        )


class ClaimEvidenceView(MemberMixin, View):
    """The member's own evidence file (never another member's: 404)."""

    def get(self, request, pk):
        claim = get_object_or_404(selectors.member_claims(member=self.member), pk=pk)
        if not claim.evidence:
            return HttpResponse(status=404)
        return FileResponse(claim.evidence.open("rb"), as_attachment=True)


class ReferralsView(MemberMixin, View):
    def get(self, request):
        link = request.build_absolute_uri(f"{reverse('me:join')}?{urlencode({'ref': self.member.referral_code or ''})}")
        return render(
            request,
            "me/referrals.html",
            {"member": self.member, "link": link, "referrals": selectors.member_referrals(member=self.member)},
        )


class ProfileView(MemberMixin, View):
    def get(self, request):
        member = self.member
        form = ProfileForm(
            initial={
                "email": member.email,
                "phone": member.phone.as_national if member.phone else "",
                "street": member.street,
                "postal_code": member.postal_code,
                "city": member.city,
                "language": member.language,
                "marketing_consent": member.marketing_consent,
            }
        )
        return self.page(form)

    def post(self, request):
        form = ProfileForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                member = member_profile_update(
                    member=self.member,
                    email=data["email"],
                    phone=data["phone"],
                    street=data["street"],
                    postal_code=data["postal_code"],
                    city=data["city"],
                    language=data["language"],
                )
                member_consent_set(member=member, granted=data["marketing_consent"], channel=Member.Channel.ONLINE)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("Your details are saved."))
                response = redirect("me:profile")
                response.set_cookie("django_language", member.language, samesite="Lax")
                return response
        return self.page(form, status=400)

    def page(self, form, status=200):
        member = self.member
        return render(
            self.request,
            "me/profile.html",
            {
                "member": member,
                "form": form,
                "consents": member.consent_records.select_related("store")[:50],
                "terms": selectors.member_terms_history(member=member),
            },
            status=status,
        )


class CardView(MemberMixin, View):
    def get(self, request):
        return render(request, "card.html", card_context(self.member))


class DataExportView(MemberMixin, View):
    """Everything the program holds about the member: JSON, or the ledger as CSV."""

    def get(self, request, fmt):
        data = member_data.export(member=self.member)
        stamp = timezone.localdate().isoformat()
        if fmt == "json":
            response = HttpResponse(
                json.dumps(data, indent=2, ensure_ascii=False, default=str), content_type="application/json"
            )
            response["Content-Disposition"] = f'attachment; filename="my-loyalty-data-{stamp}.json"'
            return response
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="my-loyalty-ledger-{stamp}.csv"'
        response.write("\ufeff")  # spreadsheets open UTF-8 correctly with a BOM
        writer = csv.writer(response)
        writer.writerow(member_data.LEDGER_COLUMNS)
        for row in member_data.ledger_rows(member=self.member):
            writer.writerow([member_data.spreadsheet_safe(value) for value in row])
        return response


class CloseAccountView(MemberMixin, View):
    def get(self, request):
        return render(request, "me/close.html", {"member": self.member})

    def post(self, request):
        if request.POST.get("confirm", "").strip().upper() != self.member.member_no.upper():
            messages.error(request, _("Type your card number to confirm: nothing was closed."))
            return render(request, "me/close.html", {"member": self.member}, status=400)
        member_anonymise(member=self.member, requested_by=request.user)
        logout(request)
        messages.success(request, _("Your membership is closed and your personal data erased."))
        return redirect("home")


class JoinView(LoginRequiredMixin, View):
    """Online enrolment for a signed-in user who is not a member yet."""

    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated and (
            Member.objects.filter(user=request.user).exists() or member_claim_by_verified_email(user=request.user)
        ):
            return redirect("me:dashboard")  # a member already (an inactive one is told so there)
        return super().dispatch(request, *args, **kwargs)

    def programs(self):
        return selectors.open_programs()

    def get(self, request):
        initial = {"first_name": request.user.first_name, "last_name": request.user.last_name}
        initial["referral_code"] = request.GET.get("ref", "")
        return self.page(JoinForm(programs=self.programs(), initial=initial))

    def post(self, request):
        form = JoinForm(request.POST, programs=self.programs())
        if form.is_valid():
            data = form.cleaned_data
            try:
                services.member_enrol(
                    program=data["program"],
                    channel=Member.Channel.ONLINE,
                    accept_terms=data["accept_terms"],
                    invitation_code=data["invitation_code"],
                    referral_code=data["referral_code"],
                    user=request.user,
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    email=request.user.email,
                    phone=data["phone"],
                    member_type=data["member_type"],
                    language=request.LANGUAGE_CODE,
                    marketing_consent=data["marketing_consent"],
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("Welcome! Your card number is on your dashboard."))
                return redirect("me:dashboard")
        return self.page(form, status=400)

    def page(self, form, status=200):
        return render(self.request, "me/join.html", {"form": form}, status=status)
