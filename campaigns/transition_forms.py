"""Forms of the program transition pages (campaigns/views/transitions.py)."""

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns.models import MigrationPlan
from loyalty.models import EarnRule, Program


class DateInput(forms.DateInput):
    input_type = "date"


class TransitionForm(forms.Form):
    name = forms.CharField(label=_("Name"), max_length=120)
    terms = forms.ModelChoiceField(
        label=_("New terms"), queryset=None, help_text=_("Versions that ask members to accept again.")
    )
    announce_on = forms.DateField(label=_("Announce on"), widget=DateInput)
    accept_by = forms.DateField(label=_("Members accept by"), widget=DateInput)
    cutover_on = forms.DateField(label=_("Cut-over on"), widget=DateInput)

    def __init__(self, *args, program: Program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["terms"].queryset = program.terms_versions.filter(
            requires_reacceptance=True, transitions__isnull=True
        )


class BurnRewardsForm(forms.Form):
    burn_rewards = forms.ModelMultipleChoiceField(
        label=_("Rewards to use points on until the cut-over"),
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Members see them on their dashboard with the deadline."),
    )

    def __init__(self, *args, program: Program, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["burn_rewards"].queryset = program.rewards.filter(is_active=True).order_by("points_cost", "name")


class MigrationPlanForm(forms.Form):
    target_program = forms.ModelChoiceField(label=_("New program"), queryset=None)
    conversion_rate = forms.DecimalField(
        label=_("Conversion rate"),
        min_value=0.0001,
        max_digits=10,
        decimal_places=4,
        help_text=_("New points for one old point."),
    )
    rounding = forms.ChoiceField(label=_("Rounding"), choices=EarnRule.Rounding.choices)
    unaccepted = forms.ChoiceField(label=_("Members who never accepted"), choices=MigrationPlan.Unaccepted.choices)
    uplift_percent = forms.DecimalField(
        label=_("Voucher uplift (%)"),
        min_value=0,
        max_value=200,
        max_digits=5,
        decimal_places=2,
        help_text=_("10 gives a voucher worth 110% of the balance's value."),
    )
    voucher_valid_days = forms.IntegerField(label=_("Voucher valid for (days)"), min_value=1, max_value=3650)

    def __init__(self, *args, program: Program, target: Program | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["target_program"].queryset = Program.objects.exclude(pk=program.pk).order_by("name")
        target = target or self._chosen_target()
        choices = [(MigrationPlan.RE_EVALUATE, _("Re-evaluate"))]
        if target is not None:
            choices += [(str(tier.pk), tier.name) for tier in target.tiers.order_by("rank")]
        self.tier_fields = []
        for tier in program.tiers.order_by("rank"):
            name = f"tier_{tier.pk}"
            self.fields[name] = forms.ChoiceField(
                label=_("%(tier)s becomes") % {"tier": tier.name}, choices=choices, required=False
            )
            self.tier_fields.append(name)

    def _chosen_target(self) -> Program | None:
        value = self.data.get("target_program") if self.is_bound else self.initial.get("target_program")
        try:
            return Program.objects.filter(pk=int(getattr(value, "pk", value))).first() if value else None
        except (TypeError, ValueError):
            return None

    def tier_mapping(self) -> dict[str, str]:
        return {
            name.removeprefix("tier_"): self.cleaned_data.get(name) or MigrationPlan.RE_EVALUATE
            for name in self.tier_fields
        }
