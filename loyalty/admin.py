"""Admin for the points engine.

Program configuration (programs, tiers, rules, terms) is editable, with an audit trail of who
changed what (django-simple-history). The books (accounts, ledger entries, purchases, allocations,
tier changes) are read-only here: they change only through loyalty.services.
"""

from decimal import Decimal

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.forms.models import BaseInlineFormSet
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from loyalty import services
from loyalty.core.admin import ReadOnlyAdmin
from loyalty.core.exceptions import ApplicationError
from loyalty.models import (
    Account,
    Activity,
    EarnRule,
    Invitation,
    LedgerEntry,
    LegacyImport,
    Program,
    Purchase,
    TermsAcceptance,
    TermsVersion,
    Tier,
    TierBenefit,
    TierChange,
)


class TierLadderFormSet(BaseInlineFormSet):
    """The whole ladder is checked at once: one entry tier at 0, ranks and thresholds rising together."""

    def clean(self):
        super().clean()
        specs = []
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data or data.get("DELETE") or (not form.has_changed() and not form.instance.pk):
                continue
            specs.append(
                services.TierSpec(
                    rank=data.get("rank") or 0,
                    name=data.get("name") or "",
                    threshold=data.get("threshold") if data.get("threshold") is not None else -1,
                    earn_multiplier=data.get("earn_multiplier") or Decimal("0"),
                )
            )
        errors = services.tier_ladder_errors(specs)
        if errors:
            raise ValidationError(errors)


class TierInline(admin.TabularInline):
    model = Tier
    formset = TierLadderFormSet
    extra = 0
    fields = ["rank", "name", "threshold", "earn_multiplier", "colour"]
    ordering = ["rank"]


class TermsVersionInline(admin.StackedInline):
    model = TermsVersion
    extra = 0


@admin.register(Program)
class ProgramAdmin(SimpleHistoryAdmin):
    list_display = ["name", "slug", "status", "currency", "qualification_window", "expiry_policy", "enrolment_mode"]
    list_filter = ["status", "enrolment_mode", "expiry_policy"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    filter_horizontal = ["stores"]
    inlines = [TierInline, TermsVersionInline]
    fieldsets = [
        (None, {"fields": ["name", "slug", "status", "points_name", "currency", "point_value", "stores"]}),
        (
            _("Tiers"),
            {"fields": ["qualification_window", "qualifying_basis", "downgrade_mode", "downgrade_grace_months"]},
        ),
        (_("Points"), {"fields": ["expiry_policy", "expiry_months", "pending_days", "welcome_bonus"]}),
        (_("Enrolment"), {"fields": ["enrolment_mode", "pilot_member_cap"]}),
    ]


class TierBenefitInline(admin.TabularInline):
    model = TierBenefit
    extra = 1
    fields = ["position", "text", "reward"]
    autocomplete_fields = ["reward"]


@admin.register(Tier)
class TierAdmin(SimpleHistoryAdmin):
    list_display = ["name", "program", "rank", "threshold", "earn_multiplier"]
    list_filter = ["program"]
    ordering = ["program", "rank"]
    inlines = [TierBenefitInline]

    def get_readonly_fields(self, request, obj=None):
        # Thresholds and ranks move together: change them on the program's ladder, which checks the whole.
        return ["program", "rank", "threshold"] if obj else []


@admin.register(EarnRule)
class EarnRuleAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "program",
        "activity_type",
        "calculation",
        "rate",
        "stackable",
        "priority",
        "valid_from",
        "valid_until",
        "is_active",
    ]
    list_filter = ["program", "activity_type", "is_active", "stackable"]
    search_fields = ["name", "custom_code"]
    filter_horizontal = ["tiers", "stores"]
    fieldsets = [
        (None, {"fields": ["program", "name", "is_active", "activity_type", "custom_code"]}),
        (_("What it earns"), {"fields": ["calculation", "rate", "rounding", "apply_tier_multiplier", "qualifying"]}),
        (_("Limits"), {"fields": ["cap_points", "cap_period", "stackable", "priority", "requires_approval"]}),
        (
            _("Who and what qualifies (empty means everyone)"),
            {"fields": ["tiers", "stores", "regions", "member_types", "product_categories", "min_amount"]},
        ),
        (_("When"), {"fields": ["valid_from", "valid_until"]}),
        (_("Referral rules"), {"fields": ["referral_party", "referral_trigger"]}),
    ]


@admin.register(TermsVersion)
class TermsVersionAdmin(SimpleHistoryAdmin):
    list_display = ["program", "version", "effective_on", "requires_reacceptance"]
    list_filter = ["program", "requires_reacceptance"]


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ["code", "program", "email", "uses", "max_uses", "expires_at", "created_by"]
    list_filter = ["program"]
    search_fields = ["=code", "email"]
    fields = ["program", "email", "max_uses", "expires_at", "code", "uses"]
    readonly_fields = ["code", "uses"]

    def save_model(self, request, obj, form, change):
        if not obj.code:
            obj.code, obj.created_by = services.invitation_code(), request.user
        super().save_model(request, obj, form, change)


@admin.register(TermsAcceptance)
class TermsAcceptanceAdmin(ReadOnlyAdmin):
    list_display = ["accepted_at", "account", "terms", "channel", "recorded_by", "store"]
    list_filter = ["terms__program", "channel"]
    list_select_related = ["account__member", "terms", "recorded_by", "store"]
    search_fields = ["account__member__member_no"]


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ["member", "program", "tier", "balance", "pending", "last_activity_at"]
    list_filter = ["program", "tier"]
    list_select_related = ["member", "program", "tier"]
    search_fields = ["member__member_no", "member__email", "member__last_name"]
    show_full_result_count = False  # no COUNT(*) over a million accounts on every page


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "account", "kind", "points", "remaining", "is_available", "expires_at", "reason"]
    list_filter = ["kind", "is_available", "program"]
    list_select_related = ["account__member"]
    search_fields = ["account__member__member_no", "idempotency_key"]
    date_hierarchy = "occurred_at"
    show_full_result_count = False


@admin.register(Purchase)
class PurchaseAdmin(ReadOnlyAdmin):
    list_display = ["receipt_number", "account", "store", "amount", "returned_amount", "occurred_at"]
    list_filter = ["program", "store"]
    list_select_related = ["account__member", "store"]
    search_fields = ["receipt_number", "account__member__member_no"]
    show_full_result_count = False


@admin.register(TierChange)
class TierChangeAdmin(ReadOnlyAdmin):
    list_display = ["changed_at", "account", "from_tier", "to_tier", "reason"]
    list_filter = ["reason", "to_tier__program"]
    list_select_related = ["account__member", "from_tier", "to_tier"]


@admin.register(Activity)
class ActivityAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "account", "activity_type", "quantity", "status", "reviewed_by"]
    list_filter = ["status", "activity_type", "program"]
    list_select_related = ["account__member", "reviewed_by"]
    search_fields = ["account__member__member_no", "description"]
    actions = ["approve_claims"]

    @admin.action(description=_("Approve the selected claims"), permissions=["view"])
    def approve_claims(self, request, queryset):
        if not request.user.has_perm("loyalty.review_claims"):
            self.message_user(request, _("Your role cannot review claims."), messages.ERROR)
            return
        approved = 0
        for activity in queryset.filter(status=Activity.Status.PENDING_REVIEW):
            try:
                services.activity_approve(activity=activity, reviewed_by=request.user)
                approved += 1
            except ApplicationError as error:
                self.message_user(request, f"{activity}: {error.message}", messages.ERROR)
        self.message_user(request, _("%(count)s claims approved.") % {"count": approved}, messages.SUCCESS)


@admin.register(LegacyImport)
class LegacyImportAdmin(ReadOnlyAdmin):
    """Uploads are made and run on the staff import page; here they are kept for the record."""

    list_display = [
        "original_name",
        "program",
        "status",
        "rows",
        "errors",
        "members_created",
        "created_by",
        "created_at",
    ]
    list_filter = ["status", "program"]
    exclude = ["first_errors"]
