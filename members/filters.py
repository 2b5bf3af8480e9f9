"""django-filter filter sets over members."""

import django_filters
from django.db.models import Q

from loyalty.core.exceptions import ApplicationError
from members import numbers
from members.models import Member
from members.services import phone_normalise


class MemberLookupFilter(django_filters.FilterSet):
    """Exact lookup (the API does no fuzzy search): a card number as printed, a phone in any usual form, an email."""

    card = django_filters.CharFilter(method="by_card")
    phone = django_filters.CharFilter(method="by_phone")
    email = django_filters.CharFilter(field_name="email", lookup_expr="iexact")

    class Meta:
        model = Member
        fields = []

    def has_criteria(self) -> bool:
        return any(self.form.cleaned_data.get(name) for name in ("card", "phone", "email"))

    def by_card(self, queryset, name, value):
        return queryset.filter(member_no__in=numbers.typed_forms(value))

    def by_phone(self, queryset, name, value):
        try:
            phone = phone_normalise(value)
        except ApplicationError:
            return queryset.none()  # not a phone number: nobody has it
        return queryset.filter(Q(phone=phone))
