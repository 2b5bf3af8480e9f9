"""Whether an account may redeem a reward, and if not, why, in words the member understands.

One pure function, no database: the catalogue (rewards.selectors) and redemption (rewards.services)
both call it, so what the catalogue offers is what redeeming accepts.
"""

import datetime
from dataclasses import dataclass

from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from loyalty.models import Account
from rewards.models import Reward

# Refusals the catalogue shows next to the reward (the member can do something about them or should
# know); the others hide the reward from this member altogether.
SHOWN = frozenset({"needs_tier", "out_of_stock", "limit_reached", "insufficient_points"})


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    points_missing: int = 0


def refusal(reward: Reward, account: Account, *, today: datetime.date, redeemed_in_period: int) -> Refusal | None:
    """None when `account` may redeem `reward` today; else the first reason it may not.

    `redeemed_in_period`: this account's redemptions of the reward (not cancelled) in the current
    limit period. `account.tier` must be loaded with the program's tiers' ranks.
    """
    if not reward.is_active or reward.program_id != account.program_id:
        return Refusal("not_available", _("This reward is not offered any more."))
    if reward.valid_from and today < reward.valid_from:
        return Refusal(
            "not_available",
            _("This reward is offered from %(date)s.") % {"date": date_format(reward.valid_from, "DATE_FORMAT")},
        )
    if reward.valid_until and today > reward.valid_until:
        return Refusal(
            "not_available",
            _("This reward was offered until %(date)s.") % {"date": date_format(reward.valid_until, "DATE_FORMAT")},
        )
    member = account.member
    if reward.regions and member.region not in reward.regions:
        return Refusal("not_offered", _("This reward is not offered in your region."))
    if reward.member_types and member.member_type not in reward.member_types:
        return Refusal("not_offered", _("This reward is not offered to your type of membership."))
    if reward.min_tier_id and (account.tier is None or account.tier.rank < reward.min_tier.rank):
        return Refusal("needs_tier", _("Needs %(tier)s") % {"tier": reward.min_tier.name})
    if reward.stock is not None and reward.stock <= 0:
        return Refusal("out_of_stock", _("Out of stock"))
    if reward.limit_per_member is not None and redeemed_in_period >= reward.limit_per_member:
        return Refusal(
            "limit_reached",
            ngettext(
                "Limit reached: %(count)s per member %(period)s",
                "Limit reached: %(count)s per member %(period)s",
                reward.limit_per_member,
            )
            % {"count": reward.limit_per_member, "period": reward.get_limit_period_display()},
        )
    missing = reward.points_cost - account.balance
    if missing > 0:
        return Refusal(
            "insufficient_points",
            ngettext("%(missing)s more point", "%(missing)s more points", missing) % {"missing": missing},
            points_missing=missing,
        )
    return None
