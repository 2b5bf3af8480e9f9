"""The transition's staff pages: open it, plan it with a dry run, announce, print, migrate, report;
who may do what."""

import csv
import datetime
import io

import pytest
from django.urls import reverse
from django.utils import timezone

from campaigns.models import MigrationOutcome, MigrationPlan, Transition, TransitionNotice
from tests.factories import RewardFactory, TermsVersionFactory
from tests.transitions.conftest import move_to_cutover

pytestmark = pytest.mark.django_db


def _url(name, scenario, *args):
    return reverse(f"campaigns:{name}", args=[scenario.old.slug, *args])


def _plan_form(scenario, **fields):
    data = {
        "target_program": scenario.new.pk,
        "conversion_rate": "0.6667",
        "rounding": "down",
        "unaccepted": "voucher",
        "uplift_percent": "10",
        "voucher_valid_days": "365",
        **{f"tier_{tier.pk}": "re-evaluate" for tier in scenario.old.tiers.all()},
    }
    data.update(fields)
    return data


def test_a_manager_opens_a_transition_and_saves_its_plan(client, scenario, manager_user):
    today = timezone.localdate()
    terms = TermsVersionFactory(program=scenario.old, version="2028", requires_reacceptance=True, effective_on=today)
    client.force_login(manager_user)
    assert "Open a transition" in client.get(_url("transitions", scenario)).content.decode()

    response = client.post(
        _url("transitions", scenario),
        {
            "name": "Second change",
            "terms": terms.pk,
            "announce_on": today.isoformat(),
            "accept_by": (today + datetime.timedelta(days=30)).isoformat(),
            "cutover_on": (today + datetime.timedelta(days=45)).isoformat(),
        },
    )

    transition = Transition.objects.get(name="Second change")
    assert response.url == _url("transition_plan", scenario, transition.pk)
    gold = scenario.old.tiers.get(name="Gold")
    top = scenario.new.tiers.get(name="Top")
    saved = client.post(
        _url("transition_plan", scenario, transition.pk), _plan_form(scenario, **{f"tier_{gold.pk}": top.pk})
    )
    assert saved.status_code == 302
    plan = MigrationPlan.objects.get(transition=transition)
    assert plan.tier_mapping[str(gold.pk)] == top.pk
    assert plan.tier_mapping[str(scenario.old.tiers.get(name="Bronze").pk)] == "re-evaluate"


def test_dates_out_of_order_are_refused_with_what_to_fix(client, scenario, manager_user):
    today = timezone.localdate()
    terms = TermsVersionFactory(program=scenario.old, version="2028", requires_reacceptance=True, effective_on=today)
    client.force_login(manager_user)

    response = client.post(
        _url("transitions", scenario),
        {"name": "Bad", "terms": terms.pk, "announce_on": today, "accept_by": today, "cutover_on": today},
    )

    assert response.status_code == 400
    assert "then the cut-over on a later day" in response.content.decode()
    assert not Transition.objects.filter(name="Bad").exists()


def test_the_plan_page_shows_the_dry_run_for_every_member_and_its_totals(client, scenario, analyst_user):
    client.force_login(analyst_user)  # analysts read

    page = client.get(_url("transition_plan", scenario, scenario.transition.pk)).content.decode()

    assert 'data-testid="dry-run"' in page
    assert "4 migrated · 3 converted · 2 closed" in page
    assert "The first 9 of 9 members" in page
    assert scenario.accounts["never"].member.member_no in page
    assert "EUR 8.80" in page
    assert "Save the plan" not in page  # but do not change


def test_analysts_and_clerks_cannot_change_announce_or_migrate(client, scenario, analyst_user, clerk_user):
    move_to_cutover(scenario.transition)
    client.force_login(analyst_user)
    assert (
        client.post(_url("transition_plan", scenario, scenario.transition.pk), _plan_form(scenario)).status_code == 403
    )
    for action in ("announce", "remind", "migrate"):
        assert client.post(_url(f"transition_{action}", scenario, scenario.transition.pk)).status_code == 403
    assert client.post(_url("transition_letters", scenario, scenario.transition.pk)).status_code == 403
    client.force_login(clerk_user)
    assert client.get(_url("transition", scenario, scenario.transition.pk)).status_code == 403
    assert not MigrationOutcome.objects.exists()


def test_a_manager_announces_prints_the_letters_and_migrates_on_the_cut_over_day(
    client, scenario, manager_user, django_capture_on_commit_callbacks
):
    Transition.objects.filter(pk=scenario.transition.pk).update(status=Transition.Status.DRAFT)
    client.force_login(manager_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url("transition_announce", scenario, scenario.transition.pk))
    page = client.get(_url("transition", scenario, scenario.transition.pk)).content.decode()
    assert "Print 1 letter for the mail house" in page

    letters = client.post(_url("transition_letters", scenario, scenario.transition.pk))

    assert letters["Content-Type"] == "application/pdf" and letters.content.startswith(b"%PDF")
    letter = TransitionNotice.objects.get(channel="letter")
    assert letter.status == "sent" and letter.sent_at

    refused = client.post(_url("transition_migrate", scenario, scenario.transition.pk), follow=True)
    assert "members can still accept until then" in refused.content.decode()
    move_to_cutover(scenario.transition)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url("transition_migrate", scenario, scenario.transition.pk))
    assert MigrationOutcome.objects.count() == 9
    scenario.reload()
    assert scenario.transition.status == Transition.Status.COMPLETED


def test_the_report_and_its_csv_for_finance(client, scenario, manager_user, django_capture_on_commit_callbacks):
    Transition.objects.filter(pk=scenario.transition.pk).update(name="=HYPERLINK(1)")
    move_to_cutover(scenario.transition)
    client.force_login(manager_user)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(_url("transition_migrate", scenario, scenario.transition.pk))

    page = client.get(_url("transition_report", scenario, scenario.transition.pk)).content.decode()
    assert "4 of 9 members" in page  # accepted
    assert "2 with a voucher" not in page and "3 with a voucher, 2 closed" in page

    response = client.get(_url("transition_report_csv", scenario, scenario.transition.pk))
    rows = {row[0]: row[1] for row in csv.reader(io.StringIO(response.content.decode())) if len(row) >= 2}
    assert rows["Transition"] == "'=HYPERLINK(1)"
    assert rows["Members lost (never accepted)"] == "5"
    assert rows["Points taken out"] == "4434"
    assert rows["Voucher value"] == "13.75"
    assert rows["Liability before"] == "44.34"
    assert rows["Liability after"] == "52.83"
    assert rows["Provision released"] == "-8.49"


def test_rewards_chosen_for_the_burn_window_show_on_the_member_dashboard_with_the_deadline(
    client, scenario, manager_user, ann
):
    cheap = RewardFactory(program=scenario.old, name="Coffee mug", points_cost=150)
    RewardFactory(program=scenario.old, name="Not chosen", points_cost=120)
    client.force_login(manager_user)

    client.post(_url("transition_rewards", scenario, scenario.transition.pk), {"burn_rewards": [cheap.pk]})

    client.force_login(ann.member.user)
    page = client.get(reverse("me:dashboard")).content.decode()
    banner = page[page.index('data-testid="transition-banner"') :]
    assert "Rewards to use your points on before" in banner
    assert "Coffee mug" in banner and "Not chosen" not in banner.split("</section>")[0]


def test_only_managers_choose_the_burn_window(client, scenario, analyst_user):
    cheap = RewardFactory(program=scenario.old, points_cost=150)
    client.force_login(analyst_user)

    response = client.post(_url("transition_rewards", scenario, scenario.transition.pk), {"burn_rewards": [cheap.pk]})

    assert response.status_code == 403
    assert not scenario.transition.burn_rewards.exists()
