"""Staff pages of campaigns (/staff/programs/<slug>/campaigns/): the list, the editor, a campaign's
launch checklist and controls, and its performance against the control group (with a CSV export)."""

import csv

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.generic import TemplateView

from campaigns import selectors, services
from campaigns.forms import MECHANIC_FIELDS, CampaignForm, campaign_initial
from campaigns.models import Campaign
from loyalty.core import charts
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.core.spreadsheets import spreadsheet_safe
from loyalty.views import ProgramStaffMixin

VIEW = ("members.view_staff_pages", "campaigns.view_campaign")


class CampaignMixin(ProgramStaffMixin):
    def campaign(self) -> Campaign:
        return get_object_or_404(
            Campaign.objects.select_related("program", "segment", "budget"), pk=self.kwargs["pk"], program=self.program
        )


class CampaignListView(CampaignMixin, TemplateView):
    permission_required = VIEW
    template_name = "staff/campaigns/campaign_list.html"

    def get_context_data(self, **kwargs):
        return super().get_context_data(campaigns=selectors.campaign_list(program=self.program), **kwargs)


class CampaignEditView(CampaignMixin, TemplateView):
    """Create a campaign (no pk) or change one that has not started."""

    template_name = "staff/campaigns/campaign_form.html"

    def get_permission_required(self):
        return (
            "members.view_staff_pages",
            "campaigns.change_campaign" if "pk" in self.kwargs else "campaigns.add_campaign",
        )

    def _page(self, form, campaign, status=200):
        rows = [(form[name], " ".join(MECHANIC_FIELDS.get(name, []))) for name in form.fields]
        return self.render_to_response(self.get_context_data(form=form, rows=rows, campaign=campaign), status=status)

    def get(self, request, slug, pk=None):
        campaign = self.campaign() if pk else None
        initial = campaign_initial(campaign) if campaign else {"holdout_percent": 10, "voucher_valid_days": 30}
        return self._page(CampaignForm(program=self.program, initial=initial), campaign)

    def post(self, request, slug, pk=None):
        campaign = self.campaign() if pk else None
        form = CampaignForm(request.POST, program=self.program)
        if form.is_valid():
            try:
                campaign = services.campaign_save(
                    program=self.program, campaign=campaign, created_by=request.user, **form.cleaned_data
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("“%(campaign)s” is saved.") % {"campaign": campaign})
                return redirect("campaigns:campaign", slug=self.program.slug, pk=campaign.pk)
        return self._page(form, campaign, status=400)


class CampaignDetailView(CampaignMixin, TemplateView):
    permission_required = VIEW
    template_name = "staff/campaigns/campaign_detail.html"

    def get_context_data(self, **kwargs):
        campaign = self.campaign()
        checklist = services.launch_checklist(campaign=campaign) if campaign.status in services.EDITABLE else []
        return super().get_context_data(
            campaign=campaign,
            actions=services.campaign_actions(campaign),
            checklist=checklist,
            ready=all(check.ok for check in checklist),
            rules=campaign.rules.order_by("activity_type"),
            campaign_messages=campaign.messages.order_by("created_at"),
            groups=selectors.campaign_groups(campaign=campaign),
            budget_points=services.budget_points(campaign),
            **kwargs,
        )


class CampaignActionView(CampaignMixin, View):
    """POST launch, pause, resume, end or cancel."""

    permission_required = ("members.view_staff_pages", "campaigns.launch_campaign")
    action = ""
    ACTIONS = {
        "launch": (services.campaign_launch, "launched_by"),
        "pause": (services.campaign_pause, "paused_by"),
        "resume": (services.campaign_resume, "resumed_by"),
        "end": (services.campaign_end, "ended_by"),
        "cancel": (services.campaign_cancel, "cancelled_by"),
    }
    DONE = {
        "launch": gettext_lazy("“%(campaign)s” is %(status)s."),
        "pause": gettext_lazy("“%(campaign)s” is paused: members earn no bonus until you resume it."),
        "resume": gettext_lazy("“%(campaign)s” is running again."),
        "end": gettext_lazy("“%(campaign)s” has ended."),
        "cancel": gettext_lazy("“%(campaign)s” is cancelled."),
    }

    def post(self, request, slug, pk):
        service, by = self.ACTIONS[self.action]
        try:
            campaign = service(campaign=self.campaign(), **{by: request.user})
        except ApplicationError as error:
            messages.error(request, error.message)
        else:
            messages.success(
                request,
                str(self.DONE[self.action]) % {"campaign": campaign, "status": campaign.get_status_display().lower()},
            )
        return redirect("campaigns:campaign", slug=slug, pk=pk)


def _chart(performance: selectors.Performance, currency: str):
    """Daily spend per member, treatment against control."""
    return charts.line_chart(
        [date_format(day, "SHORT_DATE_FORMAT") for day, _t, _c in performance.daily],
        [
            (_("Treated members"), [round(t, 2) for _d, t, _c in performance.daily]),
            (_("Control group"), [round(c, 2) for _d, _t, c in performance.daily]),
        ],
        y_title=_("Spend per member (%(currency)s)") % {"currency": currency},
        colors=("#1f6feb", "#9aa4b2"),
    )


class CampaignPerformanceView(CampaignMixin, TemplateView):
    permission_required = ("members.view_staff_pages", "campaigns.view_campaign", "members.view_analytics")
    template_name = "staff/campaigns/performance.html"

    def get_context_data(self, **kwargs):
        campaign = self.campaign()
        performance = selectors.campaign_performance(campaign=campaign)
        return super().get_context_data(
            campaign=campaign,
            p=performance,
            chart=_chart(performance, campaign.program.currency) if performance.daily else "",
            **kwargs,
        )


class CampaignPerformanceCSVView(CampaignMixin, View):
    permission_required = ("members.view_staff_pages", "campaigns.view_campaign", "members.export_reports")

    def get(self, request, slug, pk):
        campaign = self.campaign()
        p = selectors.campaign_performance(campaign=campaign)
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="campaign-{campaign.pk}-performance.csv"'
        writer = csv.writer(response)
        low, high = p.incremental_interval
        rows = [
            (_("Campaign"), campaign.name),
            (_("Window"), f"{campaign.starts_on} / {campaign.ends_on}"),
            (_("Treated members"), p.treatment.members),
            (_("Control members"), p.control.members),
            (_("Participants (treated)"), p.treatment.participants),
            (_("Participants (control)"), p.control.participants),
            (_("Spend per member (treated)"), f"{p.treatment.spend_per_member:.2f}"),
            (_("Spend per member (control)"), f"{p.control.spend_per_member:.2f}"),
            (_("Visits per member (treated)"), f"{p.treatment.visits_per_member:.3f}"),
            (_("Visits per member (control)"), f"{p.control.visits_per_member:.3f}"),
            (_("Incremental spend"), f"{p.incremental_spend:.2f}"),
            (_("Incremental spend, low end of the 95 percent interval"), f"{low:.2f}" if p.measurable else ""),
            (_("Incremental spend, high end of the 95 percent interval"), f"{high:.2f}" if p.measurable else ""),
            (_("Points awarded"), p.points_awarded),
            (_("Vouchers issued"), p.vouchers_issued),
            (_("Vouchers redeemed"), p.vouchers_redeemed),
            (_("Cost"), f"{p.cost:.2f}"),
            (_("Return on cost"), f"{p.return_on_cost:.2f}" if p.return_on_cost is not None else ""),
        ]
        writer.writerow([_("Figure"), _("Value")])
        for label, value in rows:
            writer.writerow([spreadsheet_safe(str(label)), spreadsheet_safe(value)])
        writer.writerow([])
        writer.writerow([_("Day"), _("Spend per treated member"), _("Spend per control member")])
        for day, treated, control in p.daily:
            writer.writerow([day.isoformat(), f"{treated:.2f}", f"{control:.2f}"])
        return response
