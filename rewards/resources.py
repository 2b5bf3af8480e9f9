"""The reward catalogue in the admin's import/export (django-import-export), written through
rewards.services.reward_save: a row is checked as the staff editor checks it, and a file is imported
all or nothing (loyalty.core.resources)."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from import_export import fields, widgets

from loyalty.core.resources import (
    ChoiceWidget,
    CodeWidget,
    DecimalNumberWidget,
    IsoDateWidget,
    ListWidget,
    ServiceResource,
    WholeNumberWidget,
    YesNoWidget,
)
from loyalty.models import Program, Tier
from rewards import services
from rewards.models import Reward


class TierWidget(CodeWidget):
    """A tier by its name, among the tiers of the row's program."""

    def __init__(self):
        super().__init__(Tier, "name", unknown=gettext_lazy("The program has no tier “%(value)s”."))

    def get_queryset(self, value, row, *args, **kwargs):
        return Tier.objects.filter(program__slug__iexact=(row or {}).get("program", ""))


def _field(name: str, widget) -> fields.Field:
    return fields.Field(attribute=name, column_name=name, widget=widget)


class RewardResource(ServiceResource):
    """Rewards by their id when the file has one (an export does), else by program and name: a new
    pair adds a reward, a known one changes it. A reward never moves to another program."""

    id = _field("id", WholeNumberWidget())
    program = _field(
        "program", CodeWidget(Program, "slug", unknown=gettext_lazy("No program has the slug “%(value)s”."))
    )
    name = _field("name", widgets.CharWidget(allow_blank=True))
    description = _field("description", widgets.CharWidget(allow_blank=True))
    kind = _field("kind", ChoiceWidget(Reward.Kind.choices))
    points_cost = _field("points_cost", WholeNumberWidget())
    value = _field("value", DecimalNumberWidget())
    min_tier = _field("min_tier", TierWidget())
    regions = _field("regions", ListWidget())
    member_types = _field("member_types", ListWidget())
    valid_from = _field("valid_from", IsoDateWidget())
    valid_until = _field("valid_until", IsoDateWidget())
    stock = _field("stock", WholeNumberWidget())
    limit_per_member = _field("limit_per_member", WholeNumberWidget())
    limit_period = _field("limit_period", ChoiceWidget(Reward._meta.get_field("limit_period").choices))
    fulfilment = _field("fulfilment", ChoiceWidget(Reward.Fulfilment.choices))
    voucher_valid_days = _field("voucher_valid_days", WholeNumberWidget())
    featured = _field("featured", YesNoWidget())
    is_active = _field("is_active", YesNoWidget())

    class Meta:
        model = Reward
        import_id_fields = ["program", "name"]
        # The catalogue's own fields (rewards.services.REWARD_FIELDS), less the image, which a CSV cannot carry.
        fields = ["id", "program", *(name for name in services.REWARD_FIELDS if name != "image")]

    def get_queryset(self):
        return Reward.objects.select_related("program", "min_tier")

    def get_instance(self, instance_loader, row):
        given_id = row.get("id") or ""
        if given_id:
            try:
                reward_id = WholeNumberWidget().clean(given_id)
            except ValueError:
                return None  # import_instance() reports the cell
            reward = self.get_queryset().filter(pk=reward_id).first()
            if reward is None:
                message = _("No reward has the id %(id)s. Leave the id empty to add a new reward.") % {"id": reward_id}
                raise ValidationError({"id": [message]})
            return reward
        matches = list(
            self.get_queryset().filter(program__slug__iexact=row.get("program", ""), name=row.get("name", ""))[:2]
        )
        if len(matches) > 1:
            raise ValidationError(
                {"name": [_("The program has several rewards with this name: give the id of the one to change.")]}
            )
        return matches[0] if matches else None

    def write(self, *, instance, new, values, user):
        changes = {name: value for name, value in values.items() if name in services.REWARD_FIELDS}
        program = values.get("program") or (None if new else instance.program)  # an empty cell keeps it
        return services.reward_save(program=program, reward=None if new else instance, **changes)
