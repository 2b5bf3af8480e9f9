from allauth.account.decorators import secure_admin_login
from django.conf import settings
from django.contrib import admin
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _


class LoyaltyAdminSite(admin.AdminSite):
    site_header = format_lazy(_("{product} administration"), product=settings.PRODUCT_NAME)
    site_title = settings.PRODUCT_NAME
    index_title = _("Programs, members and rewards")

    def login(self, request, extra_context=None):
        # One sign-in for everyone: allauth's pages, with their rate limits and the second factor.
        # A signed-in user without admin access gets 403 rather than another sign-in form.
        return secure_admin_login(super().login)(request, extra_context)
