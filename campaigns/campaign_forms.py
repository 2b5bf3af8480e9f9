from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import Campaign
from loyalty.models import ActivityType

CAMPAIGN_FIELDS = [
    "name",
    "goal",
    "segment",
    "starts_on",
    "ends_on",
    "mechanic",
    "budget_points",
    "budget_money",
    "holdout_percent",
    "activity_types",
    "bonus_multiple",
    "bonus_points",
    "product_categories",
    "category_rate",
    "threshold_amount",
    "award",
    "voucher_amount",
    "voucher_valid_days",
    "welcome_days",
    "inactive_days",
]

# Which mechanics read which setting: the editor shows a setting only for them.
MECHANIC_FIELDS = {
    "activity_types": ["bonus_points"],
    "bonus_multiple": ["bonus_points", "welcome"],
    "bonus_points": ["bonus_points", "welcome", "win_back"],
    "product_categories": ["category_bonus"],
    "category_rate": ["category_bonus"],
    "threshold_amount": ["spend_threshold"],
    "award": ["win_back"],
    "voucher_amount": ["spend_threshold", "win_back"],
    "voucher_valid_days": ["win_back"],
    "welcome_days": ["welcome"],
    "inactive_days": ["win_back"],
    "budget_points": [m for m in Campaign.Mechanic.values if m != "announcement"],
    "budget_money": [m for m in Campaign.Mechanic.values if m != "announcement"],
}


class CampaignForm(forms.Form):
    """The staff campaign editor; campaigns.services.campaign_save decides what is valid and names the
    field to fix."""

    activity_types = forms.MultipleChoiceField(
        label=_("Activities"),
        required=False,
        choices=ActivityType.choices,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: purchases."),
    )
    product_categories = forms.CharField(
        label=_("Product categories"),
        required=False,
        help_text=_("Comma-separated codes as the till sends them, e.g. PAINT, TOOLS."),
    )

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(
            Campaign, fields=[name for name in CAMPAIGN_FIELDS if name not in {"activity_types", "product_categories"}]
        )
        model_fields["segment"].queryset = program.segments.order_by("name")
        model_fields["segment"].empty_label = _("Every member of the program")
        for name in ("starts_on", "ends_on"):
            model_fields[name].widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        model_fields["goal"].widget.attrs["rows"] = 2
        lists = {
            "activity_types": self.fields.pop("activity_types"),
            "product_categories": self.fields.pop("product_categories"),
        }
        for name in CAMPAIGN_FIELDS:
            self.fields[name] = lists.get(name) or model_fields[name]
        self.fields["mechanic"].widget.attrs["data-mechanic-choice"] = ""

    def clean_product_categories(self):
        text = self.cleaned_data["product_categories"]
        return [code.strip().upper() for code in text.split(",") if code.strip()]


def campaign_initial(campaign: Campaign) -> dict:
    initial = {name: getattr(campaign, name) for name in CAMPAIGN_FIELDS}
    initial["segment"] = campaign.segment_id
    initial["product_categories"] = ", ".join(campaign.product_categories)
    return initial
