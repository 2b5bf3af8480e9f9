"""Program staff pages for the points engine (/staff/programs/). They call services and selectors only."""

from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from loyalty import selectors, services
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.forms import AdjustForm, PreviewForm, RejectClaimForm, TierFormSet
from loyalty.models import Activity, Program


class ProgramStaffMixin(PermissionRequiredMixin):
    """Staff pages about one program; every one needs the staff area and a view of programs."""

    permission_required: tuple[str, ...] = ("members.view_staff_pages", "loyalty.view_program")

    def dispatch(self, request, *args, **kwargs):
        if "slug" in kwargs:
            self.program = get_object_or_404(Program, slug=kwargs["slug"])
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["program"] = getattr(self, "program", None)
        return context


class ProgramListView(ProgramStaffMixin, TemplateView):
    template_name = "staff/loyalty/program_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(programs=selectors.program_summaries(), **kwargs)


class ProgramDetailView(ProgramStaffMixin, TemplateView):
    template_name = "staff/loyalty/program_detail.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            tiers=selectors.tier_ladder(program=self.program),
            rules=selectors.active_rules(program=self.program),
            totals=selectors.program_outstanding(program=self.program),
            claims_waiting=selectors.pending_claims(program=self.program).count(),
            preview_form=PreviewForm(program=self.program),
            **kwargs,
        )


class EarnPreviewView(ProgramStaffMixin, View):
    """POST a hypothetical activity, get back what it would earn (an htmx fragment). Writes nothing."""

    def post(self, request, slug):
        form = PreviewForm(request.POST, program=self.program)
        preview, error = None, None
        if form.is_valid():
            data = form.cleaned_data
            account = None
            if data["member_no"]:
                account = selectors.account_by_member_no(program=self.program, member_no=data["member_no"])
                if account is None:
                    error = _("No member %(member_no)s in this program. Check the card number.") % {
                        "member_no": data["member_no"]
                    }
            if error is None:
                amount = data["amount"] or 0
                lines = [{"category": data["category"], "amount": amount}] if data["category"] else []
                preview = selectors.preview_earn(
                    program=self.program,
                    activity_type=data["activity_type"],
                    account=account,
                    tier=data["tier"],
                    region=data["region"],
                    member_type=data["member_type"],
                    store=data["store"],
                    amount=amount,
                    lines=lines,
                    quantity=data["quantity"] or 1,
                    code=data["code"],
                )
        template = "staff/loyalty/_preview_result.html" if request.htmx else "staff/loyalty/preview_page.html"
        return render(request, template, {"program": self.program, "form": form, "preview": preview, "error": error})


class TierLadderView(ProgramStaffMixin, TemplateView):
    permission_required = ("members.view_staff_pages", "loyalty.change_tier")
    template_name = "staff/loyalty/tier_ladder.html"

    def get(self, request, slug):
        initial = [
            {
                "rank": tier.rank,
                "name": tier.name,
                "threshold": tier.threshold,
                "earn_multiplier": tier.earn_multiplier,
                "colour": tier.colour,
                "benefits": "\n".join(benefit.text for benefit in tier.benefits.all()),
            }
            for tier in selectors.tier_ladder(program=self.program)
        ]
        return self.render_to_response(self.get_context_data(formset=TierFormSet(initial=initial)))

    def post(self, request, slug):
        formset = TierFormSet(request.POST)
        ladder_errors = []
        if formset.is_valid():
            specs = [
                services.TierSpec(
                    rank=data["rank"],
                    name=data["name"],
                    threshold=data["threshold"],
                    earn_multiplier=data["earn_multiplier"],
                    colour=data["colour"],
                    benefits=tuple(line.strip() for line in data["benefits"].splitlines()),
                )
                for data in formset.cleaned_data
                if data and not data.get("DELETE")
            ]
            try:
                services.tier_ladder_save(program=self.program, tiers=specs)
            except ApplicationError as error:
                ladder_errors = error.extra.get("errors") or [error.message]
            else:
                messages.success(request, _("The tier ladder of %(program)s is saved.") % {"program": self.program})
                return redirect("programs:detail", slug=self.program.slug)
        return self.render_to_response(self.get_context_data(formset=formset, ladder_errors=ladder_errors), status=400)


class ClaimsView(ProgramStaffMixin, TemplateView):
    permission_required = ("members.view_staff_pages", "loyalty.review_claims")
    template_name = "staff/loyalty/claims.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(
            claims=selectors.pending_claims(program=self.program), reject_form=RejectClaimForm(), **kwargs
        )


class ClaimDecisionView(ProgramStaffMixin, View):
    permission_required = ("members.view_staff_pages", "loyalty.review_claims")

    def post(self, request, slug, pk, decision):
        claim = get_object_or_404(Activity, pk=pk, program=self.program)
        try:
            if decision == "approve":
                result = services.activity_approve(activity=claim, reviewed_by=request.user)
                messages.success(
                    request,
                    _("Claim approved: %(points)s points for %(member)s.")
                    % {"points": result.points, "member": claim.account.member},
                )
            else:
                form = RejectClaimForm(request.POST)
                reason = form.cleaned_data["reason"] if form.is_valid() else ""
                services.activity_reject(activity=claim, reviewed_by=request.user, reason=reason)
                messages.success(request, _("Claim rejected; the member sees your reason."))
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("programs:claims", slug=self.program.slug)


class ClaimEvidenceView(ProgramStaffMixin, View):
    """A claim's evidence file, for those who review claims (evidence is private: no public URL)."""

    permission_required = ("members.view_staff_pages", "loyalty.review_claims")

    def get(self, request, slug, pk):
        claim = get_object_or_404(Activity, pk=pk, program=self.program)
        if not claim.evidence:
            raise Http404
        return FileResponse(claim.evidence.open("rb"), as_attachment=True)


class AdjustView(ProgramStaffMixin, TemplateView):
    permission_required = ("members.view_staff_pages", "loyalty.adjust_points")
    template_name = "staff/loyalty/adjust.html"

    def get(self, request, slug):
        return self.render_to_response(self.get_context_data(form=AdjustForm()))

    def post(self, request, slug):
        form = AdjustForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            account = selectors.account_by_member_no(program=self.program, member_no=data["member_no"])
            if account is None:
                form.add_error("member_no", _("No member with this number in %(program)s.") % {"program": self.program})
            else:
                try:
                    entry = services.adjust(
                        account=account,
                        points=data["points"],
                        reason=data["reason"],
                        qualifying=data["qualifying"],
                        created_by=request.user,
                    )
                except ApplicationError as error:
                    add_application_error(form, error)
                else:
                    account.refresh_from_db()
                    messages.success(
                        request,
                        _("%(points)+d points for %(member)s; new balance %(balance)s.")
                        % {"points": entry.points, "member": account.member, "balance": account.balance},
                    )
                    return redirect("programs:adjust", slug=self.program.slug)
        return self.render_to_response(self.get_context_data(form=form), status=400)
