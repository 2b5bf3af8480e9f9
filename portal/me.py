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
from django.http import FileResponse, Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from campaigns.transitions import member_transitions
from loyalty import selectors, services
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.core.qr import qr_svg
from loyalty.models import Account, Activity, LedgerEntry
from members.models import Member
from members.services import member_anonymise, member_claim_by_verified_email, member_consent_set, member_profile_update
from portal import member_data
from portal.desk import card_context
from portal.forms import ClaimForm, JoinForm, ProfileForm, RedeemForm
from rewards import codes as voucher_codes
from rewards import selectors as reward_selectors
from rewards import services as reward_services
from rewards.models import Reward

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

    def account_or_404(self, pk=None, **filters) -> Account:
        if pk is not None:
            filters["pk"] = pk
        account = get_object_or_404(Account.objects.select_related("program", "tier"), member=self.member, **filters)
        account.member = self.member
        return account


class DashboardView(MemberMixin, View):
    def get(self, request):
        now = timezone.now()
        accounts = []
        for account in selectors.member_accounts(member=self.member):
            expiring = selectors.points_expiring_within(account=account, days=EXPIRING_DAYS, as_of=now)
            progress = selectors.tier_progress(account=account, as_of=now)
            accounts.append(
                {
                    "account": account,
                    "progress": progress,
                    "next_benefits": selectors.tier_benefits(tier=progress.next_tier) if progress.next_tier else [],
                    "expiring": expiring,
                    "expiring_total": sum(lot["points"] for lot in expiring),
                    "latest": selectors.latest_entries(account=account),
                    "upcoming": reward_selectors.upcoming_rewards(account=account, as_of=now),
                }
            )
        claims = list(selectors.member_claims(member=self.member).filter(status=Activity.Status.PENDING_REVIEW)[:5])
        return render(
            request,
            "me/dashboard.html",
            {
                "member": self.member,
                "accounts": accounts,
                "claims": claims,
                "expiring_days": EXPIRING_DAYS,
                "vouchers": reward_selectors.usable_vouchers(member=self.member)[:3],
                "transitions": member_transitions(member=self.member),
            },
        )


class RewardsView(MemberMixin, View):
    """The catalogue of each program the member belongs to: what they can redeem now, and why not otherwise."""

    def get(self, request):
        catalogues = []
        for account in selectors.member_accounts(member=self.member):
            account.member = self.member
            catalogues.append({"account": account, "offers": reward_selectors.catalogue_for_account(account=account)})
        return render(request, "me/rewards.html", {"member": self.member, "catalogues": catalogues})


class RewardDetailView(MemberMixin, View):
    """One reward with its redeem button; the button asks for confirmation (htmx), then redeems."""

    def offer(self, pk):
        reward = get_object_or_404(Reward.objects.select_related("program", "min_tier"), pk=pk, is_active=True)
        account = self.account_or_404(program=reward.program)
        offer = next(
            (o for o in reward_selectors.catalogue_for_account(account=account) if o.reward.pk == reward.pk), None
        )
        if offer is None:  # not offered to this member (region, member type, dates)
            raise Http404
        return account, offer

    def get(self, request, pk):
        account, offer = self.offer(pk)
        confirm = request.GET.get("confirm") == "1" and offer.available
        context = {
            "member": self.member,
            "account": account,
            "offer": offer,
            "confirm": confirm,
            "form": RedeemForm(initial={"request_id": uuid.uuid4().hex}),
        }
        if request.htmx and confirm:
            return render(request, "me/_redeem_confirm.html", context)
        return render(request, "me/reward_detail.html", context)

    def post(self, request, pk):
        account, offer = self.offer(pk)
        form = RedeemForm(request.POST)
        error = None
        if form.is_valid():
            try:
                result = reward_services.redeem(
                    account=account,
                    reward=offer.reward,
                    idempotency_key=f"online:{self.member.pk}:{form.cleaned_data['request_id']}",
                    channel="online",
                    created_by=request.user,
                )
            except ApplicationError as refused:
                error = refused.message
            else:
                if result.voucher:
                    messages.success(
                        request,
                        _("Redeemed: %(reward)s. Your voucher code is %(code)s.")
                        % {"reward": offer.reward.name, "code": voucher_codes.display(result.voucher.code)},
                    )
                    target = reverse("me:voucher", args=[result.voucher.code])
                else:
                    messages.success(
                        request,
                        _("Redeemed: %(reward)s. We will let you know when it is on its way.")
                        % {"reward": offer.reward.name},
                    )
                    target = reverse("me:rewards")
                if request.htmx:
                    response = HttpResponse(status=204)
                    response["HX-Redirect"] = target
                    return response
                return redirect(target)
        else:
            error = _("The form has expired: reload the page and try again.")
        account, offer = self.offer(pk)  # fresh balance and eligibility
        context = {"member": self.member, "account": account, "offer": offer, "form": form, "error": error}
        template = "me/_redeem_confirm.html" if request.htmx else "me/reward_detail.html"
        return render(request, template, {**context, "confirm": offer.available}, status=400)


class VouchersView(MemberMixin, View):
    def get(self, request):
        return render(
            request,
            "me/vouchers.html",
            {
                "member": self.member,
                "usable": reward_selectors.usable_vouchers(member=self.member)[:100],
                "past": reward_selectors.past_vouchers(member=self.member)[:50],
                "redemptions": reward_selectors.member_redemptions(member=self.member)[:20],
            },
        )


class VoucherView(MemberMixin, View):
    """One voucher, large, with its QR code, to show at the till (another member's code answers 404)."""

    def get(self, request, code):
        voucher = get_object_or_404(reward_selectors.member_vouchers(member=self.member), code=code)
        label = voucher_codes.display(voucher.code)
        return render(
            request,
            "me/voucher.html",
            {
                "member": self.member,
                "voucher": voucher,
                "code": label,
                "qr": qr_svg(voucher.code, scale=6, title=_("Voucher %(code)s") % {"code": label}),
                "today": timezone.localdate(),
            },
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
