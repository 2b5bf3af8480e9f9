from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _
from rest_framework_api_key.admin import APIKeyModelAdmin
from rest_framework_api_key.models import APIKey

from loyalty.core.admin import ServiceImportExportMixin
from loyalty.core.exceptions import ApplicationError
from members.models import Member, MemberType, StaffProfile, Store, StoreAPIKey, User
from members.resources import MemberResource, StoreResource
from members.services import phone_normalise


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    extra = 0
    autocomplete_fields = ["store"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    ordering = ["email"]
    list_display = ["email", "first_name", "last_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "first_name", "last_name"]
    inlines = [StaffProfileInline]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["first_name", "last_name"]}),
        (
            _("Roles and permissions"),
            {"fields": ["is_active", "is_staff", "is_superuser", "groups", "user_permissions"]},
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [(None, {"classes": ["wide"], "fields": ["email", "password1", "password2"]})]


@admin.register(Store)
class StoreAdmin(ServiceImportExportMixin, admin.ModelAdmin):
    resource_classes = [StoreResource]
    list_display = ["code", "name", "region", "city", "is_active"]
    list_filter = ["region", "is_active"]
    search_fields = ["code", "name", "city", "postal_code"]


@admin.register(MemberType)
class MemberTypeAdmin(admin.ModelAdmin):
    list_display = ["name", "code", "position", "is_active"]
    list_editable = ["position", "is_active"]
    prepopulated_fields = {"code": ["name"]}


@admin.register(Member)
class MemberAdmin(ServiceImportExportMixin, admin.ModelAdmin):
    resource_classes = [MemberResource]
    list_display = ["member_no", "__str__", "email", "phone", "region", "member_type", "home_store", "status"]
    list_filter = ["status", "region", "member_type", "home_store", "enrolment_channel", "marketing_consent"]
    list_select_related = ["home_store"]
    search_fields = ["=member_no", "first_name", "last_name", "company", "email", "phone"]
    raw_id_fields = ["user", "referred_by", "enrolled_by"]
    readonly_fields = ["referral_code", "enrolled_at", "closed_at", "marketing_consent_at", "marketing_consent_channel"]
    show_full_result_count = False

    def has_import_permission(self, request):
        # Enrolling members by the file is the legacy import's act: its permission too, beside change_member.
        return super().has_import_permission(request) and request.user.has_perm("loyalty.import_members")

    def get_search_results(self, request, queryset, search_term):
        """A phone typed the local way ("0470 99 88 77") also finds its E.164 form."""
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        try:
            phone = phone_normalise(search_term) if search_term.strip() else ""
        except ApplicationError:
            phone = ""
        if phone:
            results |= queryset.filter(phone=phone)
        return results, may_have_duplicates

    fieldsets = [
        (None, {"fields": ["member_no", "status", "first_name", "last_name", "company", "member_type", "language"]}),
        (_("Contact"), {"fields": ["email", "phone", "street", "postal_code", "city", "country", "region"]}),
        (
            _("Enrolment"),
            {"fields": ["enrolment_channel", "home_store", "enrolled_by", "enrolled_at_store", "enrolled_at", "user"]},
        ),
        (
            _("Consent and referral"),
            {
                "fields": [
                    "marketing_consent",
                    "marketing_consent_at",
                    "marketing_consent_channel",
                    "referral_code",
                    "referred_by",
                    "closed_at",
                ]
            },
        ),
    ]


# The library's own key model is not used (keys belong to a store): keep it out of the admin.
admin.site.unregister(APIKey)


@admin.register(StoreAPIKey)
class StoreAPIKeyAdmin(APIKeyModelAdmin):
    """Shown once at creation (a message), then only the prefix; revoking is final."""

    list_display = ["prefix", "name", "store", "created", "last_used_at", "expiry_date", "revoked"]
    list_filter = ["store", "revoked", "created"]
    search_fields = ["name", "prefix", "store__code", "store__name"]
    list_select_related = ["store"]
    fields = ["store", "name", "expiry_date", "revoked", "prefix", "last_used_at", "created_by"]

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "last_used_at", "created_by")

    def save_model(self, request, obj, form=None, change=False):
        if not obj.pk:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
