from urllib.parse import urlencode

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _
from import_export.admin import ImportExportMixin
from import_export.formats.base_formats import CSV

from loyalty.core.models import JobRun
from loyalty.core.resources import import_preview


class LoyaltyAdminSite(admin.AdminSite):
    """The admin, signed into only through allauth's pages (rate limits, second factor).

    Django's own admin sign-in and password-change forms are never served: a POST to them could
    otherwise switch a signed-in session to another account without its second factor.
    """

    site_header = format_lazy(_("{product} administration"), product=settings.PRODUCT_NAME)
    site_title = settings.PRODUCT_NAME
    index_title = _("Programs, members and rewards")

    def has_permission(self, request) -> bool:
        # Also enforced for the whole /admin/ area by members.middleware; checked here as a second line.
        return super().has_permission(request) and is_mfa_enabled(request.user, [Authenticator.Type.TOTP])

    def login(self, request, extra_context=None):
        if request.user.is_authenticated:
            if self.has_permission(request):
                return HttpResponseRedirect(reverse("admin:index", current_app=self.name))
            raise PermissionDenied
        next_url = request.GET.get("next") or reverse("admin:index", current_app=self.name)
        return HttpResponseRedirect(f"{reverse('account_login')}?{urlencode({'next': next_url})}")

    def password_change(self, request, extra_context=None):
        return HttpResponseRedirect(reverse("account_change_password"))


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written by the code only (the books, job runs): viewable, never edited by hand."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceImportExportMixin(ImportExportMixin):
    """Admin import/export through ServiceResources (loyalty.core.resources), as CSV.

    The preview lists every row of the file, new, updated or invalid, each error beside its row and
    column (templates/admin/import_export/import.html). The confirm step imports the file again: should
    a row have become invalid since the preview, the resource rolls the whole file back and the page
    says so with the rows to fix, instead of the library's "Import finished" and its log entries.
    """

    import_formats = [CSV]
    export_formats = [CSV]

    def import_action(self, request, **kwargs):
        response = super().import_action(request, **kwargs)
        result = (getattr(response, "context_data", None) or {}).get("result")
        if result is not None:
            response.context_data["preview"] = import_preview(result)
        return response

    def process_result(self, result, request):
        if result.has_errors() or result.has_validation_errors():
            return self._import_refused(request, result)
        return super().process_result(result, request)

    def _import_refused(self, request, result):
        form = self.get_import_form_class(request)(self.get_import_formats(), self.get_import_resource_classes(request))
        resources = [
            resource_class(**self.get_import_resource_kwargs(request))
            for resource_class in self.get_import_resource_classes(request)
        ]
        context = {
            **self.get_import_context_data(),
            **self.admin_site.each_context(request),
            "title": _("Import"),
            "form": form,
            "opts": self.model._meta,
            "media": self.media + form.media,
            "fields_list": [
                (resource.get_display_name(), [f.column_name for f in resource.get_user_visible_fields()])
                for resource in resources
            ],
            "import_error_display": self.import_error_display,
            "result": result,
            "preview": import_preview(result),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, [self.import_template_name], context)


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """Runs are started and retried on the staff jobs page."""

    list_display = ("job", "period", "status", "trigger", "chunks_total", "started_at", "finished_at")
    list_filter = ("status", "job", "trigger")
    search_fields = ("job", "period")
    date_hierarchy = "started_at"
