"""Tier benefits linked to catalogue rewards: kept through ladder edits, shown to members on their way
to the next tier, refused across programs."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from loyalty import services as engine_services
from loyalty.models import TierBenefit
from rewards import services as reward_services
from tests.factories import ProgramFactory, TierFactory

pytestmark = pytest.mark.django_db


def _reward(program, name="Free delivery"):
    return reward_services.reward_save(
        program=program, name=name, kind="merchandise", points_cost=10, fulfilment="manual"
    )


def test_a_benefit_links_to_a_reward_of_its_own_program_only(shop):
    silver = shop.tiers.get(name="Silver")
    other = ProgramFactory(slug="elsewhere")
    TierFactory(program=other, rank=1, name="Entry", threshold=0)
    benefit = TierBenefit(tier=silver, text="Free delivery", reward=_reward(other))

    with pytest.raises(ValidationError) as error:
        benefit.full_clean()

    assert "reward" in error.value.message_dict


def test_editing_the_ladder_keeps_the_reward_of_a_benefit_whose_text_stays(shop):
    silver = shop.tiers.get(name="Silver")
    delivery = _reward(shop)
    TierBenefit.objects.create(tier=silver, position=0, text="Free delivery", reward=delivery)
    specs = [
        engine_services.TierSpec(
            tier.rank,
            tier.name,
            tier.threshold,
            tier.earn_multiplier,
            tier.colour,
            ("Priority line", "Free delivery") if tier.pk == silver.pk else None,
        )
        for tier in shop.tiers.order_by("rank")
    ]

    engine_services.tier_ladder_save(program=shop, tiers=specs)

    benefits = list(silver.benefits.order_by("position").values_list("text", "reward_id"))
    assert benefits == [("Priority line", None), ("Free delivery", delivery.pk)]


def test_the_dashboard_shows_what_the_next_tier_brings_with_a_link_to_its_reward(client, member_user, signed_in_member):
    account = signed_in_member("100.00")  # Bronze, on the way to Silver
    silver = account.program.tiers.get(name="Silver")
    delivery = _reward(account.program)
    TierBenefit.objects.create(tier=silver, position=0, text="Free delivery", reward=delivery)
    TierBenefit.objects.create(tier=silver, position=1, text="Priority line")
    client.force_login(member_user)

    page = client.get(reverse("me:dashboard")).content.decode()

    assert "What Silver brings" in page
    assert f'<a href="{reverse("me:reward", args=[delivery.pk])}">Free delivery</a>' in page
    assert "<li>Priority line</li>" in page


def test_a_benefit_of_an_inactive_reward_is_shown_without_a_link(client, member_user, signed_in_member):
    account = signed_in_member("100.00")
    silver = account.program.tiers.get(name="Silver")
    delivery = reward_services.reward_save(
        program=account.program,
        name="Old perk",
        kind="merchandise",
        points_cost=10,
        fulfilment="manual",
        is_active=False,
    )
    TierBenefit.objects.create(tier=silver, position=0, text="Old perk", reward=delivery)
    client.force_login(member_user)

    page = client.get(reverse("me:dashboard")).content.decode()

    assert "<li>Old perk</li>" in page
