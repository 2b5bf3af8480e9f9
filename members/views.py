"""Staff pages of the members app: point-of-sale API keys (/staff/api-keys/)."""

from django import forms
from django.contrib import messages
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from loyalty.core.exceptions import ApplicationError
from loyalty.core.forms import add_application_error
from members.models import Store, StoreAPIKey
from members.services import api_key_create, api_key_revoke


class APIKeyForm(forms.Form):
    store = forms.ModelChoiceField(label=gettext_lazy("Store"), queryset=Store.objects.filter(is_active=True))
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=50,
        help_text=gettext_lazy("What will use it, e.g. “Till 2” or “Web shop”."),
    )


class APIKeysView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "members.add_storeapikey")

    def get(self, request):
        return self.page(APIKeyForm())

    def post(self, request):
        form = APIKeyForm(request.POST)
        if form.is_valid():
            try:
                api_key, key = api_key_create(
                    store=form.cleaned_data["store"], name=form.cleaned_data["name"], created_by=request.user
                )
            except ApplicationError as error:
                add_application_error(form, error)
            else:
                return self.page(APIKeyForm(), created=api_key, key=key)
        return self.page(form, status=400)

    def page(self, form, *, created=None, key="", status=200):
        keys = StoreAPIKey.objects.select_related("store", "created_by").order_by("revoked", "store__code", "-created")
        context = {"form": form, "keys": keys[:500], "created": created, "key": key}
        response = render(self.request, "staff/members/api_keys.html", context, status=status)
        response["Cache-Control"] = "no-store"  # the page may carry a key shown once
        return response


class APIKeyRevokeView(PermissionRequiredMixin, View):
    permission_required = ("members.view_staff_pages", "members.change_storeapikey")

    def post(self, request, pk):
        api_key = api_key_revoke(api_key=get_object_or_404(StoreAPIKey, pk=pk))
        messages.success(
            request, _("Key %(prefix)s of %(store)s is revoked.") % {"prefix": api_key.prefix, "store": api_key.store}
        )
        return redirect("api_keys:list")
