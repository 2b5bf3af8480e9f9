"""Members and stores in the admin's import/export (django-import-export), written through
members.services: a row is checked as the desk or the API would check it, and a file is imported
all or nothing (loyalty.core.resources)."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, widgets

from loyalty.core.exceptions import ApplicationError
from loyalty.core.resources import CodeWidget, ServiceResource, YesNoWidget
from members import services
from members.models import Member, Store


class LanguageWidget(widgets.CharWidget):
    """en, FR, nl-BE or nl_BE: the language's own code; a language the portal does not offer is refused."""

    def clean(self, value, row=None, **kwargs):
        code = super().clean(value, row, **kwargs).strip().lower().replace("_", "-").split("-")[0]
        languages = sorted(code for code, _name in settings.LANGUAGES)
        if code and code not in languages:
            raise ValueError(
                _("Unknown language “%(value)s”. Use one of: %(codes)s.")
                % {"value": value, "codes": ", ".join(languages)}
            )
        return code


class PhoneWidget(widgets.CharWidget):
    """A phone as typed anywhere ("0470 12 34 56", "+32 470..."), read as the desk reads it (E.164)."""

    def clean(self, value, row=None, **kwargs):
        try:
            return services.phone_normalise(super().clean(value, row, **kwargs))
        except ApplicationError as error:
            raise ValueError(error.message) from None


class EmailWidget(widgets.CharWidget):
    def clean(self, value, row=None, **kwargs):
        email = super().clean(value, row, **kwargs).strip()
        try:
            if email:
                validate_email(email)
        except ValidationError:
            raise ValueError(_("“%(value)s” is not an email address.") % {"value": value}) from None
        return email


def _text(column: str) -> fields.Field:
    return fields.Field(attribute=column, column_name=column, widget=widgets.CharWidget(allow_blank=True))


class MemberResource(ServiceResource):
    """Members by their number. A new row enrols a member (the number is issued when the cell is empty;
    a legacy number is kept as it is); a known number updates that member, and an empty cell keeps
    what the member has, as in the legacy import (manage.py import_members)."""

    member_no = _text("member_no")
    first_name = _text("first_name")
    last_name = _text("last_name")
    company = _text("company")
    # Cells the portal can check alone are checked here, so a row shows all of them at once; the rules
    # that need the database (duplicates, member types, a name or a company) are the services'.
    email = fields.Field(attribute="email", column_name="email", widget=EmailWidget(allow_blank=True))
    phone = fields.Field(attribute="phone", column_name="phone", widget=PhoneWidget(allow_blank=True))
    street = _text("street")
    postal_code = _text("postal_code")
    city = _text("city")
    country = _text("country")
    region = _text("region")
    language = fields.Field(attribute="language", column_name="language", widget=LanguageWidget(allow_blank=True))
    member_type = _text("member_type")
    store = fields.Field(
        attribute="home_store",
        column_name="store",
        widget=CodeWidget(Store, "code", unknown=gettext_lazy("No store has the code “%(value)s”.")),
    )
    marketing_consent = fields.Field(
        attribute="marketing_consent", column_name="marketing_consent", widget=YesNoWidget()
    )
    status = fields.Field(attribute="status", column_name="status", readonly=True)
    enrolled_at = fields.Field(
        attribute="enrolled_at",
        column_name="enrolled_at",
        widget=widgets.DateTimeWidget(format="%Y-%m-%d %H:%M"),
        readonly=True,
    )

    class Meta:
        model = Member
        import_id_fields = ["member_no"]
        fields = [
            "member_no",
            "first_name",
            "last_name",
            "company",
            "email",
            "phone",
            "street",
            "postal_code",
            "city",
            "country",
            "region",
            "language",
            "member_type",
            "store",
            "marketing_consent",
            "status",
            "enrolled_at",
        ]

    def get_queryset(self):
        return Member.objects.select_related("home_store")

    def write(self, *, instance, new, values, user):
        given = {name: value for name, value in values.items() if value not in ("", None)}
        if new:
            return services.member_create(**given, channel=Member.Channel.IMPORT, enrolled_by=user)
        given.pop("member_no", None)
        return services.member_details_update(member=instance, changed_by=user, channel=Member.Channel.IMPORT, **given)


class StoreResource(ServiceResource):
    """Stores by their code: a new code opens a store, a known one corrects its name and address."""

    code = _text("code")
    name = _text("name")
    region = _text("region")
    street = _text("street")
    postal_code = _text("postal_code")
    city = _text("city")
    is_active = fields.Field(attribute="is_active", column_name="is_active", widget=YesNoWidget(), readonly=True)

    class Meta:
        model = Store
        import_id_fields = ["code"]
        fields = ["code", "name", "region", "street", "postal_code", "city", "is_active"]

    def write(self, *, instance, new, values, user):
        if new:
            blank = {"name": "", "region": "", "street": "", "postal_code": "", "city": ""}
            return services.store_create(**(blank | values))
        current = {name: getattr(instance, name) for name in ("name", "region", "street", "postal_code", "city")}
        changes = {name: value for name, value in values.items() if name != "code"}
        return services.store_update(store=instance, **(current | changes))
