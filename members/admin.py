from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.utils.translation import gettext_lazy as _

from members.models import Member, StaffProfile, Store, User


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
class StoreAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "region", "city", "is_active"]
    list_filter = ["region", "is_active"]
    search_fields = ["code", "name", "city", "postal_code"]


@admin.register(Member)
class MemberAdmin(admin.ModelAdmin):
    list_display = ["member_no", "__str__", "email", "phone", "region", "member_type", "home_store", "status"]
    list_filter = ["status", "region", "member_type", "home_store", "accounts__program"]
    list_select_related = ["home_store"]
    search_fields = ["member_no", "first_name", "last_name", "company", "email", "phone"]
    raw_id_fields = ["user"]
    show_full_result_count = False
