from urllib.parse import urlencode

from allauth.mfa.models import Authenticator
from allauth.mfa.utils import is_mfa_enabled
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from loyalty.core.models import JobRun


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


@admin.register(JobRun)
class JobRunAdmin(ReadOnlyAdmin):
    """Runs are started and retried on the staff jobs page."""

    list_display = ("job", "period", "status", "trigger", "chunks_total", "started_at", "finished_at")
    list_filter = ("status", "job", "trigger")
    search_fields = ("job", "period")
    date_hierarchy = "started_at"
