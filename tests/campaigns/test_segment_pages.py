"""Segment pages through Django's test client: the list, the editor and its live count (htmx), deletion;
who may open what, and every refusal."""

import datetime

import pytest

from campaigns import segments
from campaigns.models import Campaign, Segment
from loyalty.models import Account
from tests.conftest import tier
from tests.factories import ProgramFactory, StoreFactory, TierFactory

pytestmark = pytest.mark.django_db


def _url(program, page=""):
    return f"/staff/programs/{program.slug}/segments/{page}"


@pytest.fixture
def members(program, enrol):
    """Four active members of `program`: two Gold in Flanders (one consenting), one Bronze in Brussels,
    one Gold in Wallonia. Stores in those regions make them the regions staff choose from."""
    for region in ("Flanders", "Brussels", "Wallonia"):
        StoreFactory(name=f"Store in {region}", region=region)
    accounts = [
        enrol(program, first_name="Ann", last_name="Gold", region="Flanders", marketing_consent=True),
        enrol(program, first_name="Bert", last_name="Gold", region="Flanders"),
        enrol(program, first_name="Cleo", last_name="Bronze", region="Brussels"),
        enrol(program, first_name="Dirk", last_name="Gold", region="Wallonia"),
    ]
    gold = tier(program, "Gold")
    Account.objects.filter(member__last_name="Gold").update(tier=gold)  # test data: tiers as named
    return accounts


@pytest.fixture
def gold_segment(program):
    return segments.segment_save(program=program, name="Gold members", created_by=None, tiers=[tier(program, "Gold")])


@pytest.mark.parametrize(
    ("who", "page", "status"),
    [
        ("manager_user", "", 200),
        ("manager_user", "new/", 200),
        ("manager_user", "{pk}/", 200),
        ("manager_user", "{pk}/delete/", 200),
        ("analyst_user", "", 200),
        ("analyst_user", "{pk}/", 200),
        ("analyst_user", "new/", 403),
        ("analyst_user", "{pk}/delete/", 403),
        ("clerk_user", "", 403),
        ("clerk_user", "{pk}/", 403),
        ("member_user", "", 403),
        ("member_user", "{pk}/", 403),
    ],
)
def test_who_may_open_each_segment_page(client, request, program, gold_segment, who, page, status):
    client.force_login(request.getfixturevalue(who))

    assert client.get(_url(program, page.format(pk=gold_segment.pk))).status_code == status


def test_the_program_page_links_to_the_segments(client, manager_user, program):
    client.force_login(manager_user)

    page = client.get(f"/staff/programs/{program.slug}/").content.decode()

    assert f'href="{_url(program)}"' in page


def test_a_manager_builds_a_segment_and_finds_it_in_the_list(client, manager_user, program, members):
    client.force_login(manager_user)

    response = client.post(
        _url(program, "new/"),
        {
            "name": "Gold in Flanders",
            "tiers": [tier(program, "Gold").pk],
            "regions": ["Flanders"],
            "period_days": "365",
            "consent": "",
        },
    )

    assert response.status_code == 302
    segment = Segment.objects.get()
    assert (segment.name, segment.regions, list(segment.tiers.all())) == (
        "Gold in Flanders",
        ["Flanders"],
        [tier(program, "Gold")],
    )
    assert segment.created_by == manager_user
    listing = client.get(_url(program)).content.decode()
    assert "Gold in Flanders" in listing and "Tier: Gold" in listing and "Region: Flanders" in listing


def test_a_manager_edits_a_segment(client, manager_user, program, members, gold_segment):
    client.force_login(manager_user)
    page = client.get(_url(program, f"{gold_segment.pk}/")).content.decode()
    assert 'value="Gold members"' in page and "hx-post" in page

    response = client.post(
        _url(program, f"{gold_segment.pk}/"),
        {"name": "Gold, consenting", "tiers": [tier(program, "Gold").pk], "consent": "given", "period_days": "365"},
    )

    assert response.status_code == 302
    gold_segment.refresh_from_db()
    assert (gold_segment.name, gold_segment.consent) == ("Gold, consenting", "given")
    assert segments.segment_count(program=program, segment=gold_segment) == 1


def test_a_refused_segment_shows_the_reason_beside_the_field(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(
        _url(program, "new/"), {"name": "Odd", "decile_best": "4", "decile_worst": "2", "period_days": "365"}
    )

    assert response.status_code == 400
    assert "Decile 1 is the best: give the better decile first, e.g. from 2 to 4." in response.content.decode()
    assert not Segment.objects.exists()


def test_the_live_count_follows_the_criteria_posted(client, manager_user, program, members):
    client.force_login(manager_user)
    gold = tier(program, "Gold").pk

    everyone = client.post(_url(program, "count/"), {"period_days": "365"}, headers={"HX-Request": "true"})
    gold_in_flanders = client.post(
        _url(program, "count/"), {"tiers": [gold], "regions": ["Flanders"], "period_days": "365"}
    )

    assert everyone.status_code == 200
    assert 'data-testid="segment-count">4<' in everyone.content.decode()
    body = gold_in_flanders.content.decode()
    assert 'data-testid="segment-count">2<' in body
    assert "Ann Gold" in body and "Bert Gold" in body and "Dirk" not in body  # the sample
    assert not Segment.objects.exists()  # counting saves nothing


def test_the_live_count_explains_contradictory_criteria(client, manager_user, program, members):
    client.force_login(manager_user)

    response = client.post(
        _url(program, "count/"), {"active_within_days": "30", "inactive_for_days": "90", "period_days": "365"}
    )

    assert response.status_code == 200
    assert "No member can be active in the last 30 days and inactive for 90" in response.content.decode()
    assert "segment-count" not in response.content.decode()


def test_an_analyst_sees_a_segment_and_its_count_but_cannot_change_it(
    client, analyst_user, program, members, gold_segment
):
    client.force_login(analyst_user)

    page = client.get(_url(program, f"{gold_segment.pk}/")).content.decode()
    count = client.get(_url(program, f"count/?segment={gold_segment.pk}"))
    refused = client.post(_url(program, f"{gold_segment.pk}/"), {"name": "Mine now", "period_days": "365"})
    refused_new = client.post(_url(program, "new/"), {"name": "Mine", "period_days": "365"})

    assert "Tier: Gold" in page and '<form method="post" novalidate id="segment-form"' not in page
    assert 'data-testid="segment-count">3<' in count.content.decode()
    assert (refused.status_code, refused_new.status_code) == (403, 403)
    gold_segment.refresh_from_db()
    assert gold_segment.name == "Gold members" and Segment.objects.count() == 1


def test_clerks_and_members_cannot_count(client, clerk_user, member_user, program, gold_segment):
    for user in (clerk_user, member_user):
        client.force_login(user)
        assert client.post(_url(program, "count/"), {"period_days": "365"}).status_code == 403
        assert client.get(_url(program, f"count/?segment={gold_segment.pk}")).status_code == 403


def test_another_programs_segment_is_not_found(client, manager_user, program, gold_segment):
    other = ProgramFactory(slug="other")
    TierFactory(program=other, rank=1, name="Base")
    client.force_login(manager_user)

    assert client.get(_url(other, f"{gold_segment.pk}/")).status_code == 404
    assert client.post(_url(other, f"{gold_segment.pk}/"), {"name": "Stolen", "period_days": "365"}).status_code == 404
    assert client.get(_url(other, f"count/?segment={gold_segment.pk}")).status_code == 404
    assert client.post(_url(other, f"{gold_segment.pk}/delete/")).status_code == 404
    assert Segment.objects.filter(pk=gold_segment.pk, name="Gold members").exists()


def test_a_manager_deletes_an_unused_segment(client, manager_user, program, gold_segment):
    client.force_login(manager_user)

    response = client.post(_url(program, f"{gold_segment.pk}/delete/"))

    assert response.status_code == 302 and response.url == _url(program)
    assert not Segment.objects.exists()


def test_a_segment_a_campaign_used_is_kept_with_the_reason(client, manager_user, program, gold_segment):
    Campaign.objects.create(
        program=program,
        name="Gold week",
        segment=gold_segment,
        starts_on=datetime.date(2026, 3, 1),
        ends_on=datetime.date(2026, 3, 7),
        mechanic=Campaign.Mechanic.ANNOUNCEMENT,
    )
    client.force_login(manager_user)

    response = client.post(_url(program, f"{gold_segment.pk}/delete/"), follow=True)

    assert Segment.objects.filter(pk=gold_segment.pk).exists()
    assert "The campaign “Gold week” targeted this segment" in response.content.decode()
