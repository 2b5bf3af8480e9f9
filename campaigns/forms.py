"""Staff forms of the campaigns app: segments, campaigns and program transitions. What makes the
data valid is checked by the services, which name the field to fix; these forms read typed values."""

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns import segments
from campaigns.models import Campaign, MigrationPlan, Segment
from loyalty.models import ActivityType, EarnRule, Program
from members.models import MemberType

_DATE = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
_DECILES = [("", _("any"))] + [(str(n), str(n)) for n in range(1, 11)]


class SegmentForm(forms.Form):
    """The segment editor. It reads the typed values; what makes criteria valid together (ranges,
    deciles, activity windows) is checked by campaigns.segments, which names the field to fix.

    `draft=True` is the live count: the name may still be empty."""

    GROUPS = (
        (_("Who"), ("tiers", "regions", "member_types", "stores", "consent")),
        (
            _("Since when and how lately"),
            ("enrolled_from", "enrolled_until", "active_within_days", "inactive_for_days"),
        ),
        (
            _("What they spent and hold"),
            (
                "period_days",
                "spend_min",
                "spend_max",
                "points_min",
                "points_max",
                "balance_min",
                "balance_max",
                "decile_best",
                "decile_worst",
            ),
        ),
    )

    def __init__(self, *args, program, draft: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        fields = forms.fields_for_model(Segment, fields=list(segments.SEGMENT_FIELDS))
        fields["name"].required = not draft
        fields["description"].widget = forms.TextInput()
        # The widget first: setting the queryset hands its choices to the widget in place.
        fields["tiers"].widget = forms.CheckboxSelectMultiple()
        fields["tiers"].queryset = program.tiers.order_by("rank")
        fields["tiers"].help_text = _("None ticked: every tier.")
        fields["stores"].widget = forms.SelectMultiple(attrs={"size": 6})
        fields["stores"].queryset = segments.program_stores(program=program)
        fields["stores"].help_text = _("The member's home store. None chosen: any store.")
        for name in ("enrolled_from", "enrolled_until"):
            fields[name].widget = _DATE
        for name in ("decile_best", "decile_worst"):
            fields[name] = forms.TypedChoiceField(
                label=fields[name].label,
                choices=_DECILES,
                coerce=int,
                empty_value=None,
                required=False,
                help_text=fields[name].help_text,
            )
        fields["decile_worst"].help_text = _("10 is the tenth who spent least; members with no spend rank last.")
        fields["consent"] = forms.ChoiceField(
            label=fields["consent"].label, choices=Segment.Consent.choices, required=False
        )
        fields["period_days"].help_text = _("For the spend and points criteria.")
        if not draft:  # the live count renders no form
            fields["period_days"].help_text = segments.values_freshness(program=program)
        regions = set(segments.known_regions())
        types = {t.code: t.name for t in MemberType.objects.order_by("position", "name")}
        for value in self.initial.get("regions") or ():  # values no store uses any more stay choosable
            regions.add(value)
        for value in self.initial.get("member_types") or ():
            types.setdefault(value, value)
        fields["regions"] = forms.MultipleChoiceField(
            label=_("Regions"),
            choices=[(region, region) for region in sorted(regions)],
            widget=forms.CheckboxSelectMultiple,
            required=False,
            help_text=_("None ticked: every region."),
        )
        fields["member_types"] = forms.MultipleChoiceField(
            label=_("Member types"),
            choices=list(types.items()),
            widget=forms.CheckboxSelectMultiple,
            required=False,
            help_text=_("None ticked: every member type."),
        )
        for name in segments.SEGMENT_FIELDS:
            self.fields[name] = fields[name]

    def groups(self) -> list[tuple[str, list]]:
        return [(legend, [self[name] for name in names]) for legend, names in self.GROUPS]

    def criteria(self) -> dict:
        """The cleaned criteria, for segments.segment_draft or segment_save."""
        return dict(self.cleaned_data)


def segment_initial(segment: Segment) -> dict:
    initial = forms.model_to_dict(segment, fields=segments.SEGMENT_FIELDS)
    initial["tiers"] = [tier.pk for tier in segment.tiers.all()]
    initial["stores"] = [store.pk for store in segment.stores.all()]
    return initial


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
