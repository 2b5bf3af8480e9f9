"""Staff pages of segments (/staff/programs/<slug>/segments/): the list, the editor with a live count
and a sample of matching members (htmx), and deletion. They call campaigns.segments only."""

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.views import View
from django.views.generic import TemplateView

from campaigns import segments
from campaigns.forms import SegmentForm, segment_initial
from campaigns.models import Segment
from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from loyalty.views import ProgramStaffMixin

VIEW = ("members.view_staff_pages", "campaigns.view_segment")
SAMPLE_SIZE = 10


class SegmentMixin(ProgramStaffMixin):
    def segment(self) -> Segment | None:
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(Segment.objects.select_related("program"), pk=self.kwargs["pk"], program=self.program)


class SegmentListView(SegmentMixin, TemplateView):
    permission_required = VIEW
    template_name = "staff/campaigns/segments/list.html"

    def get_context_data(self, **kwargs):
        names = segments.member_type_names()
        rows = [
            (segment, segments.segment_describe(segment, member_types=names))
            for segment in segments.segment_list(program=self.program)
        ]
        return super().get_context_data(rows=rows, **kwargs)


class SegmentEditView(SegmentMixin, TemplateView):
    """Add a segment (no pk) or change one. Staff who may only view segments see it read-only."""

    template_name = "staff/campaigns/segments/form.html"

    def get_permission_required(self):
        if self.request.method == "GET" and "pk" in self.kwargs:
            return VIEW
        action = "change" if "pk" in self.kwargs else "add"
        return ("members.view_staff_pages", f"campaigns.{action}_segment")

    def _page(self, form, segment, status=200):
        can_edit = self.request.user.has_perm("campaigns.change_segment" if segment else "campaigns.add_segment")
        context = self.get_context_data(
            form=form,
            segment=segment,
            can_edit=can_edit,
            description=segments.segment_describe(segment) if segment else [],
        )
        return self.render_to_response(context, status=status)

    def get(self, request, slug, pk=None):
        segment = self.segment()
        initial = segment_initial(segment) if segment else {"period_days": 365}
        return self._page(SegmentForm(program=self.program, initial=initial), segment)

    def post(self, request, slug, pk=None):
        segment = self.segment()
        form = SegmentForm(request.POST, program=self.program)
        if form.is_valid():
            try:
                segment = segments.segment_save(
                    program=self.program, segment=segment, created_by=request.user, **form.criteria()
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                messages.success(request, _("The segment “%(segment)s” is saved.") % {"segment": segment})
                return redirect("campaigns:segments", slug=self.program.slug)
        return self._page(form, segment, status=400)


class SegmentCountView(SegmentMixin, View):
    """The live count and a sample of matching members (an htmx fragment): of the criteria POSTed by the
    editor, or of a saved segment (GET ?segment=<pk>). Writes nothing."""

    permission_required = VIEW

    def get(self, request, slug):
        pk = request.GET.get("segment", "")
        segment = get_object_or_404(Segment, pk=int(pk) if pk.isdigit() else 0, program=self.program)
        return self._result(segment, describe=False)  # the page shows the saved criteria already

    def post(self, request, slug):
        form = SegmentForm(request.POST, program=self.program, draft=True)
        if not form.is_valid():
            errors = [
                f"{form[name].label}: {' '.join(errs)}" for name, errs in form.errors.items() if name in form.fields
            ]
            return self._render(error=_("Check these criteria; the count waits for them."), errors=errors)
        try:
            draft = segments.segment_draft(program=self.program, **form.criteria())
        except ApplicationError as error:
            return self._render(error=error.message)
        return self._result(draft)

    def _result(self, segment: Segment, *, describe: bool = True):
        count = segments.segment_count(program=self.program, segment=segment)
        sample = segments.segment_sample(program=self.program, segment=segment, size=SAMPLE_SIZE) if count else []
        description = segments.segment_describe(segment) if describe else []
        return self._render(count=count, sample=sample, description=description)

    def _render(self, status=200, **context):
        template = "staff/campaigns/segments/_count.html"
        return render(self.request, template, {"program": self.program, **context}, status=status)


class SegmentDeleteView(SegmentMixin, TemplateView):
    """Confirm (GET), then delete (POST) a segment no campaign used."""

    permission_required = ("members.view_staff_pages", "campaigns.delete_segment")
    template_name = "staff/campaigns/segments/confirm_delete.html"

    def get(self, request, slug, pk):
        segment = self.segment()
        return self.render_to_response(self.get_context_data(segment=segment))

    def post(self, request, slug, pk):
        segment = self.segment()
        try:
            segments.segment_delete(segment=segment)
        except ApplicationError as error:
            messages.error(request, error.message)
            return redirect("campaigns:segment_edit", slug=self.program.slug, pk=segment.pk)
        messages.success(request, _("The segment “%(segment)s” is deleted.") % {"segment": segment})
        return redirect("campaigns:segments", slug=self.program.slug)
