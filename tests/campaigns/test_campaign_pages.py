"""Campaign staff pages through Django's test client: build, launch, pause, measure; who may do what."""

import csv
import datetime
import io
import re
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Message
from tests.factories import ProgramFactory, TierFactory

pytestmark = pytest.mark.django_db


def _url(name, program, *args):
    return reverse(f"campaigns:{name}", args=[program.slug, *args])


def _form(**fields):
    today = timezone.localdate()
    data = {
        "name": "Double weekend",
        "goal": "More visits in December",
        "segment": "",
        "starts_on": today.isoformat(),
        "ends_on": (today + datetime.timedelta(days=2)).isoformat(),
        "mechanic": "bonus_points",
        "budget_points": "5000",
        "budget_money": "",
        "holdout_percent": "10",
        "activity_types": ["purchase"],
        "bonus_multiple": "1",
        "bonus_points": "",
        "product_categories": "",
        "category_rate": "",
        "threshold_amount": "",
        "award": "points",
        "voucher_amount": "",
        "voucher_valid_days": "30",
        "welcome_days": "",
        "inactive_days": "",
    }
    data.update(fields)
    return data


def test_a_manager_creates_a_campaign_sees_its_checklist_and_launches_it(client, manager_user, program, enrol, buy):
    account = enrol(program)
    client.force_login(manager_user)

    response = client.post(_url("campaign_add", program), _form())
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == _url("campaign", program, campaign.pk)
    page = client.get(_url("campaign", program, campaign.pk)).content.decode()
    assert "Launch checklist" in page and "Segment size" in page and "1 members" in page

    response = client.post(_url("campaign_launch", program, campaign.pk), follow=True)

    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    assert "is running" in response.content.decode()
    result = buy(account, "40.00")
    held = campaign.members.get(account=account).held_out
    assert len(result.entries) == (1 if held else 2)


def test_a_form_missing_the_mechanic_settings_says_which_field_to_fill(client, manager_user, program):
    client.force_login(manager_user)

    response = client.post(_url("campaign_add", program), _form(mechanic="spend_threshold", bonus_multiple=""))

    assert response.status_code == 400
    page = response.content.decode()
    assert "Give the amount members must spend in the period." in page
    assert not Campaign.objects.exists()


def test_launch_is_refused_with_the_checklist_reason_when_nothing_matches(client, manager_user, program):
    client.force_login(manager_user)
    client.post(_url("campaign_add", program), _form())
    campaign = Campaign.objects.get()

    response = client.post(_url("campaign_launch", program, campaign.pk), follow=True)

    assert "No member matches the segment." in response.content.decode()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.DRAFT


def test_pause_resume_and_end_from_the_page(client, manager_user, program, enrol):
    enrol(program)
    client.force_login(manager_user)
    client.post(_url("campaign_add", program), _form())
    campaign = Campaign.objects.get()
    client.post(_url("campaign_launch", program, campaign.pk))

    statuses = []
    for action in ("pause", "resume", "end"):
        client.post(_url(f"campaign_{action}", program, campaign.pk))
        campaign.refresh_from_db()
        statuses.append(campaign.status)

    assert statuses == ["paused", "running", "ended"]
    assert not campaign.rules.filter(is_active=True).exists()


def test_an_announcement_needs_a_previewed_message_before_launch(client, manager_user, program, enrol):
    enrol(program)
    client.force_login(manager_user)
    client.post(_url("campaign_add", program), _form(mechanic="announcement", bonus_multiple="", budget_points=""))
    campaign = Campaign.objects.get()
    Message.objects.create(program=program, campaign=campaign, name="Hello")

    page = client.get(_url("campaign", program, campaign.pk)).content.decode()

    assert "Preview “Hello” for a member before launching." in page
    assert "disabled>Launch" in page.replace("\n", "").replace('type="submit" ', "")


def test_the_performance_page_shows_the_chart_and_its_numbers_and_exports_escaped_csv(
    client, manager_user, program, enrol, buy
):
    accounts = [enrol(program) for _ in range(6)]
    today = timezone.localdate()
    campaign = services.campaign_save(
        program=program,
        name="=HYPERLINK(evil)",
        starts_on=today,
        ends_on=today + datetime.timedelta(days=1),
        mechanic=Campaign.Mechanic.BONUS_POINTS,
        bonus_points=10,
        budget_points=1000,
        holdout_percent=Decimal("50"),
    )
    services.campaign_launch(campaign=campaign)
    for account in accounts:
        buy(account, "25.00")
    client.force_login(manager_user)

    page = client.get(_url("campaign_performance", program, campaign.pk)).content.decode()
    response = client.get(_url("campaign_performance_csv", program, campaign.pk))

    assert "<svg" in page and "Daily spend per member" in page and 'id="daily-table"' in page
    svg = page.split("<svg", 1)[1].split("</svg>", 1)[0]
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', svg)  # drawn on the server: nothing fetched
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[1] == ["Campaign", "'=HYPERLINK(evil)"]
    figures = dict(row for row in rows if len(row) == 2)
    treated = campaign.members.filter(held_out=False).count()
    assert figures["Treated members"] == str(treated)
    assert figures["Points awarded"] == str(10 * treated)


def test_an_analyst_reads_campaigns_but_cannot_create_launch_or_pause_them(client, analyst_user, program, enrol):
    enrol(program)
    campaign = services.campaign_save(
        program=program,
        name="Quiet",
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        mechanic=Campaign.Mechanic.BONUS_POINTS,
        bonus_points=5,
        budget_points=100,
    )
    client.force_login(analyst_user)

    assert client.get(_url("campaigns", program)).status_code == 200
    assert client.get(_url("campaign", program, campaign.pk)).status_code == 200
    assert client.get(_url("campaign_performance", program, campaign.pk)).status_code == 200
    assert client.get(_url("campaign_add", program)).status_code == 403
    assert client.post(_url("campaign_edit", program, campaign.pk), _form()).status_code == 403
    assert client.post(_url("campaign_launch", program, campaign.pk)).status_code == 403
    campaign.refresh_from_db()
    assert (campaign.name, campaign.status) == ("Quiet", Campaign.Status.DRAFT)


def test_clerks_and_members_are_refused_every_campaign_page(client, clerk_user, member_user, program):
    for user in (clerk_user, member_user):
        client.force_login(user)
        assert client.get(_url("campaigns", program)).status_code == 403
        assert client.post(_url("campaign_add", program), _form()).status_code == 403
    assert not Campaign.objects.exists()


def test_a_campaign_of_another_program_is_not_found_under_this_one(client, manager_user, program):
    other = ProgramFactory(slug="other")
    TierFactory(program=other, rank=1, name="Entry", threshold=0)
    campaign = services.campaign_save(
        program=other,
        name="Theirs",
        starts_on=timezone.localdate(),
        ends_on=timezone.localdate(),
        mechanic=Campaign.Mechanic.BONUS_POINTS,
        bonus_points=5,
        budget_points=100,
    )
    client.force_login(manager_user)

    assert client.get(_url("campaign", program, campaign.pk)).status_code == 404
    assert client.post(_url("campaign_launch", program, campaign.pk)).status_code == 404


def test_the_page_offers_only_the_actions_the_campaign_status_allows(client, manager_user, program, enrol):
    enrol(program)
    client.force_login(manager_user)
    client.post(_url("campaign_add", program), _form())
    campaign = Campaign.objects.get()
    buttons = {
        action: _url(f"campaign_{action}", program, campaign.pk) for action in ("launch", "pause", "resume", "end")
    }

    def offered():
        page = client.get(_url("campaign", program, campaign.pk)).content.decode()
        return {action for action, url in buttons.items() if f'action="{url}"' in page}

    draft = offered()
    client.post(buttons["launch"])
    running = offered()
    client.post(buttons["pause"])
    paused = offered()

    assert (draft, running, paused) == ({"launch"}, {"pause", "end"}, {"resume", "end"})
