"""Admin for campaigns. Segments, campaigns and messages are edited here or on the staff pages (both
through campaigns.services where a rule applies); launching, the groups and the send log change only
through services, so they are read-only here."""

from django import forms
from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from campaigns import services
from campaigns.forms import CAMPAIGN_FIELDS
from campaigns.models import (
    Campaign,
    Message,
    MessageSend,
    MessageText,
    MigrationOutcome,
    MigrationPlan,
    Segment,
    Transition,
    TransitionNotice,
)
from loyalty.core.admin import ReadOnlyAdmin
from loyalty.core.exceptions import ApplicationError


@admin.register(Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ["name", "program", "updated_at"]
    list_filter = ["program"]
    search_fields = ["name", "description"]
    filter_horizontal = ["tiers", "stores"]


class CampaignAdminForm(forms.ModelForm):
    class Meta:
        model = Campaign
        fields = ["program", *CAMPAIGN_FIELDS]

    def _post_clean(self):
        super()._post_clean()
        # The same rules as the staff pages: what the mechanic needs, the segment of the same program.
        for field, message in services.campaign_errors(self.instance).items():
            self.add_error(field if field in self.fields else None, message)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ["name", "program", "mechanic", "status", "starts_on", "ends_on", "holdout_percent"]
    list_filter = ["program", "status", "mechanic"]
    search_fields = ["name", "goal"]
    date_hierarchy = "starts_on"
    readonly_fields = [
        "status",
        "budget",
        "rules",
        "launched_at",
        "launched_by",
        "ended_at",
        "vouchers_issued_at",
        "created_by",
    ]
    actions = ["launch", "pause", "end"]

    def has_change_permission(self, request, obj=None):
        # A campaign that has started is changed only by pausing or ending it.
        if obj is not None and obj.status not in services.EDITABLE:
            return False
        return super().has_change_permission(request, obj)

    form = CampaignAdminForm

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def _act(self, request, queryset, service, by):
        if not request.user.has_perm("campaigns.launch_campaign"):
            self.message_user(request, _("You may not launch, pause or end campaigns."), messages.ERROR)
            return
        for campaign in queryset:
            try:
                service(campaign=campaign, **{by: request.user})
            except ApplicationError as error:
                self.message_user(request, f"{campaign}: {error.message}", messages.ERROR)
            else:
                self.message_user(request, f"{campaign}: {campaign.get_status_display()}", messages.SUCCESS)

    @admin.action(description=_("Launch (after the checklist)"))
    def launch(self, request, queryset):
        self._act(request, queryset, services.campaign_launch, "launched_by")

    @admin.action(description=_("Pause"))
    def pause(self, request, queryset):
        self._act(request, queryset, services.campaign_pause, "paused_by")

    @admin.action(description=_("End now"))
    def end(self, request, queryset):
        self._act(request, queryset, services.campaign_end, "ended_by")


# CampaignMember has a composite primary key, which the admin cannot show: the groups are counted
# on the campaign's staff page.


class MessageTextInline(admin.StackedInline):
    model = MessageText
    extra = 0


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["name", "program", "campaign", "kind", "status", "previewed_at", "sent_at"]
    list_filter = ["program", "kind", "status"]
    readonly_fields = ["status", "previewed_at", "send_started_at", "sent_at", "created_by"]
    inlines = [MessageTextInline]


@admin.register(MessageSend)
class MessageSendAdmin(ReadOnlyAdmin):
    list_display = ["message", "member", "status", "email", "language", "sent_at", "note"]
    list_filter = ["status", "message"]
    list_select_related = ["message", "member"]
    search_fields = ["=member__member_no", "email"]
    show_full_result_count = False


# Program transitions change through their staff pages (campaigns.transitions checks the dates, the
# plan and who may migrate); the admin shows them, their notices and every member's outcome.


@admin.register(Transition)
class TransitionAdmin(ReadOnlyAdmin):
    list_display = ["name", "program", "status", "announce_on", "accept_by", "cutover_on"]
    list_filter = ["program", "status"]
    search_fields = ["name"]


@admin.register(TransitionNotice)
class TransitionNoticeAdmin(ReadOnlyAdmin):
    list_display = ["transition", "account", "reminder", "channel", "status", "sent_at"]
    list_filter = ["transition", "channel", "status"]
    list_select_related = ["transition", "account__member"]
    show_full_result_count = False


@admin.register(MigrationPlan)
class MigrationPlanAdmin(ReadOnlyAdmin):
    list_display = ["transition", "target_program", "conversion_rate", "rounding"]


@admin.register(MigrationOutcome)
class MigrationOutcomeAdmin(ReadOnlyAdmin):
    list_display = ["transition", "account", "state", "accepted", "points_out"]
    list_filter = ["transition", "state", "accepted"]
    list_select_related = ["transition", "account__member"]
    show_full_result_count = False
