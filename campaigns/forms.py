"""Staff forms of the campaigns app."""

from django import forms
from django.utils.translation import gettext_lazy as _

from campaigns import segments
from campaigns.models import Segment
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
