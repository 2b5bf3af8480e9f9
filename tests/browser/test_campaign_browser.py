"""A campaign from start to finish in real Chromium: staff build a segment and watch its count, create
a bonus campaign with a 10% control group, preview its message for one member and launch it; a member
of the segment then sees the bonus on their statement, explained by the campaign's name."""

import datetime

import pytest
from django.utils import timezone

from campaigns.models import Campaign
from loyalty.services import account_values_refresh
from members.services import member_link_user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}


def test_staff_build_a_segment_launch_a_bonus_campaign_and_a_member_earns_it(
    page, screenshot, sign_in, manager_user, member_user, program, enrol, buy
):
    regulars = [enrol(program, email=f"regular{n}@example.com", marketing_consent=True) for n in range(6)]
    occasional = [enrol(program) for _ in range(2)]
    for account in regulars:
        buy(account, "150.00", occurred_at=timezone.now() - datetime.timedelta(days=20))
    for account in occasional:
        buy(account, "20.00", occurred_at=timezone.now() - datetime.timedelta(days=20))
    account_values_refresh(program=program)  # the nightly ranking, which spend criteria read
    sign_in(manager_user)

    # A segment: members who spent at least EUR 100 over the last year. The count follows as we type.
    page.goto(f"/staff/programs/{program.slug}/segments/new/")
    page.fill("#id_name", "Regulars")
    count = page.locator("[data-testid=segment-count]")
    count.filter(has_text="8").wait_for()  # everyone, before any criterion
    page.fill("#id_spend_min", "100")
    page.locator("#id_spend_min").dispatch_event("change")
    count.filter(has_text="6").wait_for()
    assert count.inner_text() == "6"
    screenshot("segment-count")
    page.click("#segment-form button[type=submit]")
    page.wait_for_url("**/segments/**")

    # A bonus campaign on that segment, double points, 10% held out.
    today = timezone.localdate()
    page.goto(f"/staff/programs/{program.slug}/campaigns/new/")
    page.fill("#id_name", "Double week")
    page.select_option("#id_mechanic", "bonus_points")
    assert page.locator("#id_threshold_amount").is_hidden()  # settings of other mechanics stay out of the way
    page.select_option("#id_segment", label="Regulars")
    page.fill("#id_starts_on", today.isoformat())
    page.fill("#id_ends_on", (today + datetime.timedelta(days=6)).isoformat())
    page.fill("#id_bonus_multiple", "1")
    page.fill("#id_budget_points", "10000")
    page.fill("#id_holdout_percent", "10")
    page.click("main form button[type=submit]")
    page.wait_for_url("**/campaigns/*/")
    campaign = Campaign.objects.get(name="Double week")
    assert "6 members" in page.locator(".checklist").inner_text()
    assert "as ranked on" in page.locator(".checklist").inner_text()  # the segment counts spend
    screenshot("campaign-checklist")

    # Its message, previewed for one member before launch.
    page.click("text=Write a message")
    page.fill("#id_name", "Double week is on")
    page.fill("#id_subject_en", "{first_name}, double points this week")
    page.fill("#id_body_en", "You have {balance} points; every purchase earns double until Sunday.")
    page.click("main form button[type=submit]:has-text('Save the message')")
    page.locator("#preview-member").wait_for()
    page.fill("#preview-member", regulars[0].member.member_no)
    page.click("text=Preview for this member")
    page.locator("#message-preview", has_text="double points this week").wait_for()
    screenshot("message-preview")

    page.goto(f"/staff/programs/{program.slug}/campaigns/{campaign.pk}/")
    page.click("button:has-text('Launch')")
    page.locator(".badge.status-running").first.wait_for()
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.RUNNING
    treated = [account for account in regulars if not campaign.members.get(account=account).held_out]
    assert treated, "with six members and 10% held out, someone is treated"

    # A treated member buys; their statement names the campaign.
    account = treated[0]
    member_link_user(member=account.member, user=member_user)
    buy(account, "60.00")
    sign_in(member_user)
    page.goto("/me/")
    page.locator("text=Double week").first.wait_for()
    assert "60 pts" in page.locator("text=Double week").first.inner_text()
    screenshot("member-statement")

    sign_in(manager_user)
    page.goto(f"/staff/programs/{program.slug}/campaigns/{campaign.pk}/performance/")
    page.locator(".chart svg").wait_for()
    assert page.locator("[data-testid=incremental]").is_visible()
    screenshot("campaign-performance")


@pytest.mark.parametrize("page", [PHONE], indirect=True)
def test_the_campaign_list_and_performance_read_on_a_phone(
    page, screenshot, sign_in, analyst_user, program, enrol, buy
):
    from decimal import Decimal

    from campaigns import services

    accounts = [enrol(program) for _ in range(10)]
    campaign = services.campaign_launch(
        campaign=services.campaign_save(
            program=program,
            name="Autumn push",
            starts_on=timezone.localdate(),
            ends_on=timezone.localdate() + datetime.timedelta(days=3),
            mechanic=Campaign.Mechanic.BONUS_POINTS,
            bonus_points=20,
            budget_points=5000,
            holdout_percent=Decimal("30"),
        )
    )
    for account in accounts:
        buy(account, "30.00")
    sign_in(analyst_user)

    for path in ("campaigns/", f"campaigns/{campaign.pk}/performance/"):
        page.goto(f"/staff/programs/{program.slug}/{path}")
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    screenshot("performance-phone")
