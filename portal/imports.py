"""Staff pages for legacy member files (/staff/programs/<slug>/imports/): upload, map the columns with a
preview of the first rows, check (a Celery task with a progress bar), see every error or import, then
tell the members who came over. The work is loyalty.legacy's; telling members is here because the
activation link is the portal's."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from loyalty.core.exceptions import ApplicationError
from loyalty.legacy import CANONICAL_COLUMNS
from loyalty.legacy.runs import legacy_import_map, legacy_import_preview, legacy_import_start, legacy_import_upload
from loyalty.models import LegacyImport, Program
from portal.activation import members_to_tell
from portal.tasks import tell_imported_members

DATE_FORMATS = [
    ("", gettext_lazy("Day first: 31/12/2024 or 31-12-2024")),
    ("%m/%d/%Y", gettext_lazy("Month first: 12/31/2024")),
    ("%Y/%m/%d", gettext_lazy("Year first: 2024/12/31")),
    ("%d.%m.%Y", gettext_lazy("With dots: 31.12.2024")),
]


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("Legacy member file (CSV)"))


class ImportStaffMixin(PermissionRequiredMixin):
    permission_required = ("members.view_staff_pages", "loyalty.import_members")

    def dispatch(self, request, *args, **kwargs):
        self.program = get_object_or_404(Program, slug=kwargs["slug"])
        return super().dispatch(request, *args, **kwargs)

    def get_item(self, pk) -> LegacyImport:
        return get_object_or_404(LegacyImport, pk=pk, program=self.program)


class ImportListView(ImportStaffMixin, View):
    def get(self, request, slug, form=None):
        return render(
            request,
            "staff/imports/list.html",
            {
                "program": self.program,
                "form": form or UploadForm(),
                "imports": self.program.legacy_imports.select_related("created_by")[:30],
                "to_tell": members_to_tell(self.program).count(),
                "columns": CANONICAL_COLUMNS,
            },
        )

    def post(self, request, slug):
        form = UploadForm(request.POST, request.FILES)
        if form.is_valid():
            try:
                item = legacy_import_upload(
                    program=self.program, upload=form.cleaned_data["file"], created_by=request.user
                )
            except ApplicationError as error:
                form.add_error("file", error.message)
            else:
                return redirect("staff:import", slug=slug, pk=item.pk)
        return self.get(request, slug, form=form)


class ImportDetailView(ImportStaffMixin, View):
    def get(self, request, slug, pk):
        item = self.get_item(pk)
        if request.htmx:
            return render(request, "staff/imports/_status.html", {"program": self.program, "item": item})
        headers, sample = legacy_import_preview(item=item)
        rows = [
            {
                "index": index,
                "header": header,
                "samples": [cells[index] for cells in sample if index < len(cells) and cells[index].strip()],
                "column": item.mapping.get(header, ""),
            }
            for index, header in enumerate(headers)
        ]
        return render(
            request,
            "staff/imports/detail.html",
            {
                "program": self.program,
                "item": item,
                "rows": rows,
                "columns": CANONICAL_COLUMNS,
                "date_formats": DATE_FORMATS,
            },
        )

    def post(self, request, slug, pk):
        """Save the mapping and start a check."""
        item = self.get_item(pk)
        mapping = {header: request.POST.get(f"column-{index}", "") for index, header in enumerate(item.headers)}
        try:
            legacy_import_map(item=item, mapping=mapping, date_format=request.POST.get("date_format", ""))
            legacy_import_start(item=item, dry_run=True)
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("staff:import", slug=slug, pk=pk)


class ImportStartView(ImportStaffMixin, View):
    def post(self, request, slug, pk):
        try:
            legacy_import_start(item=self.get_item(pk), dry_run=False)
        except ApplicationError as error:
            messages.error(request, error.message)
        return redirect("staff:import", slug=slug, pk=pk)


class ImportErrorsView(ImportStaffMixin, View):
    def get(self, request, slug, pk):
        item = self.get_item(pk)
        if not item.error_report:
            raise Http404
        name = f"errors-{item.original_name.rsplit('.', 1)[0]}.csv"
        return FileResponse(item.error_report.open("rb"), as_attachment=True, filename=name, content_type="text/csv")


class TellImportedMembersView(ImportStaffMixin, View):
    def post(self, request, slug):
        count = members_to_tell(self.program).count()
        if count:
            tell_imported_members.delay_on_commit(self.program.pk)
            messages.success(
                request,
                _("%(count)s members who came over are being told by email, in their language.") % {"count": count},
            )
        else:
            messages.info(request, _("Every imported member with an email and consent has been told already."))
        return redirect("staff:imports", slug=slug)
