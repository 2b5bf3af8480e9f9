"""Admin for the reward catalogue. Rewards are editable (with an audit trail); redemptions and vouchers
are read-only records that change only through rewards.services (the actions below call them)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from simple_history.admin import SimpleHistoryAdmin

from loyalty.admin import ReadOnlyAdmin
from loyalty.core.admin import ServiceImportExportMixin
from loyalty.core.exceptions import ApplicationError
from rewards import services
from rewards.models import Redemption, Reward, Voucher
from rewards.resources import RewardResource


class RewardAdminForm(forms.ModelForm):
    def _post_clean(self):
        super()._post_clean()
        try:
            services.reward_check(self.instance)
        except ValidationError as error:
            self._update_errors(error)


@admin.register(Reward)
class RewardAdmin(ServiceImportExportMixin, SimpleHistoryAdmin):
    # The mixin first: its URLs and change list wrap the history admin's (which keeps its own pages).
    form = RewardAdminForm
    resource_classes = [RewardResource]
    list_display = [
        "name",
        "program",
        "kind",
        "points_cost",
        "stock",
        "min_tier",
        "fulfilment",
        "featured",
        "is_active",
    ]
    list_filter = ["program", "kind", "fulfilment", "is_active", "featured"]
    list_editable = ["featured", "is_active"]
    search_fields = ["name", "description"]
    readonly_fields = ["created_at", "updated_at"]

    def save_model(self, request, obj, form, change):
        # Written by the service the staff editor uses (the form above already showed its refusals).
        services.reward_save(
            program=obj.program, reward=obj, **{name: getattr(obj, name) for name in services.REWARD_FIELDS}
        )


@admin.register(Redemption)
class RedemptionAdmin(ReadOnlyAdmin):
    list_display = ["reward", "account", "points", "status", "channel", "store", "created_at"]
    list_filter = ["status", "channel", "program", "reward__kind"]
    search_fields = ["account__member__member_no", "account__member__last_name", "reward__name", "idempotency_key"]
    list_select_related = ["reward", "account__member", "account__program", "store"]
    date_hierarchy = "created_at"
    actions = ["fulfil"]

    @admin.action(description=_("Mark as fulfilled"), permissions=["fulfil"])
    def fulfil(self, request, queryset):
        done = 0
        for redemption in queryset:
            try:
                services.redemption_fulfil(redemption=redemption, fulfilled_by=request.user)
                done += 1
            except ApplicationError as error:
                self.message_user(request, f"{redemption}: {error.message}", messages.ERROR)
        self.message_user(
            request,
            ngettext("%(count)s redemption marked as fulfilled.", "%(count)s redemptions marked as fulfilled.", done)
            % {"count": done},
            messages.SUCCESS,
        )

    def has_fulfil_permission(self, request):
        return request.user.has_perm("rewards.fulfil_redemption")


@admin.register(Voucher)
class VoucherAdmin(ReadOnlyAdmin):
    list_display = ["code", "description", "account", "status", "valid_until", "redeemed_at", "redeemed_store"]
    list_filter = ["status", "program", "redeemed_store"]
    search_fields = ["code", "account__member__member_no", "account__member__last_name"]
    list_select_related = ["account__member", "redeemed_store"]
    date_hierarchy = "created_at"
