"""The member admin, composed here (the top layer) because it shows what several apps hold about a
member: accounts with balance and tier, consent history, and the data-rights actions."""

import json

from django.contrib import admin, messages
from django.http import HttpResponse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from loyalty.models import Account
from members.admin import MemberAdmin as BaseMemberAdmin
from members.models import ConsentRecord, Member
from members.services import member_anonymise
from portal import member_data


class AccountInline(admin.TabularInline):
    model = Account
    fields = ["program", "tier", "balance", "pending", "lifetime_earned", "enrolled_at", "last_activity_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # accounts open through enrolment (loyalty.services), never by hand


class ConsentRecordInline(admin.TabularInline):
    model = ConsentRecord
    fields = ["recorded_at", "granted", "channel", "recorded_by", "store"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


admin.site.unregister(Member)


@admin.register(Member)
class MemberAdmin(BaseMemberAdmin):
    list_filter = [
        "status",
        "accounts__program",
        "accounts__tier",
        "home_store",
        "region",
        "member_type",
        "enrolment_channel",
        "marketing_consent",
    ]
    inlines = [AccountInline, ConsentRecordInline]
    actions = ["download_data", "anonymise"]

    # Personal data leaves the portal only for those who may change members (program managers).
    @admin.action(description=_("Download the data of the selected members (JSON)"), permissions=["change"])
    def download_data(self, request, queryset):
        data = [member_data.export(member=member) for member in queryset[:100]]
        response = HttpResponse(json.dumps(data, indent=2, ensure_ascii=False, default=str), "application/json")
        response["Content-Disposition"] = f'attachment; filename="members-{timezone.localdate()}.json"'
        return response

    @admin.action(description=_("Close and anonymise the selected members"), permissions=["change"])
    def anonymise(self, request, queryset):
        count = 0
        for member in queryset.exclude(status=Member.Status.ANONYMISED):
            member_anonymise(member=member, requested_by=request.user)
            count += 1
        self.message_user(request, _("%(count)s members anonymised.") % {"count": count}, messages.SUCCESS)
