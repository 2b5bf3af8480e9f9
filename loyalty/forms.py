from decimal import Decimal

from django import forms
from django.core.validators import RegexValidator
from django.utils.translation import gettext_lazy as _

from loyalty.models import ActivityType, Tier
from members.models import Store


class TierForm(forms.Form):
    rank = forms.IntegerField(label=_("Rank"), min_value=1, max_value=99)
    name = forms.CharField(label=_("Name"), max_length=40)
    threshold = forms.IntegerField(label=_("Threshold"), min_value=0)
    earn_multiplier = forms.DecimalField(
        label=_("Multiplier"), min_value=Decimal("0.01"), max_digits=5, decimal_places=2, initial=Decimal("1")
    )
    colour = forms.CharField(
        label=_("Colour"),
        initial="#6b7280",
        validators=[RegexValidator(r"^#[0-9a-fA-F]{6}$", _("Use a colour such as #c0a040."))],
        widget=forms.TextInput(attrs={"type": "color"}),
    )
    benefits = forms.CharField(
        label=_("Benefits"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("One benefit per line, in the order members read them."),
    )


TierFormSet = forms.formset_factory(TierForm, extra=1, can_delete=True)


class PreviewForm(forms.Form):
    """What would an activity earn? For a real member (by card number) or a profile."""

    member_no = forms.CharField(label=_("Member number"), required=False, help_text=_("Leave empty to use a profile."))
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=Tier.objects.none(), required=False)
    region = forms.CharField(label=_("Region"), required=False)
    member_type = forms.CharField(label=_("Member type"), required=False)
    store = forms.ModelChoiceField(label=_("Store"), queryset=Store.objects.filter(is_active=True), required=False)
    activity_type = forms.ChoiceField(label=_("Activity"), choices=ActivityType.choices, initial=ActivityType.PURCHASE)
    amount = forms.DecimalField(label=_("Amount"), required=False, min_value=Decimal("0"), decimal_places=2)
    category = forms.CharField(label=_("Product category"), required=False, help_text=_("Optional, e.g. PAINT."))
    quantity = forms.DecimalField(
        label=_("Quantity"), required=False, min_value=Decimal("0.01"), decimal_places=2, initial=Decimal("1")
    )
    code = forms.SlugField(label=_("Custom code"), required=False)

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["tier"].queryset = program.tiers.order_by("rank")


class AdjustForm(forms.Form):
    member_no = forms.CharField(label=_("Member number"))
    points = forms.IntegerField(
        label=_("Points"), help_text=_("Positive to credit, negative to debit. The balance never goes below zero.")
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=300,
        help_text=_("The member reads it on their statement, e.g. “Receipt scanned twice”."),
    )
    qualifying = forms.BooleanField(label=_("Counts toward tiers"), required=False)


class RejectClaimForm(forms.Form):
    reason = forms.CharField(label=_("Reason for rejection"), max_length=200)
