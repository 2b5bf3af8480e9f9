from django import forms
from django.utils.translation import gettext_lazy as _

from members.models import MemberType
from rewards.models import Reward
from rewards.services import REWARD_FIELDS

# The model's own fields, except the two lists, which people type or tick rather than write as JSON.
_MODEL_FIELDS = [name for name in REWARD_FIELDS if name not in {"regions", "member_types"}]


class RewardForm(forms.Form):
    """The staff reward editor. What makes a reward valid is checked by rewards.services.reward_save,
    which names the field to fix; this form only reads the typed values."""

    regions = forms.CharField(
        label=_("Regions"),
        required=False,
        help_text=_("Comma-separated, e.g. Flanders, Brussels. Empty: every region."),
    )
    member_types = forms.MultipleChoiceField(
        label=_("Member types"),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("None ticked: every member type."),
    )

    def __init__(self, *args, program, **kwargs):
        super().__init__(*args, **kwargs)
        model_fields = forms.fields_for_model(Reward, fields=_MODEL_FIELDS)
        model_fields["min_tier"].queryset = program.tiers.order_by("rank")
        for name in ("valid_from", "valid_until"):
            model_fields[name].widget = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
        model_fields["description"].widget.attrs["rows"] = 3
        lists = {"regions": self.fields.pop("regions"), "member_types": self.fields.pop("member_types")}
        lists["member_types"].choices = [(t.code, t.name) for t in MemberType.objects.order_by("position", "name")]
        for name in REWARD_FIELDS:
            self.fields[name] = lists.get(name) or model_fields[name]

    def clean_regions(self):
        return [region.strip() for region in self.cleaned_data["regions"].split(",") if region.strip()]


def reward_initial(reward: Reward) -> dict:
    initial = forms.model_to_dict(reward, fields=REWARD_FIELDS)
    initial["regions"] = ", ".join(reward.regions)
    return initial


class CancelRedemptionForm(forms.Form):
    reason = forms.CharField(label=_("Reason for cancelling"), max_length=200)
