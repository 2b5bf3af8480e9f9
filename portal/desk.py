"""The store clerk desk (/desk/): find or enrol a customer in seconds, record purchases and activities.

A clerk sees and acts only on members of programs their store runs; everything they record carries
their user and their store.
"""

import uuid

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from campaigns.transitions import member_transitions
from loyalty import selectors, services
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.core.qr import qr_svg
from members import numbers
from members.access import ClerkRequiredMixin
from members.models import Member
from members.selectors import clerk_store, member_type_names
from members.services import member_duplicates, phone_normalise
from portal.activation import send_activation_invitation
from portal.forms import DeskActivityForm, DeskPurchaseForm, DeskRedeemForm, EnrolForm, VoucherCodeForm
from rewards import codes as voucher_codes
from rewards import selectors as reward_selectors
from rewards import services as reward_services


class DeskMixin(ClerkRequiredMixin):
    def dispatch(self, request, *args, **kwargs):
        if not self.has_permission():
            return self.handle_no_permission()
        self.store = clerk_store(user=request.user)
        if self.store is None:
            return render(request, "desk/home.html", {"store": None}, status=403)
        return super().dispatch(request, *args, **kwargs)

    def member_or_404(self, member_no: str) -> Member:
        member = selectors.desk_member(store=self.store, member_no=member_no)
        if member is None:
            raise Http404(_("No member with this number in your store's programs."))
        return member

    def redeemable(self, accounts) -> list:
        """What the customer can redeem now, in the programs this store runs."""
        offers = []
        for account in accounts:
            offers += [o for o in reward_selectors.catalogue_for_account(account=account) if o.available]
        return offers

    def render_member_page(self, member: Member, *, status: int = 200, **extra):
        """The member's desk page: card, accounts with progress and latest entries, the posting forms."""
        accounts = selectors.desk_accounts(store=self.store, member=member)
        for account in accounts:
            account.member = member
        offers = self.redeemable(accounts)
        context = {
            "store": self.store,
            "member": member,
            "card_number": numbers.display(member.member_no),
            "member_type": member_type_names().get(member.member_type, member.member_type),
            "qr": qr_svg(member.member_no, title=_("Card number %(number)s") % {"number": member.member_no}),
            "accounts": [
                {
                    "account": a,
                    "progress": selectors.tier_progress(account=a),
                    "latest": selectors.latest_entries(account=a),
                }
                for a in accounts
            ],
            # Each form's request id becomes the idempotency key of what the clerk posts with it.
            "purchase_form": DeskPurchaseForm(accounts=accounts, initial={"request_id": uuid.uuid4().hex}),
            "activity_form": DeskActivityForm(accounts=accounts, initial={"request_id": uuid.uuid4().hex}),
            "redeem_form": DeskRedeemForm(offers=offers, initial={"request_id": uuid.uuid4().hex}),
            "offers": offers,
            "transitions": member_transitions(
                member=member, programs=[a.program_id for a in accounts], with_rewards=False
            ),
            **extra,
        }
        return render(self.request, "desk/member.html", context, status=status)


class DeskHomeView(DeskMixin, View):
    def get(self, request):
        query = request.GET.get("q", "")
        context = {
            "store": self.store,
            "query": query,
            "results": selectors.desk_member_search(store=self.store, query=query),
            "hint": _number_hint(query),
        }
        if request.htmx:
            return render(request, "desk/_results.html", context)
        return render(request, "desk/home.html", context)


def _number_hint(query: str) -> str:
    """A card number of the portal's shape whose check digit is wrong: say so rather than find nothing."""
    value = numbers.normalise(query)
    if numbers.looks_issued(value) and not numbers.check_digit_ok(value):
        return _("%(number)s is not a valid card number: its check digit is wrong. Check the digits on the card.") % {
            "number": numbers.display(value)
        }
    return ""


class DeskDuplicateCheckView(DeskMixin, View):
    """While the clerk types the phone or the email: is this person a member already?"""

    def get(self, request):
        email = request.GET.get("email", "").strip()
        try:
            phone = phone_normalise(request.GET.get("phone", ""))
        except ApplicationError:
            phone = ""
        found = member_duplicates(email=email, phone=phone) if (email or phone) else []
        served = {m.pk for m in selectors.members_served_by(store=self.store).filter(pk__in=[m.pk for _f, m in found])}
        return render(request, "desk/_duplicates.html", {"found": found, "served": served})


class DeskEnrolView(DeskMixin, View):
    def get(self, request):
        form = EnrolForm(
            programs=selectors.store_programs(store=self.store), initial={"language": request.LANGUAGE_CODE}
        )
        return self.render_form(form)

    def post(self, request):
        form = EnrolForm(request.POST, programs=selectors.store_programs(store=self.store))
        duplicate = None
        if form.is_valid():
            data = form.cleaned_data
            try:
                account = services.member_enrol(
                    program=data["program"],
                    channel=Member.Channel.COUNTER,
                    accept_terms=data["accept_terms"],
                    enrolled_by=request.user,
                    store=self.store,
                    invitation_code=data["invitation_code"],
                    referral_code=data["referral_code"],
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    company=data["company"],
                    email=data["email"],
                    phone=data["phone"],
                    postal_code=data["postal_code"],
                    member_type=data["member_type"],
                    language=data["language"],
                    home_store=self.store,
                    marketing_consent=data["marketing_consent"],
                )
            except ApplicationError as error:
                add_application_error(form, error)
                duplicate = error.extra.get("member") if error.code == "duplicate_member" else None
            else:
                member = account.member
                if member.email:
                    send_activation_invitation(request=request, member=member)
                messages.success(
                    request,
                    _("%(name)s is enrolled in %(program)s with card %(number)s. Welcome bonus: %(points)s points.")
                    % {
                        "name": member.display_name,
                        "program": account.program,
                        "number": numbers.display(member.member_no),
                        "points": account.balance + account.pending,
                    },
                )
                return redirect("desk:member", member_no=member.member_no)
        return self.render_form(form, duplicate=duplicate, status=400 if request.method == "POST" else 200)

    def render_form(self, form, *, duplicate=None, status=200):
        served = duplicate is not None and selectors.desk_member(store=self.store, member_no=duplicate.member_no)
        context = {"store": self.store, "form": form, "duplicate": duplicate, "duplicate_served": bool(served)}
        return render(self.request, "desk/enrol.html", context, status=status)


class DeskMemberView(DeskMixin, View):
    def get(self, request, member_no):
        return self.render_member_page(self.member_or_404(member_no))


class DeskRecordView(DeskMixin, View):
    """POST a purchase or an activity for a member; the page shows what it earned and why."""

    kind = "purchase"

    def post(self, request, member_no):
        member = self.member_or_404(member_no)
        accounts = selectors.desk_accounts(store=self.store, member=member)
        by_pk = {a.pk: a for a in accounts}
        form_class = DeskPurchaseForm if self.kind == "purchase" else DeskActivityForm
        form = form_class(request.POST, accounts=accounts)
        result = None
        if form.is_valid():
            data = form.cleaned_data
            account = by_pk[data["account"]]
            key = f"desk:{self.store.code}:{data['request_id']}"
            occurred_at = selectors.keyed_occurrence(program=account.program, idempotency_key=key) or timezone.now()
            try:
                if self.kind == "purchase":
                    result = services.earn_for_purchase(
                        account=account,
                        amount=data["amount"],
                        currency=account.program.currency,
                        receipt_number=data["receipt_number"],
                        occurred_at=occurred_at,
                        idempotency_key=key,
                        store=self.store,
                        created_by=request.user,
                    )
                else:
                    result = services.earn_for_activity(
                        account=account,
                        activity_type=data["activity_type"],
                        quantity=data["quantity"],
                        code=data["code"],
                        occurred_at=occurred_at,
                        idempotency_key=key,
                        store=self.store,
                        created_by=request.user,
                    )
            except ApplicationError as error:
                add_application_error(form, error)
        if result is None:  # the form again, with what to fix
            return self.render_member_page(member, status=400, **{f"{self.kind}_form": form})
        return self.render_member_page(member, result=result, result_kind=self.kind)  # fresh balances


class DeskRedeemView(DeskMixin, View):
    """Redeem a reward for the customer; the page shows the voucher code to hand over, or what went wrong."""

    def post(self, request, member_no):
        member = self.member_or_404(member_no)
        accounts = selectors.desk_accounts(store=self.store, member=member)
        for account in accounts:
            account.member = member
        offers = self.redeemable(accounts)
        form = DeskRedeemForm(request.POST, offers=offers)
        redemption = None
        if form.is_valid():
            offer = next(o for o in offers if o.reward.pk == form.cleaned_data["reward"])
            account = next(a for a in accounts if a.program_id == offer.reward.program_id)
            try:
                redemption = reward_services.redeem(
                    account=account,
                    reward=offer.reward,
                    idempotency_key=f"desk:{self.store.code}:{form.cleaned_data['request_id']}",
                    channel="desk",
                    store=self.store,
                    created_by=request.user,
                ).redemption
            except ApplicationError as error:
                add_application_error(form, error)
        if redemption is None:
            return self.render_member_page(member, status=400, redeem_form=form)
        voucher = getattr(redemption, "voucher", None)
        return self.render_member_page(
            member,
            redemption=redemption,
            voucher_code=voucher_codes.display(voucher.code) if voucher else "",
        )


class DeskVoucherView(DeskMixin, View):
    """Check a voucher code a customer shows, then use it: once, with the date and store of a first use."""

    def get(self, request):
        form = VoucherCodeForm(request.GET or None)
        voucher, refusal = None, None
        if form.is_valid():
            try:
                voucher = reward_services.voucher_for_store(code=form.cleaned_data["code"], store=self.store)
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                refusal = reward_services.voucher_refusal(voucher, today=timezone.localdate())
        return self.page(form, voucher=voucher, refusal=refusal, status=400 if form.errors else 200)

    def post(self, request):
        form = VoucherCodeForm(request.POST)
        if form.is_valid():
            try:
                voucher = reward_services.voucher_redeem(
                    code=form.cleaned_data["code"], store=self.store, redeemed_by=request.user
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(
                    request,
                    _("Voucher %(code)s used: %(what)s for %(name)s.")
                    % {
                        "code": voucher_codes.display(voucher.code),
                        "what": voucher.description,
                        "name": voucher.account.member.display_name,
                    },
                )
                return redirect("desk:vouchers")
        return self.page(form, status=400)

    def page(self, form, *, voucher=None, refusal=None, status=200):
        context = {
            "store": self.store,
            "form": form,
            "voucher": voucher,
            "refusal": refusal,
            "code": voucher_codes.display(voucher.code) if voucher else "",
        }
        return render(self.request, "desk/vouchers.html", context, status=status)


class MemberCardView(DeskMixin, View):
    """The member card to print or show on a screen: name, number and its QR code."""

    def get(self, request, member_no):
        member = self.member_or_404(member_no)
        return render(request, "card.html", card_context(member))


def card_context(member: Member) -> dict:
    return {
        "member": member,
        "card_number": numbers.display(member.member_no),
        "qr": qr_svg(member.member_no, scale=6, title=_("Card number %(number)s") % {"number": member.member_no}),
    }
