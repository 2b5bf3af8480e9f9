"""Staff pages of program transitions (/staff/programs/<slug>/transitions/): open one, set its migration
plan with a dry run of every member's outcome, announce it and remind, print the letters, migrate, and
the report (with a CSV export for finance). The work is in campaigns.transitions and campaigns.letters."""

import csv
from decimal import Decimal

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from campaigns import letters, transitions
from campaigns.forms import BurnRewardsForm, MigrationPlanForm, TransitionForm
from campaigns.models import MigrationPlan, Transition, TransitionNotice
from loyalty.core import charts
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.core.spreadsheets import spreadsheet_safe
from loyalty.models import Account
from loyalty.views import ProgramStaffMixin

VIEW = ("members.view_staff_pages", "campaigns.view_transition")
EXECUTE = ("members.view_staff_pages", "campaigns.execute_transition")
DRY_RUN_ROWS = 50


class TransitionMixin(ProgramStaffMixin):
    def transition(self) -> Transition:
        transition = get_object_or_404(transitions.program_transitions(program=self.program), pk=self.kwargs["pk"])
        if transition.status == Transition.Status.MIGRATING:
            transitions.transition_complete_if_done(transition=transition)
            transition.refresh_from_db()
        return transition


class TransitionListView(TransitionMixin, TemplateView):
    template_name = "staff/campaigns/transitions/list.html"

    def get_permission_required(self):
        if self.request.method == "POST":
            return ("members.view_staff_pages", "campaigns.add_transition")
        return VIEW

    def get(self, request, slug):
        return self.page(TransitionForm(program=self.program))

    def post(self, request, slug):
        form = TransitionForm(request.POST, program=self.program)
        if form.is_valid():
            try:
                transition = transitions.transition_create(
                    program=self.program, created_by=request.user, **form.cleaned_data
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("Now set the migration plan: the notices tell members what it does."))
                return redirect("campaigns:transition_plan", slug=self.program.slug, pk=transition.pk)
        return self.page(form, status=400)

    def page(self, form, status=200):
        context = self.get_context_data(transitions=transitions.program_transitions(program=self.program), form=form)
        return self.render_to_response(context, status=status)


class TransitionDetailView(TransitionMixin, TemplateView):
    permission_required = VIEW
    template_name = "staff/campaigns/transitions/detail.html"

    def get_context_data(self, **kwargs):
        transition = self.transition()
        log = transitions.transition_notice_log(transition=transition)
        page = Paginator(log, 50).get_page(self.request.GET.get("page"))
        counts = {(row["channel"], row["status"]): row["n"] for row in transitions.notice_counts(transition=transition)}
        return super().get_context_data(
            transition=transition,
            plan=getattr(transition, "plan", None),
            notices=page,
            counts=counts,
            letters_queued=counts.get((TransitionNotice.Channel.LETTER, TransitionNotice.Status.QUEUED), 0),
            rewards_form=BurnRewardsForm(
                program=self.program, initial={"burn_rewards": list(transition.burn_rewards.all())}
            ),
            **kwargs,
        )


class MigrationPlanView(TransitionMixin, TemplateView):
    """The plan's settings and, once saved, the dry run: every member's outcome and the totals."""

    template_name = "staff/campaigns/transitions/plan.html"

    def get_permission_required(self):
        if self.request.method == "POST":
            return ("members.view_staff_pages", "campaigns.change_migrationplan")
        return VIEW

    def initial(self, plan: MigrationPlan | None) -> dict:
        if plan is None:
            return {
                "conversion_rate": 1,
                "rounding": "down",
                "unaccepted": "voucher",
                "uplift_percent": 10,
                "voucher_valid_days": 365,
            }
        initial = {
            "target_program": plan.target_program,
            "conversion_rate": plan.conversion_rate,
            "rounding": plan.rounding,
            "unaccepted": plan.unaccepted,
            "uplift_percent": plan.uplift_percent,
            "voucher_valid_days": plan.voucher_valid_days,
        }
        initial.update({f"tier_{old}": str(new) for old, new in plan.tier_mapping.items()})
        return initial

    def get(self, request, slug, pk):
        transition = self.transition()
        plan = getattr(transition, "plan", None)
        form = MigrationPlanForm(
            program=self.program, target=plan.target_program if plan else None, initial=self.initial(plan)
        )
        return self.page(transition, form)

    def post(self, request, slug, pk):
        transition = self.transition()
        form = MigrationPlanForm(request.POST, program=self.program)
        if form.is_valid():
            data = form.cleaned_data
            try:
                transitions.migration_plan_save(
                    transition=transition,
                    target_program=data["target_program"],
                    conversion_rate=data["conversion_rate"],
                    rounding=data["rounding"],
                    tier_mapping=form.tier_mapping(),
                    unaccepted=data["unaccepted"],
                    uplift_percent=data["uplift_percent"],
                    voucher_valid_days=data["voucher_valid_days"],
                    updated_by=request.user,
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("The plan is saved. Check the dry run below."))
                return redirect("campaigns:transition_plan", slug=self.program.slug, pk=transition.pk)
        return self.page(transition, form, status=400)

    def page(self, transition, form, status=200):
        transition = Transition.objects.select_related("program", "terms", "plan__target_program").get(pk=transition.pk)
        dry_run = None
        if hasattr(transition, "plan"):
            dry_run = transitions.transition_dry_run(transition=transition, limit=DRY_RUN_ROWS)
        context = self.get_context_data(transition=transition, form=form, dry_run=dry_run, rows_shown=DRY_RUN_ROWS)
        return self.render_to_response(context, status=status)


class TransitionActionView(TransitionMixin, View):
    """Announce, remind, or migrate: one POST each, for program managers."""

    permission_required = EXECUTE
    ACTIONS = ("announce", "remind", "migrate")
    action = ""

    def post(self, request, slug, pk):
        transition = self.transition()
        try:
            if self.action == "announce":
                transitions.transition_announce(transition=transition, announced_by=request.user)
                messages.success(request, _("Announced: every member is being told by email or letter."))
            elif self.action == "remind":
                count = transitions.transition_remind(transition=transition)
                messages.success(
                    request, _("A reminder goes to %(count)s members who have not accepted.") % {"count": count}
                )
            else:
                transitions.transition_migration_start(transition=transition, started_by=request.user)
                messages.success(request, _("The migration has started; its progress is on the jobs page."))
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("campaigns:transition", slug=self.program.slug, pk=transition.pk)


class TransitionRewardsView(TransitionMixin, View):
    """Choose the rewards of the burn window."""

    permission_required = ("members.view_staff_pages", "campaigns.change_transition")

    def post(self, request, slug, pk):
        transition = self.transition()
        form = BurnRewardsForm(request.POST, program=self.program)
        if form.is_valid():
            try:
                transitions.transition_burn_rewards_set(
                    transition=transition, rewards=list(form.cleaned_data["burn_rewards"])
                )
            except ApplicationError as error:
                messages.error(request, error.message)
            else:
                messages.success(request, _("Members now see these rewards with the deadline."))
        else:
            messages.error(request, _("Choose rewards of this program."))
        return redirect("campaigns:transition", slug=self.program.slug, pk=transition.pk)


class TransitionLettersView(TransitionMixin, View):
    """The queued letters in one PDF for the mail house; they are logged as sent when downloaded."""

    permission_required = EXECUTE

    def post(self, request, slug, pk):
        transition = self.transition()
        notices = list(transitions.queued_letters(transition=transition))
        if not notices:
            messages.error(request, _("No letter is waiting to be printed."))
            return redirect("campaigns:transition", slug=self.program.slug, pk=transition.pk)
        pdf = letters.letters_pdf(transition=transition, accounts=[notice.account for notice in notices])
        transitions.letters_mark_printed(notices=notices)
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'attachment; filename="transition-{transition.pk}-letters.pdf"'
        return response


class MemberLetterView(TransitionMixin, View):
    """One member's letter (to print again, or to hand over at a store)."""

    permission_required = VIEW

    def get(self, request, slug, pk, account_pk):
        transition = self.transition()
        account = get_object_or_404(
            Account.objects.select_related("member", "tier", "program"), pk=account_pk, program=self.program
        )
        pdf = letters.letters_pdf(transition=transition, accounts=[account])
        response = HttpResponse(pdf, content_type="application/pdf")
        response["Content-Disposition"] = f'inline; filename="letter-{account.member.member_no}.pdf"'
        return response


def _acceptance_chart(timeline: list[dict]):
    """The acceptance rate day by day."""
    return charts.line_chart(
        [date_format(day["day"], "SHORT_DATE_FORMAT") for day in timeline],
        [(_("Accepted"), [round(day["rate"], 1) for day in timeline])],
        y_title=_("Members who accepted (%)"),
        y_range=(0, 100),
        height=260,
    )


class TransitionReportView(TransitionMixin, TemplateView):
    permission_required = VIEW
    template_name = "staff/campaigns/transitions/report.html"

    def get_context_data(self, **kwargs):
        transition = self.transition()
        report = transitions.transition_report(transition=transition)
        chart = _acceptance_chart(report["timeline"]) if len(report["timeline"]) > 1 else ""
        return super().get_context_data(transition=transition, report=report, chart=chart, **kwargs)


def _cents(value) -> Decimal:
    # a number, not text: a spreadsheet reads it as one, and a minus sign is not taken for a formula
    return Decimal(value).quantize(Decimal("0.01"))


class TransitionReportCSVView(TransitionMixin, View):
    permission_required = (*VIEW, "members.export_reports")

    def get(self, request, slug, pk):
        transition = self.transition()
        report = transitions.transition_report(transition=transition)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="transition-{transition.pk}-report.csv"'
        writer = csv.writer(response)
        rows = [
            (_("Transition"), transition.name),
            (_("Program"), transition.program.name),
            (_("Members"), report["members"]),
            (_("Accepted"), report["accepted"]),
            (_("Acceptance rate (%)"), round(report["acceptance_rate"], 1)),
            (_("Told by email"), report["told_email"]),
            (_("Told by letter"), report["told_letter"]),
            (_("Reminded"), report["reminded"]),
            (_("Migrated"), report["migrated"]),
            (_("Converted into a voucher"), report["converted"]),
            (_("Closed"), report["closed"]),
            (_("Members lost (never accepted)"), report["lost"]),
            (_("Points taken out"), report["points_out"]),
            (_("Points given in the new program"), report["points_in"]),
            (_("Points converted into vouchers"), report["points_converted"]),
            (_("Points lapsed"), report["points_closed"]),
            (_("Voucher value"), _cents(report["voucher_value"])),
            (_("Liability before"), _cents(report["liability_before"])),
            (_("Liability after"), _cents(report["liability_after"])),
            (_("Provision released"), _cents(report["liability_released"])),
            (_("Currency"), report["currency"]),
        ]
        writer.writerow([_("Figure"), _("Value")])
        for label, value in rows:
            writer.writerow([spreadsheet_safe(str(label)), spreadsheet_safe(value)])
        writer.writerow([])
        writer.writerow(
            [_("Day"), _("Accepted online"), _("Accepted at the desk"), _("Accepted so far"), _("Rate (%)")]
        )
        for day in report["timeline"]:
            writer.writerow(
                [day["day"].isoformat(), day["online"], day["desk"], day["accepted"], round(day["rate"], 1)]
            )
        return response
